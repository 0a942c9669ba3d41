"""What a case asks of an IPsec pair, in the protocol's own vocabulary (IANA transform names, RFC 7296),
never in a vendor's config syntax: each adapter translates."""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class IkeProposal:
    encryption: str = "ENCR_AES_CBC_128"
    integrity: str = "AUTH_HMAC_SHA2_256_128"
    prf: str = "PRF_HMAC_SHA2_256"
    group: str = "MODP_2048"


@dataclass(frozen=True)
class EspProposal:
    encryption: str = "ENCR_AES_CBC_128"
    integrity: str | None = "AUTH_HMAC_SHA2_256_128"  # None for combined-mode (AEAD) ciphers


@dataclass(frozen=True)
class Scenario:
    psk: str = "interop-lab-psk-7f3a"
    responder_psk: str | None = None  # None: the same PSK as the initiator's; set it to make them disagree
    ike: tuple[IkeProposal, ...] = (IkeProposal(),)
    esp: tuple[EspProposal, ...] = (EspProposal(),)
    childless: bool = False  # RFC 6023: IKE SA only, no CHILD SA in IKE_AUTH
    # Inner subnets live only inside the nodes, so every pair can use the same ones.
    subnets: dict[str, str] = field(default_factory=lambda: {"initiator": "198.19.1.0/24",
                                                            "responder": "198.19.2.0/24"})

    def psk_of(self, role: str) -> str:
        return self.responder_psk if role == "responder" and self.responder_psk is not None else self.psk


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

    @property
    def inner_address(self) -> str:
        """The first host of the side's subnet: the source and target of data-plane probes."""
        return inner_address(self.subnet)


def inner_address(subnet: str) -> str:
    import ipaddress
    return str(next(ipaddress.ip_network(subnet).hosts()))
