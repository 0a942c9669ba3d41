"""IKE_SA_INIT requests for the harness's active peer (harness.peer): half-open IKE SAs that put a responder under
load, and the conformance probes. Built with the same description of IKE that reads the wire
(harness.protocols.ipsec.ike), so what a probe sends and what a case reads back cannot disagree. Nothing here is
encrypted: IKE_SA_INIT is the clear part of IKEv2.

A request is described, not assembled by hand: the proposals it offers (scenario proposals, optionally
with transforms no IANA name can say), the group of its KE payload, payloads appended after Nonce, and
for a damaged request the bytes it is cut to.

    ike_sa_init((IkeProposal(),))                                          # well-formed
    ike_sa_init((Offer(p, extra=(Transform(UNASSIGNED_TRANSFORM_TYPE, 1),)), p))  # proposal 1 unacceptable
    ike_sa_init((p,), ke_group="MODP_3072")                                # KE not of the offered group
    ike_sa_init((p,), extra_payloads=(UnknownPayload(critical=True),))     # unknown critical payload
    truncated(ike_sa_init((p,)))                                           # the first half of a request
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Sequence

from harness.protocols.ipsec import ike
from harness.protocols.ipsec.ikev2_names import ENCR, INTEG, KE, PRF
from harness.protocols.ipsec.scenario import IkeProposal, is_aead

IKE_SA_INIT = 34
SA_PAYLOAD, KE_PAYLOAD, NONCE_PAYLOAD = 33, 34, 40
PROTOCOL_IKE = 1
# RFC 7296 3.4: the KE payload carries the public value, whose length the group fixes.
KE_LENGTHS = {"MODP_2048": 256, "MODP_3072": 384, "MODP_4096": 512, "ECP_256": 64, "ECP_384": 96,
              "CURVE25519": 32}
NONCE_LENGTH = 32
# RFC 7296 3.2: the C bit is the top bit of the byte after Next Payload (scapy's contrib IKEv2 layer calls bit 0
# of that byte "critical", which is the last RESERVED bit on the wire; ike.py's generic header has it right).
CRITICAL = 0x80

# Numbers the IANA IKEv2 registries leave unassigned, far above the assigned ones (ikev2_names, wire): no
# conforming implementation can know them. Not the private-use ranges, to which an implementation may give
# a meaning of its own.
UNASSIGNED_ENCRYPTION_ID = 1000     # ENCR ids: IANA assigns below 1024; 1024-65535 private use
UNASSIGNED_TRANSFORM_TYPE = 200     # Transform Types: 1-12 assigned (RFC 7296, RFC 9370); 241-255 private use
UNASSIGNED_PAYLOAD_TYPE = 100       # Payload Types: 33-54 assigned; 128-255 private use


@dataclass(frozen=True)
class Transform:
    """A transform given by its numbers: for what no IANA name, and so no IkeProposal, can say."""
    type: int
    id: int


@dataclass(frozen=True)
class Offer:
    """One proposal as the probe sends it: a scenario proposal's transforms, then `extra` ones."""
    ike: IkeProposal
    extra: tuple[Transform, ...] = ()


@dataclass(frozen=True)
class UnknownPayload:
    """A payload of a type the responder cannot know, appended after Nonce (RFC 7296 2.5: with the critical
    bit the whole message must be rejected, without it the payload skipped)."""
    type: int = UNASSIGNED_PAYLOAD_TYPE
    critical: bool = False
    body: bytes = bytes(4)


def _typed_names(p: IkeProposal) -> list[tuple[int, str]]:
    """(transform type, name) in the order the probe writes them: ENCR, PRF, INTEG (none for AEAD), KE."""
    wanted = [(ENCR, p.encryption), (PRF, p.prf), (KE, p.group)]
    if not is_aead(p.encryption):
        wanted.insert(2, (INTEG, p.integrity))
    return wanted


def transform_names(p: IkeProposal) -> tuple[str, ...]:
    """The transforms a proposal offers, in the order they are written (ENCR, PRF, INTEG, KE) and named as
    the transcript names them. An AEAD cipher (RFC 5282) goes without INTEG."""
    return tuple(name for _, name in _typed_names(p))


def proposal(number: int, offer: IkeProposal | Offer) -> ike.Proposal:
    """Proposal `number` for protocol IKE: a scenario proposal's transforms (ike.transform reads "ENCR_AES_CBC_128"
    as ENCR_AES_CBC with a Key Length attribute, "ENCR_1000" as ENCR ID 1000), then the offer's extra ones."""
    offer = offer if isinstance(offer, Offer) else Offer(offer)
    transforms = [ike.transform(t, name) for t, name in _typed_names(offer.ike)]
    transforms += [ike.transform(f"ADDKE{n}", method) for n, method in enumerate(offer.ike.additional, 1)]
    transforms += [ike.Transform(type=t.type, id=t.id) for t in offer.extra]
    return ike.Proposal(number=number, protocol=PROTOCOL_IKE, transforms=transforms)


def ike_sa_init(proposals: Sequence[IkeProposal | Offer], *, spi: bytes | None = None,
                ke_group: str | None = None, extra_payloads: Sequence[UnknownPayload] = ()) -> bytes:
    """An IKE_SA_INIT request offering `proposals` (numbered from 1), with a KE payload for `ke_group` --
    by default the first proposal's group, as RFC 7296 3.4 says it should be -- a Nonce, then
    `extra_payloads`."""
    first = proposals[0].ike if isinstance(proposals[0], Offer) else proposals[0]
    group = ke_group or first.group
    payloads = [ike.SecurityAssociation(proposals=[proposal(n, p) for n, p in enumerate(proposals, start=1)]),
                ike.KeyExchange(group=group, key_data=os.urandom(KE_LENGTHS[group])),
                ike.Nonce(nonce=os.urandom(NONCE_LENGTH))]
    payloads += [ike.Opaque.of(p.type, p.body, critical=p.critical) for p in extra_payloads]
    return bytes(ike.Isakmp(ispi=spi or os.urandom(8), exchange=IKE_SA_INIT, flags="I", payloads=payloads))


def truncated(message: bytes, length: int | None = None) -> bytes:
    """The first `length` bytes of a message (by default half of it): a request cut short in transit, whose
    IKE header still gives the whole message's length."""
    return message[:len(message) // 2 if length is None else length]


def spi_of(message: bytes) -> bytes:
    """The initiator's SPI: the first eight bytes of the IKE header, which a response repeats."""
    return message[:8]
