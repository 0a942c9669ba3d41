"""Identities (RFC 7296 2.15, 3.5; RFC 4945): each side names itself in IDi/IDr with an ID type, and its
certificate must name the same identity (subjectAltName, or the subject DN for ID_DER_ASN1_DN). The cases run
childless with RSA certificates and read the decrypted IKE_AUTH."""
import pytest

from harness.protocols.ipsec.fixtures import identity_of
from harness.protocols.ipsec.scenario import Scenario

pytestmark = [pytest.mark.protocol("ipsec"), pytest.mark.features("rsa", "childless", "identities"),
              pytest.mark.any_features("key_export")]

# scenario.ID_TYPES -> the ID Type on the wire (RFC 7296 3.5, as ike.ID_TYPES names it)
WIRE_ID_TYPES = {"fqdn": "FQDN", "ipv4": "IPv4", "email": "RFC822", "dn": "DER_ASN1_DN"}


def ike_auth(ipsec_pair):
    decrypted = ipsec_pair.decrypted().ike("IKE_AUTH")
    opened = [m for m in decrypted if m.decrypted]
    requests, responses = [m for m in opened if not m.is_response], [m for m in opened if m.is_response]
    assert requests, f"no IKE_AUTH request could be read:\n{decrypted.describe()}"
    return requests[0], (responses or [None])[0], decrypted.describe()


def names(payload, id_type: str, identity: str) -> bool:
    """Whether an IDi/IDr payload carries `identity` as an ID of `id_type`."""
    if payload is None or str(payload.id_type) != WIRE_ID_TYPES[id_type]:
        return False
    if id_type == "dn":
        return common_names(payload.id_data or b"") == [identity.removeprefix("CN=")]
    return payload.value == identity


COMMON_NAME = bytes.fromhex("0603550403")  # OID 2.5.4.3, as DER


def common_names(der: bytes) -> list[str]:
    """The CN values of a DER Name (RFC 5280 4.1.2.4), whatever string type encodes them: strongSwan writes a DN from
    its config as PrintableString where the certificate (cryptography) has UTF8String; DN matching (RFC 4518)
    compares the values, not the bytes."""
    found, at = [], der.find(COMMON_NAME)
    while at >= 0:
        start = at + len(COMMON_NAME)
        if start + 2 <= len(der) and der[start + 1] < 0x80:
            found.append(der[start + 2:start + 2 + der[start + 1]].decode(errors="replace"))
        at = der.find(COMMON_NAME, start)
    return found


def identifies(ipsec_pair, id_type: str) -> None:
    """RFC 7296 3.5/2.15: with IDs of `id_type`, each side sends its identity in IDi/IDr with that ID Type, matching
    the certificate it sends, and the peer accepts it: the IKE SA comes up."""
    tunnel = ipsec_pair.establish(Scenario(childless=True, auth="rsa", id_type=id_type))
    addresses = dict(zip(("initiator", "responder"), ipsec_pair.addresses))
    request, response, shown = ike_auth(ipsec_pair)
    assert tunnel.up, f"{tunnel.explain()}\n{shown}"
    assert names(request.payload("IDi"), id_type, identity_of("initiator", id_type, addresses)), \
        f"expected IDi {WIRE_ID_TYPES[id_type]} {identity_of('initiator', id_type, addresses)}:\n{shown}"
    assert names(response.payload("IDr"), id_type, identity_of("responder", id_type, addresses)), \
        f"expected IDr {WIRE_ID_TYPES[id_type]} {identity_of('responder', id_type, addresses)}:\n{shown}"


def test_id_fqdn(ipsec_pair):
    """RFC 7296 3.5 ID_FQDN, against the certificate's dNSName subjectAltName (RFC 4945 3.1.2)."""
    identifies(ipsec_pair, "fqdn")


def test_id_ipv4(ipsec_pair):
    """RFC 7296 3.5 ID_IPV4_ADDR, against the certificate's iPAddress subjectAltName (RFC 4945 3.1.1)."""
    identifies(ipsec_pair, "ipv4")


def test_id_email(ipsec_pair):
    """RFC 7296 3.5 ID_RFC822_ADDR, against the certificate's rfc822Name subjectAltName (RFC 4945 3.1.3)."""
    identifies(ipsec_pair, "email")


def test_id_dn(ipsec_pair):
    """RFC 7296 3.5 ID_DER_ASN1_DN: the DER of the certificate's subject DN, byte for byte (RFC 4945 3.1.5)."""
    identifies(ipsec_pair, "dn")


def test_id_mismatch(ipsec_pair):
    """RFC 7296 2.15: a responder that expects another identity than the initiator's IDi (which its certificate
    proves) does not set the IKE SA up: it answers IKE_AUTH with AUTHENTICATION_FAILED."""
    tunnel = ipsec_pair.establish(Scenario(childless=True, auth="rsa", responder_peer_id="someone-else.lab"))
    request, response, shown = ike_auth(ipsec_pair)
    assert not tunnel.up, f"the IKE SA came up for an identity the responder does not expect:\n{shown}"
    assert response is not None and response.notify("AUTHENTICATION_FAILED") is not None, \
        f"expected AUTHENTICATION_FAILED in the IKE_AUTH response:\n{shown}"


def test_idr_omitted(ipsec_pair):
    """RFC 7296 3.5/2.15: IDr in the IKE_AUTH request is optional (the initiator may not know whom it talks to); a
    responder that gets none answers with its own IDr, which the initiator checks against the certificate."""
    tunnel = ipsec_pair.establish(Scenario(childless=True, auth="rsa", send_idr=False))
    request, response, shown = ike_auth(ipsec_pair)
    assert request.payload("IDr") is None, f"the initiator was told to send no IDr:\n{shown}"
    assert tunnel.up, f"{tunnel.explain()}\n{shown}"
    assert names(response.payload("IDr"), "fqdn", "responder.lab"), shown
