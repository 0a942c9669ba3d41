"""FRR as a BGP EVPN VTEP (RFC 7432, RFC 8365): bgpd speaks EVPN, zebra reads the kernel's bridge and vxlan devices
and programs what bgpd learns into them (the flood list, remote MACs, ARP entries).

- One bridge per segment with the vxlan device (`nolearning`: MACs behind remote VTEPs come from BGP, never from
  the data plane) and the port to the segment's inner host. `advertise-all-vni` advertises every VNI zebra finds.
- Route targets: FRR derives AS:VNI (RFC 8365 5.1.2.1) unless the scenario names them; then `vni N` with
  `route-target import/export` for each.
- `noudpcsum` and tx checksum offload off on the vxlan device, as the linux vendor does (partial checksums over
  veth).
- The daemons run without SYS_ADMIN (caps-shim.c).
"""
from __future__ import annotations

import json
import re

from harness.errors import HarnessError
from harness.protocols.evpn.roles import EvpnVtep
from harness.protocols.evpn.scenario import HOLD_S, KEEPALIVE_S, Scenario, Side
from harness.protocols.vxlan.scenario import Segment
from harness.waiting import wait_for

FRR_CONF = "/etc/frr/frr.conf"


class FrrVtep(EvpnVtep):
    @staticmethod
    def device(segment: Segment) -> str:
        return f"vx{segment.vni}"

    def render(self, scenario: Scenario, side: Side) -> dict[str, str]:
        lines = ["frr defaults datacenter", f"hostname {side.name}", "log stdout informational", "!"]
        if side.l3vni:  # type-5 in the default VRF: its L3 VNI (this kernel has no VRF devices)
            lines += ["vrf default", f" vni {side.l3vni}", "exit-vrf", "!"]
        lines += [f"router bgp {side.asn}", f" bgp router-id {side.address}", " no bgp default ipv4-unicast",
                 " no bgp ebgp-requires-policy", f" timers bgp {KEEPALIVE_S} {HOLD_S}"]
        for peer in side.peers:
            lines.append(f" neighbor {peer.address} remote-as {peer.asn}")
        if side.prefix:
            lines += [" !", " address-family ipv4 unicast", f"  network {side.prefix}", " exit-address-family"]
        lines += [" !", " address-family l2vpn evpn"]
        lines += [f"  neighbor {peer.address} activate" for peer in side.peers]
        lines.append("  advertise-all-vni")
        if side.l3vni:
            lines.append("  advertise ipv4 unicast")
        if side.explicit_route_targets:
            for segment in side.segments:
                rt = side.route_targets[segment.vni]
                lines += [f"  vni {segment.vni}", f"   route-target import {rt}", f"   route-target export {rt}",
                          "  exit-vni"]
        lines += [" exit-address-family", "!"]
        return {FRR_CONF: "\n".join(lines) + "\n"}

    def setup(self, scenario: Scenario, side: Side, timeout: float) -> None:
        commands = []
        for segment in side.segments:
            bridge, dev, port = self.bridge(segment), self.device(segment), self.host_port(segment)
            commands += [f"ip link add {bridge} type bridge",
                         f"ip link add {dev} type vxlan id {segment.vni} local {side.address} dstport {side.port} "
                         f"nolearning noudpcsum",
                         f"ip link set {dev} master {bridge}", f"ip link set {port} master {bridge}",
                         f"ethtool -K {dev} tx off >/dev/null"]
            if side.arp_suppression:
                commands.append(f"bridge link set dev {dev} neigh_suppress on")
            if side.svi:
                commands.append(f"ip address add {side.svi_address(segment)}/{segment.prefix_len} dev {bridge}")
            commands += [f"ip link set {dev} up", f"ip link set {bridge} up"]
        if side.l3vni:  # the L3 VNI's bridge and device, and the announced prefix on a veth pair
            bridge, dev = f"br{side.l3vni}", f"vx{side.l3vni}"
            gateway = side.prefix.replace(".0/24", ".1/24")
            commands += [f"ip link add {bridge} type bridge",
                         f"ip link add {dev} type vxlan id {side.l3vni} local {side.address} dstport {side.port} "
                         f"nolearning noudpcsum",
                         f"ip link set {dev} master {bridge}", f"ip link set {dev} up", f"ip link set {bridge} up",
                         "ip link add pfx0 type veth peer name pfx1", f"ip address add {gateway} dev pfx0",
                         "ip link set pfx0 up", "ip link set pfx1 up"]
        self.node.exec(["bash", "-euxc", "\n".join(commands)], timeout=timeout, check=True,
                       what=f"building {', '.join(self.device(s) for s in side.segments)}")
        self.node.ensure_running()

    def _vtysh(self, command: str, what: str) -> str:
        return self.node.exec(["vtysh", "-c", command], timeout=10, check=True, what=what).output

    def established(self) -> set[str]:
        out = self._vtysh("show bgp l2vpn evpn summary json", "FRR's BGP summary")
        try:
            peers = json.loads(out or "{}").get("peers", {})
        except json.JSONDecodeError:
            return set()
        return {address for address, peer in peers.items() if peer.get("state") == "Established"}

    def fdb(self, segment: Segment) -> list[dict]:
        out = self.node.exec(["bridge", "-j", "fdb", "show", "br", self.bridge(segment)], timeout=10, check=True,
                             what="reading the bridge's fdb").output
        try:
            return json.loads(out or "[]")
        except json.JSONDecodeError:
            raise HarnessError(f"{self.node.name}: `bridge -j fdb show` gave no JSON: {out[:200]}") from None

    def withdraw_vni(self, segment: Segment) -> None:
        # zebra tells bgpd the VNI is gone with its device: bgpd withdraws the VNI's type-3 and type-2 routes
        self.node.exec(["ip", "link", "del", self.device(segment)], timeout=10, check=True,
                       what=f"removing {self.device(segment)}")

    def routes(self, prefix: str) -> list[dict]:
        out = self.node.exec(["ip", "-j", "route", "show", prefix], timeout=10, check=True,
                             what=f"the kernel's routes for {prefix}").output
        try:
            return json.loads(out or "[]")
        except json.JSONDecodeError:
            raise HarnessError(f"{self.node.name}: `ip -j route show` gave no JSON: {out[:200]}") from None

    def stop(self) -> None:
        # SIGKILL: a crash, no NOTIFICATION (the peer sees the TCP connection close). run-frr then ends the node,
        # often before this exec returns (it is killed with it: 137), so the outcome is read from the node.
        self.node.exec(["bash", "-c", "kill -KILL $(cat /run/frr/bgpd.pid)"], timeout=10)
        wait_for(lambda: self.node.status()[1] is not None, timeout=10, interval=0.1,
                 what="the node to end with its bgpd")

    def version(self) -> str:
        out = self._vtysh("show version", "FRR's version")
        match = re.search(r"FRRouting (\S+)", out)
        return f"FRR {match.group(1)}" if match else out.strip().splitlines()[0]
