"""NAT traversal (RFC 7296 2.23, RFC 3948): a NAT router of the lab's own (harness.nat: nftables masquerade in its
own namespace) between the pair, and UDP encapsulation forced where no NAT is. The capture is the initiator's, so it
shows the inside of the NAT: what the initiator sent, and the responder's answers after the NAT translated them."""
import pytest

from harness.protocols.ipsec.scenario import Scenario
from harness.protocols.ipsec.wire import IKE_PORT, NAT_T_PORT, nat_detection_hash

pytestmark = [pytest.mark.protocol("ipsec"), pytest.mark.features("psk", "child_sa")]

KEEPALIVE_S = 1
KEEPALIVES = 2


def nat_hashes(message) -> tuple[bytes | None, bytes | None]:
    """(NAT_DETECTION_SOURCE_IP, NAT_DETECTION_DESTINATION_IP) of a message."""
    found = [message.notify(kind) for kind in ("NAT_DETECTION_SOURCE_IP", "NAT_DETECTION_DESTINATION_IP")]
    return tuple(None if n is None else n.hash for n in found)


def hashed(message, address: str, port: int) -> bytes:
    """The hash a NAT_DETECTION notify of this IKE_SA_INIT message carries for this address and port (RFC 7296 2.23:
    the SPIs as in its header)."""
    return nat_detection_hash(message.ispi, message.rspi, address, port)


def floated(wire, initiator: str, responder: str) -> list[str]:
    """What is missing of RFC 3948 / RFC 7296 2.23's move: IKE_AUTH on UDP 4500 both ways (read there as IKE only
    behind the non-ESP marker), and ESP in UDP in both directions."""
    missing = []
    auth = wire.ike("IKE_AUTH")
    if not auth or any(NAT_T_PORT not in (m.sport, m.dport) for m in auth):
        missing.append("IKE_AUTH on UDP 4500 (behind the non-ESP marker)")
    for src, dst in ((initiator, responder), (responder, initiator)):
        flows = wire.esp_between(src, dst)
        if not flows or not all(f.encapsulated for f in flows):
            missing.append(f"ESP in UDP {src} -> {dst}")
    return missing


@pytest.mark.features("psk", "child_sa", "nat_t")
def test_nat_traversal(ipsec_pair):
    """RFC 7296 2.23: each side sends NAT_DETECTION_SOURCE_IP and _DESTINATION_IP in IKE_SA_INIT; the responder's
    destination hash is of the address it answered, the NAT's, so the initiator finds itself behind a NAT. Both then
    move to UDP 4500 with the non-ESP marker (RFC 3948 2.2) and UDP-encapsulate ESP (2.1), and the side behind the
    NAT keeps its mapping open with NAT-keepalives, one 0xFF byte each (2.3)."""
    tunnel = ipsec_pair.establish(Scenario(nat=True, nat_keepalive_s=KEEPALIVE_S))
    assert tunnel.up, tunnel.explain()
    ping = tunnel.ping()
    assert ping.all_answered, ping.output
    initiator, responder = ipsec_pair.addresses
    nat = ipsec_pair.nat.address
    ipsec_pair.wire_until(lambda w: len([k for k in w.keepalives if k.src == initiator]) >= KEEPALIVES,
                          timeout=ipsec_pair.patience(KEEPALIVES * KEEPALIVE_S + 4))
    assert ipsec_pair.nat.translated() > 0, "nothing crossed the NAT router"

    wire = ipsec_pair.wire()
    init = wire.ike("IKE_SA_INIT")
    requests, responses = [m for m in init if not m.is_response], [m for m in init if m.is_response]
    assert requests and responses, init.describe()
    request, response = requests[-1], responses[-1]
    assert all(nat_hashes(m) != (None, None) for m in (request, response)), \
        f"both IKE_SA_INIT messages must carry NAT_DETECTION notifies:\n{init.describe()}"
    destination = nat_hashes(response)[1]
    port = response.dport  # what the NAT left of the initiator's port, as the responder answered it
    assert destination == hashed(response, nat, port), \
        f"the responder's NAT_DETECTION_DESTINATION_IP is not the hash of {nat}:{port}, the address it answered " \
        f"(the NAT's):\n{init.describe()}"
    assert destination != hashed(response, initiator, IKE_PORT), \
        f"the responder hashed the initiator's own address: no NAT seen\n{init.describe()}"
    missing = floated(wire, initiator, responder)
    assert not missing, f"no {', no '.join(missing)} behind a NAT:\n{wire.describe()}"
    keepalives = [k for k in wire.keepalives if k.src == initiator and k.dport == NAT_T_PORT]
    assert len(keepalives) >= KEEPALIVES, \
        f"expected NAT-keepalives from the initiator (behind the NAT) every {KEEPALIVE_S}s of silence:\n" \
        f"{wire.describe()}"


@pytest.mark.features("psk", "child_sa", "forced_encapsulation")
def test_forced_encapsulation(ipsec_pair):
    """RFC 7296 2.23: with no NAT between them, an endpoint may still UDP-encapsulate by faking its
    NAT_DETECTION_SOURCE_IP; both must then move to UDP 4500 and carry ESP in UDP. Each destination hash is of the
    address the message was really sent to: the wire shows there was no NAT."""
    tunnel = ipsec_pair.establish(Scenario(encapsulation=True))
    assert tunnel.up, tunnel.explain()
    ping = tunnel.ping()
    assert ping.all_answered, ping.output
    initiator, responder = ipsec_pair.addresses

    wire = ipsec_pair.wire()
    init = wire.ike("IKE_SA_INIT")
    request = [m for m in init if not m.is_response][-1]
    response = [m for m in init if m.is_response][-1]
    assert nat_hashes(request)[1] == hashed(request, responder, IKE_PORT) and \
        nat_hashes(response)[1] == hashed(response, initiator, IKE_PORT), \
        f"a destination hash shows a NAT where there is none:\n{init.describe()}"
    faked = [m for m, own in ((request, initiator), (response, responder))
             if nat_hashes(m)[0] != hashed(m, own, IKE_PORT)]
    assert faked, f"neither side faked its NAT_DETECTION_SOURCE_IP, yet encapsulation was asked for:\n{init.describe()}"
    missing = floated(wire, initiator, responder)
    assert not missing, f"no {', no '.join(missing)} with encapsulation forced:\n{wire.describe()}"
