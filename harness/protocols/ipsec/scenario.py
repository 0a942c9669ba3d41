"""What a case asks of an IPsec pair, in the protocol's own vocabulary (IANA transform names, RFC 7296),
never in a vendor's config syntax: each adapter translates."""
from __future__ import annotations

import math

from dataclasses import dataclass, field, replace

from harness.protocols.ipsec.pki import Credentials


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


@dataclass(frozen=True)
class EspProposal:
    encryption: str = "ENCR_AES_CBC_128"
    integrity: str | None = "AUTH_HMAC_SHA2_256_128"  # None for combined-mode (AEAD) ciphers


@dataclass(frozen=True)
class Scenario:
    """Both sides get the same settings unless a `responder_*` field says otherwise for the responder."""
    auth: str = "psk"  # "psk", or certificates from the run's CA: "rsa", "rsa4096", "ecdsa" (ipsec.pki)
    psk: str = "interop-lab-psk-7f3a"
    responder_psk: str | None = None  # None: the same PSK as the initiator's; set it to make them disagree
    ike: tuple[IkeProposal, ...] = (IkeProposal(),)  # in order of preference; the first one's group goes in KE
    responder_ike: tuple[IkeProposal, ...] | None = None
    esp: tuple[EspProposal, ...] = (EspProposal(),)
    responder_esp: tuple[EspProposal, ...] | None = None
    childless: bool = False  # RFC 6023: IKE SA only, no CHILD SA in IKE_AUTH
    dpd_delay_s: int | None = None  # liveness checks (RFC 7296 2.4) after this many idle seconds
    dpd_action: str = "clear"  # a peer found dead: "clear" its SAs, or "restart" (set the tunnel up anew)
    # RFC 7296 2.1/2.4: an unanswered request is retransmitted after `retransmit_timeout_s` (again at that
    # interval where the vendor lets backoff be switched off, else backing off as it does), and once
    # `retransmit_tries` retransmissions went unanswered the peer counts as dead. None: the vendor's defaults.
    retransmit_timeout_s: float | None = None
    retransmit_tries: int | None = None
    ike_rekey_s: int | None = None  # rekey the IKE SA after this many seconds (None: the vendor's default)
    child_rekey_s: int | None = None
    # RFC 7296 2.6: the responder considers itself under load (each vendor's own knob: a low cookie
    # threshold, a "busy" mode), and the harness leaves it half-open IKE SAs from a third lab node.
    responder_busy: bool = False
    # Inner subnets live only inside the nodes, so every pair can use the same ones.
    subnets: dict[str, str] = field(default_factory=lambda: {"initiator": "198.19.1.0/24",
                                                            "responder": "198.19.2.0/24"})

    def __post_init__(self) -> None:
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
            child_rekey_s=whole(self.child_rekey_s),
            retransmit_timeout_s=None if self.retransmit_timeout_s is None else self.retransmit_timeout_s * factor)

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
    peer_identity: str
    psk: str
    subnet: str
    peer_subnet: str
    credentials: Credentials | None = None  # this side's certificate, key and CA when auth is not "psk"

    @property
    def inner_address(self) -> str:
        """The first host of the side's subnet: the source and target of data-plane probes."""
        return inner_address(self.subnet)


def inner_address(subnet: str) -> str:
    import ipaddress
    return str(next(ipaddress.ip_network(subnet).hosts()))
