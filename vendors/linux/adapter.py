"""The Linux kernel as a VTEP: one vxlan (or geneve) device per segment, made with iproute2.

- The device is the inner host: it holds the side's inner address and MAC for the segment.
- Head-end replication: an all-zeros FDB entry per remote VTEP (`bridge fdb append`), so broadcast,
  unknown unicast and multicast go to every peer; remote inner MACs are then learned from received frames.
- `noudpcsum`: over veth, a kernel-computed UDP checksum is left partial (the checksum is completed by a NIC
  that never exists), and Open vSwitch's userspace datapath then sees a bad checksum and drops the frame.
  A zero checksum is what RFC 7348 5 recommends for IPv4 anyway ("SHOULD be transmitted as zero"). The same
  holds for the inner TCP/UDP checksums the inner host leaves to the device: tx checksum offload is turned off
  on the vxlan device, so they are complete when they leave (else TCP through OVS stalls).
- No `dstport` when the scenario leaves the port to the vendor: the kernel then uses its historical default,
  8472, not IANA's 4789 (iproute2 warns about it); that is the port-mismatch case.
"""
from __future__ import annotations

import json

from harness.errors import HarnessError
from harness.protocols.vxlan.roles import VtepEndpoint
from harness.protocols.vxlan.scenario import LINUX_LEGACY_PORT, Scenario, Segment, Side

ZERO_MAC = "00:00:00:00:00:00"


class LinuxKernel(VtepEndpoint):
    default_port = LINUX_LEGACY_PORT

    def _ip(self, *argv: str, what: str) -> str:
        return self.node.exec(list(argv), timeout=10, what=what, check=True).output

    @staticmethod
    def device(segment: Segment) -> str:
        return f"vx{segment.vni}"

    def setup(self, scenario: Scenario, side: Side, timeout: float) -> None:
        commands = []
        for segment in side.segments:
            dev = self.device(segment)
            if side.encapsulation == "geneve":
                # A geneve device has one remote: enough for the pair cases (three-VTEP cases are VXLAN).
                if len(side.peers) != 1:
                    raise HarnessError(f"{self.node.name}: the kernel's geneve device takes one remote, "
                                       f"not {len(side.peers)}")
                link = f"ip link add {dev} type geneve id {segment.vni} remote {side.peers[0]} dstport {side.port}"
            else:
                link = f"ip link add {dev} type vxlan id {segment.vni} local {side.address} dev eth0 noudpcsum"
                if not scenario.vendor_default_port:  # else: the kernel's own default (8472)
                    link += f" dstport {side.port}"
            commands += [link,
                         f"ip link set {dev} address {side.inner_mac(segment)}",
                         f"ip address add {side.inner_address(segment)}/{segment.prefix_len} dev {dev}"]
            if side.encapsulation == "vxlan":
                commands += [f"bridge fdb append {ZERO_MAC} dev {dev} dst {peer}" for peer in side.peers]
            commands += [f"ethtool -K {dev} tx off >/dev/null", f"ip link set {dev} up"]
        # One exec for all of it (each costs ~0.1 s); -x: a failing command is named in the error's output.
        self.node.exec(["bash", "-euxc", "\n".join(commands)], timeout=timeout, check=True,
                       what=f"building {', '.join(self.device(s) for s in side.segments)}")

    def inner_interface(self, segment: Segment) -> str:
        return self.device(segment)

    def learned(self, segment: Segment) -> dict[str, str]:
        out = self._ip("bridge", "-j", "fdb", "show", "dev", self.device(segment), what="reading the VXLAN FDB")
        return {entry["mac"].lower(): entry["dst"] for entry in json.loads(out or "[]")
                if entry.get("dst") and entry["mac"] != ZERO_MAC and "permanent" not in entry.get("state", "")}

    def version(self) -> str:
        return "Linux " + self._ip("uname", "-r", what="the kernel version").strip()
