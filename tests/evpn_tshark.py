"""Does harness.protocols.evpn.wire read a capture's BGP EVPN as Wireshark does? Frame by frame: the BGP message
types, and of every EVPN route its type, RD, MAC and IP, the PMSI tunnel type and endpoint, the encapsulation's
tunnel type, the MAC mobility sequence number, the router's MAC, and the label.

    python tests/evpn_tshark.py CAPTURE.pcap [...]      # prints the disagreements; exit 1 if there are any

Where the two rightly differ: the label. RFC 8365 5.1.3 makes the 3-byte label field a 24-bit VNI; Wireshark 4.0
reads it as a 20-bit MPLS label (the top 20 bits: `bgp.evpn.nlri.mpls_ls1`, the harness's VNI shifted right by 4),
except where it has already seen the VXLAN encapsulation community in the frame (the attribute usually follows
MP_REACH_NLRI, so a second message in the same frame): then it shows all 24 bits as `bgp.evpn.nlri.vni`, which
it also gives a type-3 route from its PMSI tunnel attribute. Each of the harness's VNIs must be one of tshark's
VNIs, or its top 20 bits one of tshark's labels. A type-2 route's second label (the L3 VNI) is `mpls_ls2`, read
the same 20-bit way; a type-5 route's label has no field value in tshark 4.0 (only a text line), so it is not
compared.
"""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from harness.protocols.evpn import bgp  # noqa: E402
from harness.protocols.evpn.wire import Wire  # noqa: E402

TSHARK = shutil.which("tshark")
FIELDS = ("frame.number", "bgp.type", "bgp.evpn.nlri.rt", "bgp.evpn.nlri.rd", "bgp.evpn.nlri.mac_addr",
          "bgp.evpn.nlri.ip.addr", "bgp.update.path_attribute.pmsi.tunnel.type",
          "bgp.update.path_attribute.pmsi.ingress_rep_ip", "bgp.ext_com.tunnel_type", "bgp.evpn.nlri.mpls_ls1",
          "bgp.evpn.nlri.vni", "bgp.evpn.nlri.mpls_ls2", "bgp.ext_com_evpn.mmac.seq", "bgp.ext_com_evpn.esi.router_mac")
LABELS = ("bgp.evpn.nlri.mpls_ls1", "bgp.evpn.nlri.vni")
VNIS = "vnis"  # the harness's side of the two above


def _values(text: str) -> tuple[str, ...]:
    return tuple(v for v in text.split(",") if v)


def tshark_frames(pcap) -> dict[int, dict[str, tuple[str, ...]]]:
    command = [TSHARK, "-r", str(pcap), "-Y", "bgp", "-T", "fields", "-E", "separator=|", "-E", "occurrence=a"]
    for name in FIELDS:
        command += ["-e", name]
    out = subprocess.run(command, capture_output=True, text=True, timeout=120, check=True).stdout
    frames = {}
    for line in out.splitlines():
        values = line.split("|")
        frames[int(values[0])] = {name: _values(value) for name, value in zip(FIELDS[1:], values[1:])}
    return frames


def harness_frames(wire: Wire) -> dict[int, dict[str, tuple[str, ...]]]:
    """The same fields from the harness's reading, in Wireshark's order and notation."""
    frames: dict[int, dict[str, list[str]]] = {}
    for record in wire.records:
        seen = frames.setdefault(record.number, {name: [] for name in (*FIELDS[1:], VNIS)})
        message = record.message
        seen["bgp.type"].append(str(message.type))
        routes = message.reached() + message.withdrawn()
        for route in routes:
            seen["bgp.evpn.nlri.rt"].append(str(route.route_type))
            if "rd" in route.fieldtype:
                seen["bgp.evpn.nlri.rd"].append(bytes(route.rd).hex())
            if "mac" in route.fieldtype:
                seen["bgp.evpn.nlri.mac_addr"].append(str(route.mac).lower())
            address = getattr(route, "ip_text", None)
            if route.route_type == 5:
                address = bgp._ip_text(bytes(route.prefix))
            if address:
                seen["bgp.evpn.nlri.ip.addr"].append(address)
            if route.route_type == 2 and route._second_label():
                seen["bgp.evpn.nlri.mpls_ls2"].append(str(route.vni2 >> 4))
            vni = bgp.route_vni(route) if route.route_type != 5 else None
            if vni is None and route.route_type == 3 and message.attribute(bgp.PmsiTunnel) is not None:
                vni = message.attribute(bgp.PmsiTunnel).vni
            if vni is not None:
                seen[VNIS].append(vni)
        pmsi = message.attribute(bgp.PmsiTunnel)
        if pmsi is not None:
            seen["bgp.update.path_attribute.pmsi.tunnel.type"].append(str(pmsi.tunnel_type))
            if pmsi.tunnel_type == 6:
                seen["bgp.update.path_attribute.pmsi.ingress_rep_ip"].append(bgp._ip_text(bytes(pmsi.tunnel_id)))
        encapsulation = message.community(bgp.ExtEncapsulation)
        if encapsulation is not None:
            seen["bgp.ext_com.tunnel_type"].append(str(encapsulation.tunnel_type))
        mobility = message.community(bgp.ExtMacMobility)
        if mobility is not None:
            seen["bgp.ext_com_evpn.mmac.seq"].append(str(mobility.sequence))
        router_mac = message.community(bgp.ExtRouterMac)
        if router_mac is not None:
            seen["bgp.ext_com_evpn.esi.router_mac"].append(str(router_mac.mac).lower())
    return {n: {k: tuple(v) for k, v in f.items()} for n, f in frames.items()}


def disagreements(pcap) -> list[str]:
    wire = Wire.from_pcap(pcap)
    ours, theirs = harness_frames(wire), tshark_frames(pcap)
    problems = [f"harness: {p}" for p in wire.problems]
    for number in sorted(ours.keys() | theirs.keys()):
        mine, seen = ours.get(number), theirs.get(number)
        if mine is None or seen is None:
            problems.append(f"frame {number}: BGP in {'tshark' if mine is None else 'the harness'} only")
            continue
        for name in FIELDS[1:]:
            if name not in LABELS and sorted(mine[name]) != sorted(seen[name]):
                problems.append(f"frame {number}: {name} {','.join(mine[name]) or '-'} (harness) vs "
                                f"{','.join(seen[name]) or '-'} (tshark)")
        problems += _labels(number, mine[VNIS], seen)
    return problems


def _labels(number: int, vnis, seen) -> list[str]:
    """The harness's VNIs against tshark's labels and VNIs (see the module's docstring)."""
    labels, full = [int(v) for v in seen["bgp.evpn.nlri.mpls_ls1"]], [int(v) for v in seen["bgp.evpn.nlri.vni"]]
    problems = []
    for vni in vnis:
        if vni in full:
            full.remove(vni)
        elif vni >> 4 in labels:
            labels.remove(vni >> 4)
        else:
            problems.append(f"frame {number}: VNI {vni} (harness) is neither a VNI nor, as a 20-bit label "
                            f"({vni >> 4}), a label tshark shows (VNIs {full or '-'}, labels {labels or '-'})")
    if labels or full:
        problems.append(f"frame {number}: tshark shows VNIs {full or '-'}, labels {labels or '-'} the harness has not")
    return problems


if __name__ == "__main__":
    from support import tshark_main
    sys.exit(tshark_main(disagreements, sys.argv[1:]))
