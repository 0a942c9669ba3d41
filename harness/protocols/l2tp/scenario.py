"""What a case asks of an L2TP pair, in RFC 2661's vocabulary (never a vendor's config syntax): each adapter
translates. Inner (PPP) addresses are the harness's: the LNS end of the session is 198.19.200.1 and it assigns
198.19.200.2 to the LAC end (IPCP)."""
from __future__ import annotations

from dataclasses import dataclass

from harness.protocols.ipsec.scenario import EspProposal, IkeProposal

LNS_INNER, LAC_INNER = "198.19.200.1", "198.19.200.2"
L2TP_PORT = 1701
RETRANSMIT_CAP_S = 8.0  # RFC 2661 5.8: the doubling may be capped, at no less than 8 s


@dataclass(frozen=True)
class Scenario:
    secret: str | None = "interop-secret"  # tunnel authentication (RFC 2661 5.1.1); None: off
    lns_secret: str | None = None  # a different secret on the LNS (the wrong-secret case); None: the same
    hide_avps: bool = False  # hide the AVPs that may be hidden (RFC 2661 4.3), with the tunnel secret
    hidden_padding: int = 0  # random octets after each hidden value, obscuring its length (4.3: optional)
    hello_interval_s: int = 60  # the keepalive (Hello) interval, both sides
    ppp_auth: str = "pap"  # "none", "pap" or "chap": how the LNS authenticates the PPP user
    username: str = "interop"
    password: str = "interop-password"
    # RFC 2661 5.8: an unacknowledged control message is sent again after `retransmit_s`, the wait doubling after
    # each retransmission (capped at RETRANSMIT_CAP_S), `max_retransmissions` times; then its sender clears the
    # tunnel. The RFC recommends 1 s and 5 and has both configurable. None: the vendor's own. Only a vendor declaring
    # "retransmit_timers" takes them (xl2tpd's and l2tpns' are built in).
    retransmit_s: float | None = None
    max_retransmissions: int | None = None

    def __post_init__(self):
        if self.retransmit_s is not None and not self.retransmit_s > 0:
            raise ValueError(f"retransmit_s must be a positive number of seconds, not {self.retransmit_s!r}")
        if self.max_retransmissions is not None and self.max_retransmissions < 0:
            raise ValueError(f"max_retransmissions must be 0 or more, not {self.max_retransmissions!r}")
        if not 0 <= self.hidden_padding <= 256:
            raise ValueError(f"hidden_padding must be 0 to 256 octets, not {self.hidden_padding!r}")
        if self.ppp_auth not in ("none", "pap", "chap"):
            raise ValueError(f"ppp_auth must be none, pap or chap, not {self.ppp_auth!r}")

    def secret_of(self, role: str) -> str | None:
        return self.lns_secret if role == "lns" and self.lns_secret is not None else self.secret

    @property
    def gives_up_after_s(self) -> float | None:
        """From a control message's first sending to its sender clearing the tunnel when no sending of it is
        acknowledged, on the scenario's schedule (None where it sets none): see clears_after_s."""
        if self.retransmit_s is None or self.max_retransmissions is None:
            return None
        return clears_after_s(self.retransmit_s, self.max_retransmissions)


def clears_after_s(retransmit_s: float, retransmissions: int, cap_s: float = RETRANSMIT_CAP_S) -> float:
    """RFC 2661 5.8: the sender waits `retransmit_s` after the first sending, twice that after each retransmission
    (at most `cap_s`), and clears the tunnel once the wait after its last retransmission passed unacknowledged."""
    return sum(min(retransmit_s * 2 ** n, cap_s) for n in range(retransmissions + 1))


def last_wait_s(retransmit_s: float, retransmissions: int, cap_s: float = RETRANSMIT_CAP_S) -> float:
    """The wait after the last of `retransmissions` retransmissions (RFC 2661 5.8), before the tunnel is cleared."""
    return min(retransmit_s * 2 ** retransmissions, cap_s)


# The robustness probes (RFC 2661 4.1, 5.8): what the probing side does wrong, once, on purpose.
PROBES = {
    "result_code_8": "clears the call with a CDN whose Result Code AVP is 8 bytes (result code, no error code)",
    "unknown_avp": "puts an unknown vendor AVP without the M bit in its SCCRQ / SCCRP",
    "unknown_mandatory_avp": "puts an unknown vendor AVP with the M bit in its SCCRQ / SCCRP",
    "duplicate": "sends again a message the other side has acknowledged, with its Ns",
    "withhold_ack": "treats the other side's SCCRP (probing as LAC) or SCCCN (as LNS) as lost: no acknowledgement",
}


@dataclass(frozen=True)
class Protection:
    """RFC 3193's IPsec under L2TP, in RFC terms: IKEv1 (RFC 2409) Main Mode authenticated with a pre-shared key,
    then a Quick Mode SA in transport mode whose selectors are the two hosts and UDP port 1701 at both ends (RFC
    2661 8.1 lets a LAC send from another port; built-in clients and xl2tpd send from 1701, and a selector with any
    port makes a template Libreswan cannot put in the kernel ahead of time), ESP (RFC 4303) carrying every L2TP
    message. The proposals are ones built-in L2TP/IPsec clients offer and gateways accept (AES-CBC-256 with SHA-1,
    MODP 2048); both sides are given the same ones."""
    psk: str = "interop-l2tp-ipsec-psk-91c4"
    ike: IkeProposal = IkeProposal(encryption="ENCR_AES_CBC_256", integrity="AUTH_HMAC_SHA1_96",
                                   prf="PRF_HMAC_SHA1", group="MODP_2048")
    esp: EspProposal = EspProposal(encryption="ENCR_AES_CBC_256", integrity="AUTH_HMAC_SHA1_96")
    port: int = L2TP_PORT


@dataclass(frozen=True)
class Side:
    """One role's view of the lab: what its adapter renders a config from."""
    role: str  # "lac" or "lns"
    address: str  # its underlay address
    peer_address: str
    hostname: str  # its Host Name AVP
    secret: str | None
    local_inner: str  # its end of the PPP session
    remote_inner: str
    misbehave: str | None = None  # the robustness probe this side plays (only a vendor declaring "probes")
    # RFC 3193: the IPsec under this side's L2TP, for a stack declaring "ipsec" (both sides of its pair are); None:
    # L2TP in the clear
    protection: Protection | None = None
