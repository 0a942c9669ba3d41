"""What a case asks of a set of VTEPs, in the protocol's own vocabulary (VNI, UDP port, flood-and-learn),
never in a vendor's config syntax: each adapter translates.

Inner (overlay) addressing is the harness's, so every vendor's inner hosts are predictable on the wire:
segment VNI n uses 198.19.<k>.0/24, VTEP number i (1, 2, 3) holds .i in it, with MAC 02:4f:49:<k>:00:<i>.
"""
from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

VXLAN_PORT = 4789  # IANA (RFC 7348 5)
LINUX_LEGACY_PORT = 8472  # the Linux kernel's default when no dstport is given
GENEVE_PORT = 6081  # IANA (RFC 8926 3.3)
INNER_SUPERNET = ipaddress.ip_network("198.19.0.0/16")
UNDERLAY_MTU = 1500
VXLAN_OVERHEAD = 50  # outer Ethernet 14 + IPv4 20 + UDP 8 + VXLAN 8 (RFC 7348 4.3)


@dataclass(frozen=True)
class Segment:
    """One virtual network: a VNI and the inner subnet its hosts use (the k-th /24 of 198.19.0.0/16)."""
    vni: int
    k: int

    @property
    def subnet(self) -> ipaddress.IPv4Network:
        return list(INNER_SUPERNET.subnets(new_prefix=24))[self.k]

    def address(self, index: int) -> str:
        """The inner address of VTEP number `index` (1-based) in this segment."""
        return str(self.subnet.network_address + index)

    def mac(self, index: int) -> str:
        return f"02:4f:49:{self.k:02x}:00:{index:02x}"

    @property
    def prefix_len(self) -> int:
        return self.subnet.prefixlen

    def holds(self, address: str) -> bool:
        return ipaddress.ip_address(address) in self.subnet


DEFAULT_SEGMENT = Segment(vni=100, k=100)


@dataclass(frozen=True)
class Scenario:
    segments: tuple[Segment, ...] = (DEFAULT_SEGMENT,)
    encapsulation: str = "vxlan"  # or "geneve"
    port: int | None = None  # the UDP port every VTEP sends to and listens on; None: IANA's for the encapsulation
    # Configure no port at all: each vendor then uses its own default (its `default_port`), which is how the
    # historical Linux 8472 against IANA's 4789 shows up.
    vendor_default_port: bool = False
    # Geneve only: every VTEP adds one non-critical option TLV (GENEVE_OPTION) to each frame it sends.
    geneve_options: bool = False
    vtep_count: int = 2  # 3 for head-end replication and MAC moves: the third is the second vendor again

    def __post_init__(self):
        if self.encapsulation not in ("vxlan", "geneve"):
            raise ValueError(f"encapsulation must be vxlan or geneve, not {self.encapsulation!r}")
        if len({s.vni for s in self.segments}) != len(self.segments):
            raise ValueError("two segments with the same VNI")

    def port_for(self, vendor_default: int) -> int:
        """The port a VTEP whose own default is `vendor_default` uses in this scenario."""
        if self.vendor_default_port:
            return vendor_default
        return self.port or (GENEVE_PORT if self.encapsulation == "geneve" else VXLAN_PORT)


# The option a Geneve sender adds when asked: class 0xFFF0 (experimental use, RFC 8926 7), type 0x01 (C bit
# clear: a receiver that does not know it must ignore it, RFC 8926 3.5.1), 4 bytes of data.
GENEVE_OPTION = {"class": 0xFFF0, "type": 0x01, "data": bytes.fromhex("4f490001")}


@dataclass(frozen=True)
class Side:
    """One VTEP's view of the lab: what its adapter renders a config from."""
    name: str  # "vtep1", "vtep2", "vtep3"
    index: int  # 1, 2, 3: its host number in every segment
    address: str  # its underlay address (on the node's eth0)
    prefix_len: int  # of the underlay network
    # The other VTEPs' underlay addresses: the flood list (head-end replication). Never static inner MACs: the
    # VTEP learns them from the frames it receives (RFC 7348 4.2).
    peers: tuple[str, ...]
    port: int  # the UDP port to send to and listen on
    segments: tuple[Segment, ...] = field(default=())
    encapsulation: str = "vxlan"
    geneve_options: bool = False

    def inner_address(self, segment: Segment) -> str:
        return segment.address(self.index)

    def inner_mac(self, segment: Segment) -> str:
        return segment.mac(self.index)
