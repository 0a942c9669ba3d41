"""What a case asks of an IPsec pair, in the protocol's own vocabulary (IANA transform names, RFC 7296),
never in a vendor's config syntax: each adapter translates."""
from __future__ import annotations

import math

from dataclasses import dataclass, field, replace

from harness.protocols.ipsec.pki import Credentials


MODES = ("tunnel", "transport")  # RFC 4301 4.1; transport is asked for with N(USE_TRANSPORT_MODE), RFC 7296 1.3.1
# The IKE ID type each side identifies itself with (RFC 7296 3.5), its certificate naming it to match: "fqdn"
# (initiator.lab, a dNSName), "ipv4" (its address, an iPAddress), "email" (initiator@lab.example, an rfc822Name),
# "dn" (the subject DN, CN=initiator.lab).
ID_TYPES = ("fqdn", "ipv4", "email", "dn")
# How a side signs with an RSA key (RFC 7427): "pss" RSASSA-PSS in a Digital Signature AUTH (method 14), "pkcs1"
# PKCS#1 v1.5 in one, "legacy" RFC 7296's RSA Digital Signature (method 1) without announcing
# SIGNATURE_HASH_ALGORITHMS. None: the vendor's default.
RSA_SCHEMES = ("pss", "pkcs1", "legacy")
IKE_VERSIONS = (1, 2)  # RFC 2409 (IKEv1, ISAKMP of RFC 2408) and RFC 7296
DPD_ACTIONS = ("clear", "restart")  # what an endpoint does with the SAs of a peer its liveness checks found dead
AEAD_MARKS = ("_GCM_", "_CCM_", "CHACHA20_POLY1305")  # combined-mode ciphers (RFC 5282): no INTEG transform


def is_aead(encryption: str) -> bool:
    return any(mark in encryption for mark in AEAD_MARKS)


@dataclass(frozen=True)
class IkeProposal:
    encryption: str = "ENCR_AES_CBC_128"
    integrity: str | None = "AUTH_HMAC_SHA2_256_128"  # ignored for an AEAD cipher
    prf: str = "PRF_HMAC_SHA2_256"
    group: str = "MODP_2048"
    # RFC 9370: the additional key exchanges after IKE_SA_INIT, one per round (ADDKE1, ADDKE2, ...), each in an
    # IKE_INTERMEDIATE exchange (RFC 9242): Key Exchange Method names ("ML_KEM_768"); "NONE" in a round makes it
    # optional (RFC 9370 2.2.2). Not in `transforms`: a vendor without additional key exchanges is asked for none.
    additional: tuple[str, ...] = ()

    @property
    def transforms(self) -> tuple[str, ...]:
        """What the proposal offers, one transform per type: ENCR, INTEG (none for AEAD), PRF, KE."""
        integrity = () if is_aead(self.encryption) else (self.integrity,)
        return (self.encryption, *integrity, self.prf, self.group)

    @property
    def additional_transforms(self) -> tuple[str, ...]:
        """The additional key exchanges as the codec names a transform of that type: "ADDKE1=ML_KEM_768"."""
        return tuple(f"ADDKE{n}={method}" for n, method in enumerate(self.additional, 1))


ESN_TRANSFORMS = ("ESN", "NO_ESN")  # RFC 7296 3.3.2, transform type 5 (Extended Sequence Numbers, RFC 4303 2.2.1)


@dataclass(frozen=True)
class EspProposal:
    encryption: str = "ENCR_AES_CBC_128"
    integrity: str | None = "AUTH_HMAC_SHA2_256_128"  # None for combined-mode (AEAD) ciphers
    # RFC 7296 1.3.1/3.3.2: a KE transform in a CHILD SA's proposal is perfect forward secrecy: a CREATE_CHILD_SA
    # for it (a rekey, an additional CHILD SA) carries KEi/KEr of that group. None: no KE transform (no PFS). The
    # CHILD SA set up in IKE_AUTH never runs a KE (RFC 7296 1.2): its keys come from the IKE SA's.
    group: str | None = None
    # The ESN transforms offered, in order of preference (ESN_TRANSFORMS); the responder picks exactly one.
    # Empty: whatever the vendor does unasked.
    esn: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        unknown = [e for e in self.esn if e not in ESN_TRANSFORMS]
        if unknown or len(set(self.esn)) != len(self.esn):
            raise ValueError(f"esn must list each of {', '.join(ESN_TRANSFORMS)} at most once, not {self.esn!r}")

    @property
    def transforms(self) -> tuple[str, ...]:
        """What the proposal offers, by transform type: ENCR, INTEG (none for AEAD), KE (if PFS), ESN."""
        integrity = () if is_aead(self.encryption) or self.integrity is None else (self.integrity,)
        group = () if self.group is None else (self.group,)
        return (self.encryption, *integrity, *group, *self.esn)


@dataclass(frozen=True)
class Scenario:
    """Both sides get the same settings unless a `responder_*` field says otherwise for the responder."""
    # 1: IKEv1 (RFC 2409): phase 1 in Main Mode (or Aggressive Mode, below), then Quick Mode for the CHILD SA (an
    # IPsec SA, in IKEv1's words); the proposals keep IKEv2's names, each adapter translating (ENCR, PRF as the
    # phase 1 hash, group; integrity is ESP's only).
    ike_version: int = 2
    aggressive: bool = False  # IKEv1 only: phase 1 in Aggressive Mode (RFC 2409 5.4: three messages, IDs in clear)
    # IKEv1 remote access as Cisco-style clients do it: Aggressive Mode with the group's PSK and the group name as
    # the initiator's ID (ID_KEY_ID), then XAUTH (draft-beaulieu-ike-xauth-02: the responder asks for a user name
    # and password) and Mode Config (draft-dukes-ike-mode-cfg-02: the responder gives the initiator its inner
    # address, the first host of subnets["initiator"], from a pool). Then Quick Mode from that address to the
    # responder's subnet.
    remote_access: bool = False
    group: str = "interop-group"
    xauth_user: str = "interop-user"
    xauth_password: str = "interop-xauth-3b9d"
    auth: str = "psk"  # "psk", or certificates from the run's CA: "rsa", "rsa4096", "ecdsa" (ipsec.pki)
    psk: str = "interop-lab-psk-7f3a"
    responder_psk: str | None = None  # None: the same PSK as the initiator's; set it to make them disagree
    ike: tuple[IkeProposal, ...] = (IkeProposal(),)  # in order of preference; the first one's group goes in KE
    responder_ike: tuple[IkeProposal, ...] | None = None
    esp: tuple[EspProposal, ...] = (EspProposal(),)
    responder_esp: tuple[EspProposal, ...] | None = None
    childless: bool = False  # RFC 6023: IKE SA only, no CHILD SA in IKE_AUTH
    # RFC 8784 post-quantum preshared keys: the PPK_ID a side holds its PPK under (None: no PPK), whether it insists
    # on one (else it falls back to the normal AUTH, NO_PPK_AUTH), and the key itself (the same under every ID).
    ppk_id: str | None = None
    responder_ppk_id: str | None = None
    ppk_required: bool = False
    responder_ppk_required: bool | None = None
    ppk: str = "interop-lab-post-quantum-ppk-5c1e9b7d2a40"
    id_type: str = "fqdn"  # ID_TYPES
    # The identity the responder accepts for the initiator (RFC 7296 2.15: checked against the AUTH and the
    # certificate); None: the initiator's own. Another makes the IDs disagree.
    responder_peer_id: str | None = None
    # RFC 7296 3.5: the initiator may name the responder it wants in IDr; False leaves IDr out (any responder).
    send_idr: bool = True
    rsa_scheme: str | None = None  # RSA_SCHEMES, for auth "rsa"/"rsa4096"
    responder_rsa_scheme: str | None = None
    # The CHILD SA's mode (MODES). Where either side is in transport mode the SA protects the two hosts' own
    # traffic: each side's traffic selector is its own address (fixtures.side_of), not the subnets below, so a mode
    # mismatch is about the mode alone.
    mode: str = "tunnel"
    responder_mode: str | None = None
    dpd_delay_s: int | None = None  # liveness checks (RFC 7296 2.4) after this many idle seconds
    dpd_action: str = "clear"  # a peer found dead: "clear" its SAs, or "restart" (set the tunnel up anew)
    # RFC 7296 2.1/2.4: an unanswered request is retransmitted after `retransmit_timeout_s` (again at that
    # interval where the vendor lets backoff be switched off, else backing off as it does), and once
    # `retransmit_tries` retransmissions went unanswered the peer counts as dead. None: the vendor's defaults.
    retransmit_timeout_s: float | None = None
    retransmit_tries: int | None = None
    ike_rekey_s: int | None = None  # rekey the IKE SA after this many seconds (None: the vendor's default)
    child_rekey_s: int | None = None
    # Who runs the CHILD SA's rekey timer: both (RFC 7296 2.8: either end may rekey), or one, so the rekey comes
    # from a known side with its proposals (a case about the responder's answer to a rekey).
    child_rekey_by: tuple[str, ...] = ("initiator", "responder")
    # RFC 7296 2.6: the responder considers itself under load (each vendor's own knob: a low cookie
    # threshold, a "busy" mode), and the harness leaves it half-open IKE SAs from a third lab node.
    responder_busy: bool = False
    # RFC 3948, RFC 7296 2.23: a NAT router of the lab's own masquerades the initiator (harness.nat): the responder
    # sees the router's address, so both must detect the NAT, float to UDP 4500 and UDP-encapsulate ESP.
    nat: bool = False
    # RFC 7296 2.23: UDP-encapsulate ESP even where no NAT is, both sides (by faking NAT detection, as allowed).
    encapsulation: bool = False
    # RFC 3948 2.3/4: a side behind a NAT sends a NAT-keepalive after this many idle seconds (None: its default).
    nat_keepalive_s: int | None = None
    # Inner subnets live only inside the nodes, so every pair can use the same ones.
    subnets: dict[str, str] = field(default_factory=lambda: {"initiator": "198.19.1.0/24",
                                                            "responder": "198.19.2.0/24"})
    # A second CHILD SA, between these subnets, which the initiator adds to the IKE SA with CREATE_CHILD_SA
    # (RFC 7296 1.3.1) when the case asks (Tunnel.add_child). None: the one CHILD SA of IKE_AUTH only.
    additional_subnets: dict[str, str] | None = None
    # The responder's own view of the subnets, where it differs from the initiator's (traffic selectors, RFC 7296
    # 2.9: the initiator proposes TSi/TSr from `subnets`, the responder narrows them to, or refuses them for, these).
    responder_subnets: dict[str, str] | None = None

    def __post_init__(self) -> None:
        if self.ike_version not in IKE_VERSIONS:
            raise ValueError(f"ike_version must be one of {', '.join(map(str, IKE_VERSIONS))}, not {self.ike_version!r}")
        if (self.aggressive or self.remote_access) and self.ike_version != 1:
            raise ValueError("aggressive and remote_access are IKEv1's: they need ike_version 1")
        if self.remote_access and (self.auth != "psk" or not self.aggressive):
            raise ValueError("remote_access is Aggressive Mode with the group's PSK: it needs aggressive and auth psk")
        for name in ("mode", "responder_mode"):
            if getattr(self, name) not in (*MODES, None):
                raise ValueError(f"{name} must be one of {', '.join(MODES)}, not {getattr(self, name)!r}")
        for name in ("rsa_scheme", "responder_rsa_scheme"):
            if getattr(self, name) not in (*RSA_SCHEMES, None):
                raise ValueError(f"{name} must be one of {', '.join(RSA_SCHEMES)}, not {getattr(self, name)!r}")
        if self.id_type not in ID_TYPES:
            raise ValueError(f"id_type must be one of {', '.join(ID_TYPES)}, not {self.id_type!r}")
        if self.dpd_action not in DPD_ACTIONS:
            raise ValueError(f"dpd_action must be one of {', '.join(DPD_ACTIONS)}, not {self.dpd_action!r}")

    @property
    def dead_peer_after_s(self) -> float | None:
        """The least time from the last packet heard from a silent peer to counting it dead (RFC 7296 2.4): the
        liveness delay, then the check and each of its retransmissions left unanswered for retransmit_timeout_s
        (a vendor that backs off waits longer). None unless all three timers are set."""
        if None in (self.dpd_delay_s, self.retransmit_timeout_s, self.retransmit_tries):
            return None
        return self.dpd_delay_s + (self.retransmit_tries + 1) * self.retransmit_timeout_s

    def slowed(self, factor: float) -> "Scenario":
        """The same scenario with every timer `factor` times as long (whole seconds stay whole): for a pair where a
        side runs under software emulation (harness.vm), whose daemon needs several times as long for the same
        work; a timer set for the host's speed would make the case judge the emulator. 1: itself."""
        if factor == 1:
            return self
        whole = lambda v: None if v is None else math.ceil(v * factor)  # noqa: E731
        return replace(
            self, dpd_delay_s=whole(self.dpd_delay_s), ike_rekey_s=whole(self.ike_rekey_s),
            child_rekey_s=whole(self.child_rekey_s), nat_keepalive_s=whole(self.nat_keepalive_s),
            retransmit_timeout_s=None if self.retransmit_timeout_s is None else self.retransmit_timeout_s * factor)

    @property
    def hosts_only(self) -> bool:
        """Whether the CHILD SA protects only the two hosts' own traffic (either side asks for transport mode)."""
        return "transport" in (self.mode, self.responder_mode)

    def ppk_id_of(self, role: str) -> str | None:
        return self._of(role, "ppk_id")

    def ppk_required_of(self, role: str) -> bool:
        return self._of(role, "ppk_required")

    def rsa_scheme_of(self, role: str) -> str | None:
        return self._of(role, "rsa_scheme")

    def mode_of(self, role: str) -> str:
        return self._of(role, "mode")

    def subnets_of(self, role: str) -> dict[str, str]:
        return self._of(role, "subnets")

    def own_subnet(self, role: str) -> str:
        """The subnet `role` protects, as it sees it itself: where its inner address lives."""
        return self.subnets_of(role)[role]

    def psk_of(self, role: str) -> str:
        return self._of(role, "psk")

    def ike_of(self, role: str) -> tuple[IkeProposal, ...]:
        return self._of(role, "ike")

    def esp_of(self, role: str) -> tuple[EspProposal, ...]:
        return self._of(role, "esp")

    def _of(self, role: str, name: str):
        override = getattr(self, f"responder_{name}") if role == "responder" else None
        return getattr(self, name) if override is None else override


@dataclass(frozen=True)
class Side:
    """One endpoint's view of the lab: everything an adapter needs to render its config."""
    role: str
    address: str
    peer_address: str
    identity: str
    peer_identity: str | None  # None: any peer (the initiator sends no IDr)
    psk: str
    subnet: str
    peer_subnet: str
    credentials: Credentials | None = None  # this side's certificate, key and CA when auth is not "psk"
    id_type: str = "fqdn"  # of both identities (ID_TYPES)

    @property
    def inner_address(self) -> str:
        """The first host of the side's subnet: the source and target of data-plane probes."""
        return inner_address(self.subnet)


def inner_address(subnet: str) -> str:
    import ipaddress
    return str(next(iter(ipaddress.ip_network(subnet).hosts())))  # a /32's hosts() is a list, not an iterator
