"""What a case asks of a set of EVPN VTEPs, in the protocol's vocabulary (AS numbers, route targets, VNIs), never in
a vendor's config syntax. Inner addressing is the vxlan package's (vxlan.scenario.Segment): segment VNI n uses
198.19.<k>.0/24, the inner host behind VTEP i holds .i with MAC 02:4f:49:<k>:00:<i>."""
from __future__ import annotations

from dataclasses import dataclass, field

from harness.protocols.vxlan.scenario import DEFAULT_SEGMENT, VXLAN_PORT, Segment

IBGP_ASN = 65000
EBGP_BASE_ASN = 65000  # eBGP: VTEP i is AS 65000 + i
KEEPALIVE_S, HOLD_S = 3, 9  # short timers: a peer that goes away is noticed within a case


@dataclass(frozen=True)
class Scenario:
    segments: tuple[Segment, ...] = (DEFAULT_SEGMENT,)
    vtep_count: int = 2  # 3: the third VTEP is the second vendor again
    ebgp: bool = False
    # Route targets per VNI to import and export. None: each vendor's own way (FRR derives AS:VNI, RFC 8365
    # 5.1.2.1); a vendor that derives nothing (GoBGP) is given `route_target(segment)`.
    route_targets: dict[int, str] | None = None
    # VTEP index -> the RT it alone uses for every segment (a mismatch on purpose); explicit like route_targets.
    vtep_route_targets: dict[int, str] | None = None
    # An address on each VTEP's bridge in the segment (the SVI, .250 + i): where the VTEP learns its hosts'
    # IP addresses from their ARP, for MAC+IP routes.
    svi: bool = False
    arp_suppression: bool = False
    # Type-5 (RFC 9136): the L3 VNI of the default VRF; each VTEP then announces a prefix of its own (`prefix`),
    # held on a veth pair in its node (this kernel has neither VRF nor dummy devices).
    l3vni: int | None = None

    def __post_init__(self):
        if len({s.vni for s in self.segments}) != len(self.segments):
            raise ValueError("two segments with the same VNI")
        if self.vtep_count not in (2, 3):
            raise ValueError("vtep_count must be 2 or 3")

    @property
    def explicit(self) -> bool:
        """Whether the case names route targets (else each vendor derives its own, where it can)."""
        return self.route_targets is not None or self.vtep_route_targets is not None

    @staticmethod
    def prefix(index: int) -> str:
        """The prefix VTEP `index` announces as a type-5 route: 198.19.<200+index>.0/24 (outside every segment)."""
        return f"198.19.{200 + index}.0/24"

    def asn(self, index: int) -> int:
        return EBGP_BASE_ASN + index if self.ebgp else IBGP_ASN

    def route_target(self, segment: Segment, index: int) -> str:
        """The RT VTEP `index` exports and imports for `segment`: the scenario's, else AS:VNI with the VTEP's AS
        (the RFC 8365 5.1.2.1 derivation, written out for a vendor that derives nothing)."""
        # (vtep_route_targets first: a case that gives both means the exception)
        if self.vtep_route_targets and index in self.vtep_route_targets:
            return self.vtep_route_targets[index]
        if self.route_targets and segment.vni in self.route_targets:
            return self.route_targets[segment.vni]
        return f"{self.asn(index)}:{segment.vni}"


@dataclass(frozen=True)
class Peer:
    address: str
    asn: int


@dataclass(frozen=True)
class Side:
    """One VTEP's view of the lab: what its adapter renders a config from."""
    name: str  # vtep1..3
    index: int
    address: str  # underlay, on eth0; also the BGP router id and the VXLAN source address
    asn: int
    peers: tuple[Peer, ...]
    segments: tuple[Segment, ...]
    port: int = VXLAN_PORT
    route_targets: dict[int, str] = field(default_factory=dict)  # VNI -> RT, given or derived (Scenario.route_target)
    explicit_route_targets: bool = False  # the scenario named them: a vendor must use them, not its own
    svi: bool = False
    arp_suppression: bool = False
    l3vni: int | None = None
    prefix: str | None = None  # with l3vni: the prefix this VTEP announces (Scenario.prefix)

    @property
    def ebgp(self) -> bool:
        return any(peer.asn != self.asn for peer in self.peers)

    def session_attributes(self) -> dict:
        """What every UPDATE this side originates must carry for its sessions: LOCAL_PREF towards iBGP peers (RFC
        4271 5.1.5: a receiver treats an iBGP route without it as withdrawn, RFC 7606 3.d), its own AS first in
        the AS_PATH towards eBGP peers (RFC 4271 5.1.2)."""
        return {"as_path": [self.asn]} if self.ebgp else {"local_pref": 100}

    def inner_address(self, segment: Segment) -> str:
        return segment.address(self.index)

    def inner_mac(self, segment: Segment) -> str:
        return segment.mac(self.index)

    def svi_address(self, segment: Segment) -> str:
        return segment.address(250 + self.index)
