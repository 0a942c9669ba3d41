"""Open vSwitch as a VXLAN or Geneve VTEP: one OVS bridge per segment, holding one tunnel port per peer and an
internal port that is the segment's inner host; NORMAL (MAC-learning) forwarding floods BUM frames head-end to
every peer and learns inner MACs per tunnel port.

With the openvswitch kernel module (the ovs@kernel variant, in a microVM here) the bridges use the kernel
datapath. Without it OVS runs its userspace (netdev) datapath: tunnels are terminated and
originated in ovs-vswitchd itself ("native tunnelling"), which routes the outer packets with its own copy of
the kernel's routes and ARP table. That works only when the underlay address lives on an OVS bridge (br-phy)
whose port is eth0. See NOTES.md for what was verified and the traps.
"""
from __future__ import annotations

import json
import shlex
import time

from harness.errors import HarnessError
from harness.protocols.vxlan.roles import VtepEndpoint
from harness.protocols.vxlan.scenario import (GENEVE_OPTION, UNDERLAY_MTU, VXLAN_OVERHEAD, VXLAN_PORT, Scenario,
                                             Segment, Side)
from harness.waiting import wait_for

UNDERLAY = "eth0"
PHYSICAL_BRIDGE = "br-phy"
OPTION_FIELD = "tun_metadata0"


# The kernel datapath hands the first frame of every flow to ovs-vswitchd (an upcall), read by its handler threads.
# OVS 3.1 started in the first 10 s of a boot counts 0 CPUs and runs no handler; a later recount starts one, but
# the kernel goes on losing every upcall ("lost" in `ovs-dpctl show`) and the node forwards nothing, which a case
# would judge an interop failure (every ovs@kernel cell on an idle host, where the microVM boots fast). run-ovs
# prevents it (it starts vswitchd after 10 s of uptime); this check makes any dead upcall path a broken cell with
# its evidence instead: setup waits until a frame has crossed a private bridge, an ARP broadcast from one internal
# port reaching the other (counted as received on warm1): a miss, an upcall, NORMAL and a flow put, inside the
# node, nothing on the lab's wire. It normally crosses with the first ping. The address is a /30 of the inner range
# that no scenario uses (scenario.py: segments take the first /24s). The bridge stays: deleting it makes vswitchd
# reconfigure again.
WARM_BRIDGE = "br-warm"
WARM_UPCALLS = f"""
ovs-vsctl --may-exist add-br {WARM_BRIDGE} -- set bridge {WARM_BRIDGE} datapath_type=system \\
    -- --may-exist add-port {WARM_BRIDGE} warm0 -- set interface warm0 type=internal \\
    -- --may-exist add-port {WARM_BRIDGE} warm1 -- set interface warm1 type=internal
ip link set warm0 up
ip link set warm1 up
ip addr replace 198.19.255.253/30 dev warm0
for i in $(seq 20); do
    ping -n -c 1 -W 0.5 -I warm0 198.19.255.254 >/dev/null 2>&1 || true  # no answer: the ARP's crossing is the point
    [ "$(cat /sys/class/net/warm1/statistics/rx_packets)" -gt 0 ] && exit 0
done
lost=$(ovs-dpctl show 2>&1 | grep -o 'lost:[0-9]*' | head -n 1 || true)
threads=$(ovs-appctl memory/show 2>&1 | grep -o 'handlers:[0-9]*' || true)
echo "no frame crossed {WARM_BRIDGE} in 20 pings: ovs-vswitchd reads no upcall from the kernel datapath" \\
     "(upcalls ${{lost:-lost:?}}, ${{threads:-handlers:?}})" >&2
exit 1
"""


def bridge_name(segment: Segment) -> str:
    return f"br{segment.vni}"  # "br16777215" at most: within IFNAMSIZ (15)


def tunnel_name(segment: Segment, peer_number: int) -> str:
    return f"t{segment.vni}-{peer_number}"


def inner_mtu(side: Side) -> int:
    """What fits in one underlay packet: Geneve's fixed header is VXLAN's size, each option adds 4 + its data."""
    options = 4 + len(GENEVE_OPTION["data"]) if side.encapsulation == "geneve" and side.geneve_options else 0
    return UNDERLAY_MTU - VXLAN_OVERHEAD - options


class OpenVSwitch(VtepEndpoint):
    default_port = VXLAN_PORT  # OVS's default dst_port for type=vxlan (geneve: 6081)

    def _sh(self, script: str, *, timeout: float, what: str) -> str:
        """Run a bash script in the node (one docker exec instead of one per command: each costs ~0.1 s)."""
        return self.node.exec(["bash", "-euo", "pipefail", "-c", script], timeout=timeout, what=what,
                              check=True).output

    @property
    def _kernel_datapath(self) -> bool:
        # `host` is the kernel the node runs on: ovs@kernel in a microVM (Debian 6.1, openvswitch preloaded) gets
        # "system@ovs-system" and the kernel's vxlan/geneve vports; no br-phy, nft rules or neighbour priming
        # are needed there, as the kernel routes and ARPs for the outer packets itself (NOTES.md).
        return self.host.has("openvswitch")

    def setup(self, scenario: Scenario, side: Side, timeout: float) -> None:
        deadline = time.monotonic() + timeout

        def left() -> float:
            return max(deadline - time.monotonic(), 1.0)

        def answers() -> bool:
            self.node.ensure_running()  # a daemon that died is reported at once, not after the timeout
            return self.node.exec(["ovs-appctl", "-t", "ovs-vswitchd", "version"], timeout=5).ok
        wait_for(answers, timeout=left(), what=f"ovs-vswitchd on {self.node.name} to answer ovs-appctl version")

        datapath = "system" if self._kernel_datapath else "netdev"
        if datapath == "netdev":
            self._sh(self._underlay_script(side), timeout=left(),
                     what=f"moving {side.address} from {UNDERLAY} onto {PHYSICAL_BRIDGE}")
        for segment in side.segments:
            self._sh(self._segment_script(segment, side, datapath), timeout=left(),
                     what=f"building bridge {bridge_name(segment)} for VNI {segment.vni}")
        if datapath == "netdev":
            self._resolve_peers(side, left())
        else:
            self._sh(WARM_UPCALLS, timeout=left(),
                     what=f"ovs-vswitchd to forward a first frame through {WARM_BRIDGE} (kernel datapath)")

    def _underlay_script(self, side: Side) -> str:
        address = f"{side.address}/{side.prefix_len}"
        return f"""
mac=$(cat /sys/class/net/{UNDERLAY}/address)
routes=$(ip -4 route show dev {UNDERLAY} | grep -v 'proto kernel' || true)
# br-phy keeps eth0's MAC: the Docker bridge and the peers' ARP caches already know it.
ovs-vsctl --may-exist add-br {PHYSICAL_BRIDGE} \\
    -- set bridge {PHYSICAL_BRIDGE} datapath_type=netdev other-config:hwaddr="\\"$mac\\"" \\
    -- --may-exist add-port {PHYSICAL_BRIDGE} {UNDERLAY}
# OVS reads eth0 through an AF_PACKET socket, which gets each frame before the kernel's ingress hooks; without
# this the kernel's own stack also takes every frame from eth0 (the node's address is local to it even once it
# moved to br-phy: weak host model), so it answers pings and ARP a second time and sends ICMP port unreachable
# for the UDP tunnel packets it has no socket for. An nftables netdev-ingress drop on eth0 leaves OVS's copy
# alone and hides eth0 from the kernel stack; the kernel's own traffic goes through br-phy (a TAP) from now on.
# The second table: an outer packet fragmented on the way (the Linux vxlan device sends without DF) does not
# match OVS's tunnel pop, so NORMAL hands the fragments to br-phy's kernel side, which reassembles them and
# answers ICMP port unreachable. OVS's datapath never reassembles; RFC 7348 4.3 lets the VTEP discard them
# silently, so the kernel is told to drop them too.
nft -f - <<'EOF'
table netdev ovs_underlay {{
    chain ingress {{
        type filter hook ingress device {UNDERLAY} priority 0; policy drop;
    }}
}}
table inet ovs_tunnel {{
    chain input {{
        type filter hook input priority 0; policy accept;
        iifname {PHYSICAL_BRIDGE} udp dport {side.port} drop
    }}
}}
EOF
ip addr del {address} dev {UNDERLAY}
ip link set {PHYSICAL_BRIDGE} up
# The kernel's own underlay traffic (e.g. TCP to this node's address) now leaves through br-phy, a TAP that
# offers checksum offload: OVS would forward the partial checksum out of eth0 and the peer drop it.
ethtool -K {PHYSICAL_BRIDGE} tx off >/dev/null
ip addr add {address} dev {PHYSICAL_BRIDGE}
echo "$routes" | while read -r route; do [ -z "$route" ] || ip route add $route dev {PHYSICAL_BRIDGE}; done
"""

    def _segment_script(self, segment: Segment, side: Side, datapath: str) -> str:
        bridge, inner = bridge_name(segment), self.inner_interface(segment)
        vsctl = [f"--may-exist add-br {bridge} -- set bridge {bridge} datapath_type={datapath}",
                 f"--may-exist add-port {bridge} {inner} -- set interface {inner} type=internal "
                 # OVS gives internal ports MTU 1500 whatever the tunnel overhead, and native tunnelling drops an
                 # outer packet too big for eth0 (log: "error sending Ethernet packet on eth0: Message too
                 # long"): no fragment, no ICMP. So TCP through the overlay stalls unless the inner host's MTU
                 # leaves room for the encapsulation, as the Linux vxlan device does by itself (1450).
                 f"mtu_request={inner_mtu(side)}"]
        for number, peer in enumerate(side.peers, start=1):
            port = tunnel_name(segment, number)
            # protected: NORMAL never forwards between two protected ports. That is the split horizon of a
            # full mesh: a frame from one VTEP is not flooded on to the others (they got it from its sender),
            # which with three VTEPs would otherwise loop broadcasts forever.
            vsctl.append(f"--may-exist add-port {bridge} {port} -- set port {port} protected=true "
                         f"-- set interface {port} type={side.encapsulation} options:remote_ip={peer} "
                         f"options:key={segment.vni} options:dst_port={side.port}")
        script = ["ovs-vsctl " + " -- ".join(vsctl)]
        if side.geneve_options:
            option = (f"{{class={GENEVE_OPTION['class']:#x},type={GENEVE_OPTION['type']:#x},"
                      f"len={len(GENEVE_OPTION['data'])}}}->{OPTION_FIELD}")
            value = "0x" + GENEVE_OPTION["data"].hex()
            script += [
                # The TLV map is a per-bridge table that outlives flows: add it once.
                f"ovs-ofctl dump-tlv-map {bridge} | grep -q {OPTION_FIELD} "
                f"|| ovs-ofctl add-tlv-map {bridge} {shlex.quote(option)}",
                # Every frame the bridge forwards gets the option; only those that leave by a tunnel port carry it.
                f"ovs-ofctl add-flow {bridge} "
                + shlex.quote(f"priority=10,actions=set_field:{value}->{OPTION_FIELD},NORMAL"),
            ]
        # The MAC is set with ip, not in the Interface's mac column: OVS enforces that column, and put the old
        # MAC back at once when `ip link set address` changed it (tried), which would undo the harness's MAC move.
        script += [
            f"ip link set dev {inner} address {side.inner_mac(segment)}",
            f"ip addr replace {side.inner_address(segment)}/{segment.prefix_len} dev {inner}",
            f"ip link set dev {inner} up",
        ]
        return "\n".join(script)

    def _resolve_peers(self, side: Side, timeout: float) -> None:
        """Native tunnelling drops a packet whose outer next hop it has no ARP entry for (and sends an ARP
        request instead): the first inner frame, usually the inner ARP request, is lost, and the first ping
        then took 1.04 s (the kernel's ARP retry) instead of under 1 ms. A ping from br-phy to each peer's
        underlay address fills OVS's neighbour cache (it snoops the ARP reply) before the harness sends anything."""
        def resolved() -> bool:
            self.node.ensure_running()
            table = self.node.exec(["ovs-appctl", "tnl/neigh/show"], timeout=5).output
            missing = [p for p in side.peers if f"{p} " not in table]
            for peer in missing:
                # A peer still moving its own address onto its br-phy does not answer for a moment; the kernel
                # then holds the neighbour entry as FAILED and refuses to ask again for seconds: forget it first.
                self.node.exec(["bash", "-c", f"ip neigh flush to {peer}; ping -c 1 -W 0.3 {peer}"], timeout=5)
            return not missing
        wait_for(resolved, timeout=timeout, interval=0.05,
                 what=f"OVS on {self.node.name} to resolve the peers' underlay addresses {', '.join(side.peers)} "
                      f"(ovs-appctl tnl/neigh/show)")

    def inner_interface(self, segment: Segment) -> str:
        return f"in{segment.vni}"

    def _tunnel_remotes(self, bridge: str) -> dict[str, str]:
        """OpenFlow port number -> remote_ip for the bridge's tunnel ports."""
        out = self.node.exec(["ovs-vsctl", "--format=json", "--columns=name,ofport,options", "list", "Interface"],
                             timeout=10, check=True).output
        ports = json.loads(out)
        remotes = {}
        for name, ofport, options in ports["data"]:
            options = dict(options[1]) if isinstance(options, list) and options[0] == "map" else {}
            if "remote_ip" in options and isinstance(ofport, int):
                remotes[(name, ofport)] = options["remote_ip"]
        # Port numbers are per bridge: keep only this bridge's ports.
        names = set(self.node.exec(["ovs-vsctl", "list-ifaces", bridge], timeout=10, check=True).output.split())
        return {str(ofport): ip for (name, ofport), ip in remotes.items() if name in names}

    def learned(self, segment: Segment) -> dict[str, str]:
        bridge = bridge_name(segment)
        remotes = self._tunnel_remotes(bridge)
        table = self.node.exec(["ovs-appctl", "fdb/show", bridge], timeout=10, check=True).output
        # " port  VLAN  MAC                Age"
        # "    2     0  02:4f:49:64:00:02    1"
        found = {}
        for line in table.splitlines()[1:]:
            fields = line.split()
            if len(fields) >= 3 and fields[0] in remotes:
                found[fields[2].lower()] = remotes[fields[0]]
        return found

    def version(self) -> str:
        # Asked of the running daemon: "ovs-vswitchd (Open vSwitch) 3.1.0"
        result = self.node.exec(["ovs-appctl", "-t", "ovs-vswitchd", "version"], timeout=10)
        if not result.ok:
            raise HarnessError(f"{self.node.name}: ovs-appctl version failed: {result.output.strip()}")
        return result.output.strip().splitlines()[0]
