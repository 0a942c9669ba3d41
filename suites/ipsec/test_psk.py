"""IKEv2 with pre-shared keys (RFC 7296): the first tunnel every interop event starts with."""
import pytest

from harness.protocols.ipsec.scenario import Scenario

pytestmark = [pytest.mark.protocol("ipsec"), pytest.mark.features("psk")]


@pytest.mark.severity("critical")  # the tunnel every interop event starts with
@pytest.mark.features("psk", "child_sa")
def test_psk_tunnel(ipsec_pair):
    """RFC 7296 1.1.1/1.2: IKE_SA_INIT and IKE_AUTH, one request and one response each, set up the IKE SA and
    the first CHILD SA; ESP then carries traffic between the protected subnets in both directions."""
    tunnel = ipsec_pair.establish(Scenario())
    assert tunnel.up, tunnel.explain()
    for role in ("initiator", "responder"):
        assert tunnel.child_sas(role), f"{role} reports no installed CHILD SA\n{tunnel.explain()}"
    ping = tunnel.ping()
    assert ping.all_answered, ping.output

    wire = ipsec_pair.wire()
    init, auth = wire.ike("IKE_SA_INIT"), wire.ike("IKE_AUTH")
    assert [m.is_response for m in init] == [False, True], f"expected one IKE_SA_INIT exchange:\n{init.describe()}"
    assert not any(m.errors for m in init), f"error notify in IKE_SA_INIT:\n{init.describe()}"
    assert [m.is_response for m in auth] == [False, True], f"expected one IKE_AUTH exchange:\n{auth.describe()}"
    initiator, responder = ipsec_pair.addresses
    forward, back = wire.esp_between(initiator, responder), wire.esp_between(responder, initiator)
    assert sum(f.packets for f in forward) >= ping.sent and sum(f.packets for f in back) >= ping.received, \
        f"expected ESP for {ping.sent} echo requests and replies:\n{wire.describe()}"
    if ipsec_pair.keys()[1]:  # a side exported its ESP keys: show the echoes inside the ESP, per SPI
        src, dst = tunnel.inner_addresses
        echoes = ipsec_pair.echoes_in_esp()
        requests = {e.spi for e in echoes if (e.kind, e.src, e.dst) == ("request", src, dst)}
        replies = {e.spi for e in echoes if (e.kind, e.src, e.dst) == ("reply", dst, src)}
        assert len([e for e in echoes if e.kind == "request"]) == ping.sent and requests and replies, \
            f"expected {ping.sent} echo requests {src} > {dst} and their replies inside ESP, got {echoes}"
        assert {f.spi for f in forward} >= requests and {f.spi for f in back} >= replies, \
            "the echoes travelled inside SPIs of the wrong direction"


def test_wrong_psk(ipsec_pair):
    """RFC 7296 2.15: a responder that cannot verify the initiator's AUTH answers IKE_AUTH with
    AUTHENTICATION_FAILED; no CHILD SA comes up and no ESP is sent."""
    tunnel = ipsec_pair.establish(Scenario(responder_psk="a-different-secret"))
    assert not tunnel.up, f"the tunnel came up with mismatched PSKs\n{tunnel.explain()}"
    assert tunnel.auth_failed, f"the initiator did not report an authentication failure\n{tunnel.explain()}"
    for role in ("initiator", "responder"):
        assert not tunnel.child_sas(role), f"{role} installed a CHILD SA despite the failed authentication"

    wire = ipsec_pair.wire()
    auth = wire.ike("IKE_AUTH")
    assert [m.is_response for m in auth][:2] == [False, True], f"IKE_AUTH was not answered:\n{auth.describe()}"
    assert not wire.esp(), f"ESP on the wire after a failed authentication:\n{wire.describe()}"
    if ipsec_pair.ike_keys_exported:  # else (Libreswan only) the initiator's report above stands
        response = ipsec_pair.decrypted().ike("IKE_AUTH")[1]
        assert response.decrypted and response.notify("AUTHENTICATION_FAILED"), \
            f"IKE_AUTH response without AUTHENTICATION_FAILED:\n{response.describe()}"


REKEY_TIMEOUT_S = 3 + 5  # the IKE SA's rekey time, and room for a CREATE_CHILD_SA retransmitted (strongSwan: 4 s)


def rekeyed(rekeys) -> tuple[bool, bool]:
    """Whether an answered CREATE_CHILD_SA rekeyed the CHILD SA (N(REKEY_SA)), and one the IKE SA (an SA payload for
    protocol IKE), as far as the exported keys open them (RFC 7296 1.3.2, 1.3.3)."""
    answered = [m for m in rekeys if not m.is_response and m.decrypted
                and any(r.is_response and r.message.message_id == m.message.message_id
                        and r.message.ispi == m.message.ispi for r in rekeys)]
    return (any(m.notify("REKEY_SA") for m in answered),
            any(p.protocol == "IKE" for m in answered for sa in m.payloads_of("SA") for p in sa.proposals))


@pytest.mark.features("psk", "child_sa", "rekey")
@pytest.mark.any_features("key_export")  # the rekeys are judged in the decrypted CREATE_CHILD_SA exchanges
def test_rekey(ipsec_pair):
    """RFC 7296 1.3.2/1.3.3/2.8: CREATE_CHILD_SA rekeys the CHILD SA (N(REKEY_SA) naming the old SPI) and the
    IKE SA (an SA payload for protocol IKE); traffic keeps flowing, under the new SPIs."""
    # The shortest whole-second timers a second apart, so the two rekeys never overlap (RFC 7296 2.25's collisions
    # are not this case): the CHILD SA's at 2 s, the IKE SA's at 3 s after set-up.
    tunnel = ipsec_pair.establish(Scenario(child_rekey_s=2, ike_rekey_s=3))
    assert tunnel.up, tunnel.explain()
    assert tunnel.ping(count=1).all_answered
    ipsec_pair.decrypted_until(lambda d: all(rekeyed(d.ike("CREATE_CHILD_SA"))),
                               timeout=ipsec_pair.patience(REKEY_TIMEOUT_S))  # both answered: the case judges the stopped capture
    for node in ipsec_pair.nodes.values():
        node.ensure_running()
    after = tunnel.ping(count=3)
    assert after.all_answered, f"no traffic after the rekeys:\n{after.output}"

    rekeys = ipsec_pair.decrypted().ike("CREATE_CHILD_SA")
    requests = [m for m in rekeys if not m.is_response]
    assert requests and all(m.decrypted for m in rekeys), f"no readable CREATE_CHILD_SA:\n{rekeys.describe()}"
    assert any(m.notify("REKEY_SA") for m in requests), f"no CHILD SA rekey (REKEY_SA):\n{rekeys.describe()}"
    assert any(p.protocol == "IKE" for m in requests for sa in m.payloads_of("SA") for p in sa.proposals), \
        f"no IKE SA rekey (SA for protocol IKE):\n{rekeys.describe()}"
    echoes = [e for e in ipsec_pair.echoes_in_esp() if e.kind == "request"]
    rekeyed_spis = {int.from_bytes(p.spi, "big") for m in rekeys for sa in m.payloads_of("SA")
                    for p in sa.proposals if p.protocol == "ESP"}
    assert len(echoes) == 4 and echoes[-1].spi != echoes[0].spi and echoes[-1].spi in rekeyed_spis, \
        f"echo requests by SPI {[hex(e.spi) for e in echoes]}; SPIs from CREATE_CHILD_SA {sorted(map(hex, rekeyed_spis))}"
