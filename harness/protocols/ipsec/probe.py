"""IKE_SA_INIT requests built with scapy, for the harness's active peer (harness.peer): half-open IKE SAs
that put a responder under load, and the conformance probes. Nothing here is encrypted: IKE_SA_INIT is
the clear part of IKEv2."""
from __future__ import annotations

import os

from scapy.contrib.ikev2 import IKEv2, IKEv2_KE, IKEv2_Nonce, IKEv2_Proposal, IKEv2_SA, IKEv2_Transform

from harness.protocols.ipsec.ikev2_names import ENCR, INTEG, KE, PRF, TRANSFORM_IDS
from harness.protocols.ipsec.scenario import IkeProposal

IKE_SA_INIT = 34
# RFC 7296 3.4: the KE payload carries the public value, whose length the group fixes.
KE_LENGTHS = {"MODP_2048": 256, "MODP_3072": 384, "MODP_4096": 512, "ECP_256": 64, "ECP_384": 96,
              "CURVE25519": 32}


def _transform_id(transform_type: int, name: str) -> tuple[int, int | None]:
    """IANA name -> (transform id, key length). "ENCR_AES_CBC_128" is ENCR_AES_CBC with a 128-bit key."""
    ids = {v: k for k, v in TRANSFORM_IDS[transform_type].items()}
    if name in ids:
        return ids[name], None
    base, _, bits = name.rpartition("_")
    if base in ids and bits.isdigit():
        return ids[base], int(bits)
    raise ValueError(f"no IANA transform id for {name}")


def _transform(transform_type: int, name: str) -> IKEv2_Transform:
    transform_id, key_length = _transform_id(transform_type, name)
    if key_length is None:
        return IKEv2_Transform(transform_type=transform_type, transform_id=transform_id)
    # scapy writes the Key Length attribute (RFC 7296 3.3.5) only when told the transform is 12 bytes long.
    return IKEv2_Transform(transform_type=transform_type, transform_id=transform_id, length=12,
                           key_length=key_length)


def proposal(number: int, p: IkeProposal) -> IKEv2_Proposal:
    wanted = [(ENCR, p.encryption), (PRF, p.prf), (KE, p.group)]
    if "_GCM_" not in p.encryption and "POLY1305" not in p.encryption:
        wanted.insert(2, (INTEG, p.integrity))
    transforms = [_transform(t, name) for t, name in wanted]
    chain = transforms[0]
    for t in transforms[1:]:
        chain = chain / t
    return IKEv2_Proposal(proposal=number, proto=1, trans_nb=len(transforms), trans=chain)


def ike_sa_init(proposals: tuple[IkeProposal, ...], *, spi: bytes | None = None) -> bytes:
    """A well-formed IKE_SA_INIT request offering `proposals`, with a KE payload for the first one's group."""
    group = proposals[0].group
    chain = proposal(1, proposals[0])
    for number, p in enumerate(proposals[1:], start=2):
        chain = chain / proposal(number, p)
    message = (IKEv2(init_SPI=spi or os.urandom(8), exch_type=IKE_SA_INIT, flags="Initiator")
               / IKEv2_SA(prop=chain)
               / IKEv2_KE(group=_transform_id(KE, group)[0], ke=os.urandom(KE_LENGTHS[group]))
               / IKEv2_Nonce(nonce=os.urandom(32)))
    return bytes(message)
