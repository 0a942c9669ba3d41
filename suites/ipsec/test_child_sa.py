"""CHILD SAs in depth (RFC 7296 1.3, 2.8, 3.3; RFC 4303): perfect forward secrecy on rekey, extended sequence
numbers, rekeys from both sides at once. What breaks between vendors in the field shows late (at the first rekey)
or only in ESP itself, so each case judges the decrypted CREATE_CHILD_SA and the decrypted ESP, not the daemons'
word."""
import allure
import pytest

from harness.errors import HarnessError
from harness.protocols.ipsec.scenario import ESN_TRANSFORMS, EspProposal, Scenario, inner_address
from harness.protocols.ipsec.transcript import DecryptedMessages

pytestmark = [pytest.mark.protocol("ipsec"), pytest.mark.features("psk", "child_sa")]

CHILD_REKEY_S = 2
REKEY_TIMEOUT_S = CHILD_REKEY_S + 6  # the rekey, and room for a retry after INVALID_KE_PAYLOAD or a retransmission
PFS = EspProposal(group="MODP_2048")


def exchanges_of(messages: DecryptedMessages) -> list[tuple]:
    """(request, response or None) per request, in order: a response answers the request with its message ID
    on the same IKE SA, sent back the way the request came (RFC 7296 2.2)."""
    pairs = []
    for request in (m for m in messages if not m.is_response):
        response = next((m for m in messages if m.is_response and m.message_id == request.message_id
                         and m.message.ispi == request.message.ispi and m.message.src == request.message.dst), None)
        pairs.append((request, response))
    return pairs


def child_rekeys(messages: DecryptedMessages) -> list[tuple]:
    """The CREATE_CHILD_SA exchanges that rekey a CHILD SA (N(REKEY_SA), RFC 7296 1.3.3), decrypted."""
    return [(q, r) for q, r in exchanges_of(messages.ike("CREATE_CHILD_SA")) if q.decrypted and q.notify("REKEY_SA")]


def esp_proposals(message) -> list:
    return [p for sa in message.payloads_of("SA") for p in sa.proposals if p.protocol == "ESP"]


def ke_transforms(proposal) -> list[str]:
    return [t.algorithm for t in proposal.transforms if t.type == "KE"]


def esn_transforms(proposal) -> list[str]:
    return [t.algorithm for t in proposal.transforms if t.type == "ESN"]


def spis(message) -> set[int]:
    return {int.from_bytes(p.spi, "big") for p in esp_proposals(message)}


def deleted_esp_spis(message) -> set[int]:
    return {int.from_bytes(spi, "big") for d in message.payloads_of("Delete") if d.protocol == "ESP" for spi in d.spis}


def ike_auth_has_no_ke(ipsec_pair) -> None:
    """RFC 7296 1.2: IKE_AUTH carries no KEi/KEr, so its SA payloads "cannot contain Transform Type 4 (Diffie-Hellman
    group) with any value other than NONE"."""
    for message in ipsec_pair.decrypted().ike("IKE_AUTH"):
        for proposal in esp_proposals(message):
            assert set(ke_transforms(proposal)) <= {"NONE"}, \
                f"a KE transform in IKE_AUTH's SA (RFC 7296 1.2):\n{message.describe()}"


def traffic_moved(ipsec_pair, rekey_messages) -> None:
    """The echo requests after the rekey travel in an SPI the rekey made, not the first one."""
    echoes = [e for e in ipsec_pair.echoes_in_esp() if e.kind == "request"]
    new = set().union(*(spis(m) for m in rekey_messages))
    assert echoes and echoes[-1].spi != echoes[0].spi and echoes[-1].spi in new, \
        f"echo requests by SPI {[hex(e.spi) for e in echoes]}; SPIs the rekey made {sorted(map(hex, new))}"


@pytest.mark.features("psk", "child_sa", "rekey", "pfs")
@pytest.mark.any_features("key_export")  # judged in the decrypted CREATE_CHILD_SA exchanges
def test_pfs_rekey(ipsec_pair):
    """RFC 7296 1.3.3/3.3.2: a CHILD SA whose proposal has a KE transform is rekeyed with PFS: the CREATE_CHILD_SA
    request carries N(REKEY_SA), that KE transform and KEi of its group; the response chooses the same group and
    carries KEr of it; traffic then moves to the new SPIs."""
    tunnel = ipsec_pair.establish(Scenario(esp=(PFS,), child_rekey_s=CHILD_REKEY_S, child_rekey_by=("initiator",)))
    assert tunnel.up, tunnel.explain()
    assert tunnel.ping(count=1).all_answered, tunnel.explain()
    ipsec_pair.decrypted_until(lambda d: any(r for _, r in child_rekeys(d)),
                               timeout=ipsec_pair.patience(REKEY_TIMEOUT_S))
    after = tunnel.ping(count=3)
    assert after.all_answered, f"no traffic after the rekey:\n{after.output}"

    decrypted = ipsec_pair.decrypted()
    rekeys = child_rekeys(decrypted)
    assert rekeys, \
        f"no CHILD SA rekey (CREATE_CHILD_SA with N(REKEY_SA)):\n{decrypted.ike('CREATE_CHILD_SA').describe()}"
    request, response = rekeys[0]
    assert response is not None and response.decrypted, f"the rekey was not answered:\n{request.describe()}"
    offered = [ke_transforms(p) for p in esp_proposals(request)]
    assert offered and all(PFS.group in groups for groups in offered), \
        f"expected the KE transform {PFS.group} in every proposal:\n{request.describe()}"
    kei, ker = request.payload("KE"), response.payload("KE")
    assert kei is not None and kei.group == PFS.group, f"expected KEi of {PFS.group}:\n{request.describe()}"
    [chosen] = esp_proposals(response) or [None]
    assert chosen is not None and ke_transforms(chosen) == [PFS.group], \
        f"the response must choose one proposal with the KE transform {PFS.group}:\n{response.describe()}"
    assert ker is not None and ker.group == PFS.group, f"expected KEr of {PFS.group}:\n{response.describe()}"
    ike_auth_has_no_ke(ipsec_pair)
    traffic_moved(ipsec_pair, (request, response))


@pytest.mark.features("psk", "child_sa", "rekey", "pfs", "pfs_groups")
@pytest.mark.any_features("key_export")  # judged in the decrypted CREATE_CHILD_SA exchanges
def test_pfs_group_mismatch_on_rekey(ipsec_pair):
    """RFC 7296 1.3: a responder that accepts a proposal whose group is not KEi's "MUST reject the request and
    indicate its preferred Diffie-Hellman group in the INVALID_KE_PAYLOAD Notify payload" (not NO_PROPOSAL_CHOSEN);
    the initiator retries with that group, and the old CHILD SA lives on until the retry has rekeyed it."""
    modp3072, modp2048 = EspProposal(group="MODP_3072"), EspProposal(group="MODP_2048")
    tunnel = ipsec_pair.establish(Scenario(esp=(modp3072, modp2048), responder_esp=(modp2048,),
                                           child_rekey_s=CHILD_REKEY_S, child_rekey_by=("initiator",)))
    assert tunnel.up, tunnel.explain()
    assert tunnel.ping(count=1).all_answered, tunnel.explain()
    ipsec_pair.decrypted_until(lambda d: any(r and not r.errors for _, r in child_rekeys(d)),
                               timeout=ipsec_pair.patience(REKEY_TIMEOUT_S))
    after = tunnel.ping(count=3)
    assert after.all_answered, f"no traffic after the rekey:\n{after.output}"

    decrypted = ipsec_pair.decrypted()
    shown = decrypted.ike("CREATE_CHILD_SA").describe()
    rekeys = child_rekeys(decrypted)
    assert len(rekeys) >= 2, f"expected a refused rekey and its retry:\n{shown}"
    (first, refusal), (retry, accepted) = rekeys[:2]
    assert first.payload("KE") is not None and first.payload("KE").group == "MODP_3072", shown
    assert refusal is not None and refusal.notify("INVALID_KE_PAYLOAD") is not None, \
        f"expected INVALID_KE_PAYLOAD for KEi of MODP_3072 (RFC 7296 1.3), got:\n{shown}"
    assert not refusal.notify("NO_PROPOSAL_CHOSEN"), f"NO_PROPOSAL_CHOSEN for an acceptable proposal:\n{shown}"
    assert refusal.notify("INVALID_KE_PAYLOAD").group == "MODP_2048", f"the notify must name MODP_2048:\n{shown}"
    assert retry.payload("KE") is not None and retry.payload("KE").group == "MODP_2048", \
        f"the retry must use the group the responder asked for:\n{shown}"
    assert accepted is not None and not accepted.errors and accepted.payload("KE").group == "MODP_2048", shown
    old = {int.from_bytes(first.notify("REKEY_SA").spi, "big")}  # RFC 7296 1.3.3: the SPI of the SA rekeyed
    messages = list(decrypted)
    done = messages.index(accepted)
    early = [m for m in messages[:done] if deleted_esp_spis(m) & old]
    assert not early, "the old CHILD SA was deleted before its rekey succeeded:\n" + \
        "\n".join(m.describe() for m in early)
    traffic_moved(ipsec_pair, (retry, accepted))


def ike_auth_esp(ipsec_pair):
    """The IKE_AUTH request and response, decrypted (the cell needs a side that exports its keys)."""
    auth = [m for m in ipsec_pair.decrypted().ike("IKE_AUTH") if m.decrypted]
    assert [m.is_response for m in auth] == [False, True], \
        f"IKE_AUTH not decrypted:\n{ipsec_pair.decrypted().describe()}"
    return auth


@pytest.mark.features("psk", "child_sa", "esn")
@pytest.mark.any_features("key_export")  # the verdict is in the decrypted IKE_AUTH and ESP: one side's keys open both
def test_esn(ipsec_pair):
    """RFC 7296 3.3.2/3.3.6: offered both ESN transforms, a responder that wants ESN picks exactly one, ESN; RFC 4303
    2.2.1: both ends then apply it: the ICV of every ESP packet covers the high half of the sequence number,
    never sent, and checks that way in the decrypted ESP."""
    tunnel = ipsec_pair.establish(Scenario(esp=(EspProposal(esn=("NO_ESN", "ESN")),),
                                           responder_esp=(EspProposal(esn=("ESN",)),)))
    assert tunnel.up, tunnel.explain()
    ping = tunnel.ping()
    assert ping.all_answered, ping.output

    request, response = ike_auth_esp(ipsec_pair)
    assert all(set(esn_transforms(p)) == set(ESN_TRANSFORMS) for p in esp_proposals(request)), request.describe()
    [chosen] = esp_proposals(response) or [None]
    assert chosen is not None and esn_transforms(chosen) == ["ESN"], \
        f"the response must hold exactly one ESN transform, ESN:\n{response.describe()}"
    inner = [p for p in ipsec_pair.esp_inner() if p.plaintext is not None]
    assert len(inner) >= 2 * ping.sent, f"expected the echoes in ESP, opened: {[p.describe() for p in inner]}"
    wrong = [p for p in inner if p.problem is not None or p.plaintext.esn is not True]
    assert not wrong, ("ESP whose ICV does not check with the ESN high half (RFC 4303 2.2.1):\n"
                       + "\n".join(f"spi=0x{p.spi:08x} {p.describe()} esn={p.plaintext.esn}" for p in wrong))


@pytest.mark.features("psk", "child_sa")  # negotiation only: no ESN SA is installed
@pytest.mark.any_features("key_export")
def test_esn_mismatch(ipsec_pair):
    """RFC 7296 2.7/1.2: an initiator offering only ESN to a responder taking only NO_ESN gets NO_PROPOSAL_CHOSEN
    in the IKE_AUTH response for the CHILD SA, while the IKE SA is set up and stays: it still answers a request
    (here the initiator's Delete of it) afterwards."""
    tunnel = ipsec_pair.establish(Scenario(esp=(EspProposal(esn=("ESN",)),),
                                           responder_esp=(EspProposal(esn=("NO_ESN",)),)))
    assert not tunnel.up, f"a CHILD SA came up with disjoint ESN transforms\n{tunnel.explain()}"
    for role in ("initiator", "responder"):
        assert not tunnel.child_sas(role), f"{role} installed a CHILD SA with disjoint ESN transforms"
    tunnel.close()

    request, response = ike_auth_esp(ipsec_pair)
    assert response.notify("NO_PROPOSAL_CHOSEN") and not response.payload("SA"), \
        f"expected NO_PROPOSAL_CHOSEN and no SA for the CHILD SA:\n{response.describe()}"
    assert response.payload("AUTH") is not None and response.notify("AUTHENTICATION_FAILED") is None, \
        f"the IKE SA must be authenticated all the same:\n{response.describe()}"
    info = exchanges_of(ipsec_pair.decrypted().ike("INFORMATIONAL"))
    closing = [(q, r) for q, r in info if q.decrypted and any(d.protocol == "IKE" for d in q.payloads_of("Delete"))]
    assert closing and closing[0][1] is not None, \
        f"the IKE SA did not stay: its Delete went unanswered:\n{ipsec_pair.decrypted().describe()}"
    assert not ipsec_pair.wire().esp(), f"ESP without a CHILD SA:\n{ipsec_pair.wire().describe()}"


IPPROTO_ICMP, IPPROTO_IPIP = 1, 4


def echo_next_headers(ipsec_pair) -> set[int]:
    """The ESP Next Header of every decrypted echo (RFC 4303 2.6): the inner IP version in tunnel mode (4), the
    transport protocol in transport mode (1, ICMP)."""
    return {p.plaintext.next_header for p in ipsec_pair.esp_inner()
            if p.plaintext is not None and p.plaintext.opened and p.problem is None}


@pytest.mark.features("psk", "child_sa", "transport_mode")
@pytest.mark.any_features("key_export")
def test_transport_mode(ipsec_pair):
    """RFC 7296 1.3.1: an initiator asking for transport mode sends N(USE_TRANSPORT_MODE) in IKE_AUTH, and a
    responder that accepts includes it in its response; RFC 4303 3.1.1: ESP then carries the hosts' own packets,
    Next Header naming the transport protocol (ICMP), no inner IP header."""
    tunnel = ipsec_pair.establish(Scenario(mode="transport"))
    assert tunnel.up, tunnel.explain()
    ping = tunnel.ping()
    assert ping.all_answered, ping.output

    request, response = ike_auth_esp(ipsec_pair)
    assert request.notify("USE_TRANSPORT_MODE") and response.notify("USE_TRANSPORT_MODE"), \
        f"N(USE_TRANSPORT_MODE) must be in both IKE_AUTH messages:\n{request.describe()}\n{response.describe()}"
    assert echo_next_headers(ipsec_pair) == {IPPROTO_ICMP}, \
        f"expected ICMP as ESP's Next Header (transport mode), got {echo_next_headers(ipsec_pair)}"


def _record(what: str) -> None:
    """What the pair did where the RFC allows more than one thing: shown with the cell's evidence."""
    allure.attach(what, name="what each side did", attachment_type=allure.attachment_type.TEXT)


@pytest.mark.features("psk", "child_sa", "transport_mode")
@pytest.mark.any_features("key_export")
def test_transport_mode_refused(ipsec_pair):
    """RFC 7296 1.3.1: a responder that will not use transport mode leaves N(USE_TRANSPORT_MODE) out of its response,
    and "the CHILD SA will be established in tunnel mode"; "if this is unacceptable to the initiator, the initiator
    MUST delete the SA". Either is compliant: what each side did is on the wire, and the mode of the ESP that
    flowed must be the one the response agreed to (tunnel: Next Header 4)."""
    tunnel = ipsec_pair.establish(Scenario(mode="transport", responder_mode="tunnel"))
    ping = tunnel.ping() if tunnel.up else None  # before the wire is read: reading it stops the capture
    request, response = ike_auth_esp(ipsec_pair)
    assert request.notify("USE_TRANSPORT_MODE"), f"the initiator did not ask for transport:\n{request.describe()}"
    assert not response.notify("USE_TRANSPORT_MODE"), \
        f"a responder configured for tunnel mode agreed to transport:\n{response.describe()}"
    if response.payload("SA") is None:  # refused outright: allowed, but then no CHILD SA at all
        assert response.errors, response.describe()
        assert not ipsec_pair.wire().esp(), ipsec_pair.wire().describe()
        return _record("the responder refused the CHILD SA: " + ", ".join(str(n.type) for n in response.errors))
    deleted = set().union(*(deleted_esp_spis(m) for m in ipsec_pair.decrypted().ike("INFORMATIONAL")))
    if spis(response) & deleted or spis(request) & deleted:  # the initiator found tunnel mode unacceptable
        return _record("the responder answered in tunnel mode; the initiator deleted the CHILD SA")
    _record("the responder answered in tunnel mode; the initiator kept the CHILD SA in tunnel mode")
    assert ping is not None and ping.all_answered, f"a tunnel-mode CHILD SA nobody deleted carries nothing\n" \
                                                   f"{tunnel.explain()}"
    assert echo_next_headers(ipsec_pair) == {IPPROTO_IPIP}, \
        f"the response agreed to tunnel mode, but ESP's Next Header is {echo_next_headers(ipsec_pair)}"


@pytest.mark.features("psk", "child_sa", "child_delete")
@pytest.mark.any_features("key_export")
def test_child_sa_delete(ipsec_pair):
    """RFC 7296 1.4.1: an endpoint deletes a CHILD SA with an INFORMATIONAL request whose Delete payload names its
    inbound SPI; "the responder MUST reply with ... Delete payloads for the paired SAs", its own inbound SPI. ESP then
    stops, and the IKE SA lives on: it still answers the Delete of itself."""
    tunnel = ipsec_pair.establish(Scenario())
    assert tunnel.up, tunnel.explain()
    assert tunnel.ping(count=1).all_answered, tunnel.explain()
    tunnel.close_child()
    for role in ("initiator", "responder"):
        assert not tunnel.child_sas(role), f"{role} still lists the deleted CHILD SA"
    tunnel.close()

    request, response = ike_auth_esp(ipsec_pair)
    initiator_in, responder_in = spis(request), spis(response)
    info = exchanges_of(ipsec_pair.decrypted().ike("INFORMATIONAL"))
    shown = ipsec_pair.decrypted().ike("INFORMATIONAL").describe()
    child = [(q, r) for q, r in info if q.decrypted and deleted_esp_spis(q)]
    assert child, f"no Delete for the CHILD SA:\n{shown}"
    delete, answer = child[0]
    assert deleted_esp_spis(delete) == initiator_in, \
        f"the Delete must name the deleting side's inbound SPI {sorted(map(hex, initiator_in))}:\n{shown}"
    assert answer is not None and deleted_esp_spis(answer) == responder_in, \
        f"the answer must delete the paired SA, SPI {sorted(map(hex, responder_in))} (RFC 7296 1.4.1):\n{shown}"
    closing = [(q, r) for q, r in info if q.decrypted and any(d.protocol == "IKE" for d in q.payloads_of("Delete"))]
    assert closing and closing[0][1] is not None, f"the IKE SA did not outlive its CHILD SA:\n{shown}"
    last_esp = max((p.time for p in ipsec_pair.esp_inner()), default=0.0)
    assert last_esp <= answer.message.time, "ESP after the CHILD SA was deleted"



def selectors(message, kind: str) -> list[str]:
    """The networks a TSi/TSr payload covers ("198.19.2.0/24")."""
    payload = message.payload(kind)
    return [] if payload is None else [n for ts in payload.selectors for n in ts.networks()]


@pytest.mark.features("psk", "child_sa", "narrowing")
@pytest.mark.any_features("key_export")
def test_ts_narrowing(ipsec_pair):
    """RFC 7296 2.9: a responder whose policy allows only part of the proposed traffic selectors narrows them: TSr
    in the response is a subset of TSr in the request (here 198.19.2.0/24 of 198.19.0.0/16), and traffic between
    the narrowed selectors flows."""
    tunnel = ipsec_pair.establish(Scenario(
        subnets={"initiator": "198.19.1.0/24", "responder": "198.19.0.0/16"},
        responder_subnets={"initiator": "198.19.1.0/24", "responder": "198.19.2.0/24"}))
    assert tunnel.up, tunnel.explain()
    ping = tunnel.ping()
    assert ping.all_answered, ping.output

    request, response = ike_auth_esp(ipsec_pair)
    assert selectors(request, "TSr") == ["198.19.0.0/16"], request.describe()
    assert selectors(response, "TSr") == ["198.19.2.0/24"], \
        f"expected TSr narrowed to 198.19.2.0/24:\n{response.describe()}"
    assert selectors(response, "TSi") == ["198.19.1.0/24"], response.describe()


@pytest.mark.features("psk", "child_sa")
@pytest.mark.any_features("key_export")
def test_ts_unacceptable(ipsec_pair):
    """RFC 7296 2.9/3.10.1: a responder whose policy shares nothing with the proposed traffic selectors answers
    TS_UNACCEPTABLE for the CHILD SA; the IKE SA is set up all the same and stays (it answers its own Delete)."""
    tunnel = ipsec_pair.establish(Scenario(
        responder_subnets={"initiator": "198.19.1.0/24", "responder": "198.19.3.0/24"}))
    assert not tunnel.up, f"a CHILD SA came up with disjoint traffic selectors\n{tunnel.explain()}"
    tunnel.close()

    request, response = ike_auth_esp(ipsec_pair)
    assert response.notify("TS_UNACCEPTABLE") and not response.payload("SA"), \
        f"expected TS_UNACCEPTABLE and no SA:\n{response.describe()}"
    assert response.payload("AUTH") is not None, f"the IKE SA must be set up all the same:\n{response.describe()}"
    info = exchanges_of(ipsec_pair.decrypted().ike("INFORMATIONAL"))
    closing = [(q, r) for q, r in info if q.decrypted and any(d.protocol == "IKE" for d in q.payloads_of("Delete"))]
    assert closing and closing[0][1] is not None, \
        f"the IKE SA did not stay: its Delete went unanswered:\n{ipsec_pair.decrypted().describe()}"


@pytest.mark.features("psk", "child_sa", "initial_contact")
@pytest.mark.any_features("key_export")
def test_initial_contact(ipsec_pair):
    """RFC 7296 2.4: an initiator that lost its SAs (a crash: the responder was not told) sends N(INITIAL_CONTACT) in
    the IKE_AUTH request of its next IKE SA, and the responder then deletes the SAs it still holds with that peer:
    afterwards it lists one CHILD SA, the new one, and traffic flows through it."""
    tunnel = ipsec_pair.establish(Scenario())
    assert tunnel.up, tunnel.explain()
    assert tunnel.ping(count=1).all_answered, tunnel.explain()
    before = tunnel.child_sas("responder")
    tunnel.forget()
    assert tunnel.child_sas("responder") == before, "the responder was told: the case needs it to hold the old SAs"
    again = tunnel.reinitiate()
    assert again.up, again.explain()
    assert again.ping(count=2).all_answered, again.explain()
    kept = tunnel.child_sas("responder")

    decrypted = ipsec_pair.decrypted()
    requests = [m for m in decrypted.ike("IKE_AUTH") if m.decrypted and not m.is_response]
    responses = [m for m in decrypted.ike("IKE_AUTH") if m.decrypted and m.is_response]
    assert len(requests) == 2 and len(responses) == 2, f"expected two IKE_AUTH exchanges:\n{decrypted.describe()}"
    assert requests[1].notify("INITIAL_CONTACT") is not None, \
        f"the IKE_AUTH after the lost state must carry N(INITIAL_CONTACT):\n{requests[1].describe()}"
    new = spis(responses[1])
    assert len(kept) == 1 and kept[0].spi_in in new, \
        f"the responder holds the CHILD SAs {[hex(sa.spi_in) for sa in kept]}; only the new one, " \
        f"{sorted(map(hex, new))}, should be left (RFC 7296 2.4)"


ADDITIONAL = {"initiator": "198.19.11.0/24", "responder": "198.19.12.0/24"}


@pytest.mark.features("psk", "child_sa", "additional_child")
@pytest.mark.any_features("key_export")
def test_additional_child_sa(ipsec_pair):
    """RFC 7296 1.3.1: a CREATE_CHILD_SA request without N(REKEY_SA) adds a CHILD SA to the IKE SA, with its own SA,
    Nonce and traffic selectors; the response chooses a proposal and the selectors, and traffic between the new
    subnets flows in the new SA while the first one stays."""
    tunnel = ipsec_pair.establish(Scenario(additional_subnets=ADDITIONAL))
    assert tunnel.up, tunnel.explain()
    added = tunnel.add_child()
    assert added.established, f"the initiator could not add the CHILD SA: {added.detail}\n{tunnel.explain()}"
    ping = tunnel.ping_additional()
    assert ping.all_answered, ping.output
    assert tunnel.ping(count=1).all_answered, "the first CHILD SA stopped carrying traffic"
    installed = tunnel.child_sas("responder")

    exchanges = exchanges_of(ipsec_pair.decrypted().ike("CREATE_CHILD_SA"))
    shown = ipsec_pair.decrypted().ike("CREATE_CHILD_SA").describe()
    new = [(q, r) for q, r in exchanges if q.decrypted and q.notify("REKEY_SA") is None and esp_proposals(q)]
    assert new, f"no CREATE_CHILD_SA for a new CHILD SA (an SA payload, no REKEY_SA):\n{shown}"
    request, response = new[0]
    assert selectors(request, "TSi") == [ADDITIONAL["initiator"]] and \
        selectors(request, "TSr") == [ADDITIONAL["responder"]], f"the request's selectors:\n{shown}"
    assert response is not None and len(esp_proposals(response)) == 1 and not response.errors, \
        f"the response must choose one proposal:\n{shown}"
    assert selectors(response, "TSr") == [ADDITIONAL["responder"]], shown
    echo_spis = {e.spi for e in ipsec_pair.echoes_in_esp()
                 if e.kind == "request" and e.dst == inner_address(ADDITIONAL["responder"])}
    assert echo_spis and echo_spis <= spis(response), \
        f"the echoes between the new subnets travelled in {sorted(map(hex, echo_spis))}, not the new SA's " \
        f"{sorted(map(hex, spis(response)))}"
    assert len(installed) == 2, f"the responder should hold both CHILD SAs, holds {installed}"


COLLISION_SETTLE_S = 8  # both Deletes after the crossed rekeys, and room for a retransmission


def esp_deletes(messages: DecryptedMessages) -> list[tuple]:
    """The INFORMATIONAL exchanges whose request deletes CHILD SAs (Delete payloads for ESP)."""
    return [(q, r) for q, r in exchanges_of(messages.ike("INFORMATIONAL")) if q.decrypted and deleted_esp_spis(q)]


def nonces(request, response) -> list[bytes]:
    return [m.payload("Nonce").nonce for m in (request, response) if m is not None and m.payload("Nonce")]


@pytest.mark.features("psk", "child_sa", "rekey")
@pytest.mark.any_features("key_export")
def test_child_rekey_collision(ipsec_pair):
    """RFC 7296 2.8.1: when both ends rekey a CHILD SA at once, each answers the other's CREATE_CHILD_SA, and of the
    redundant SAs "the SA created with the lowest of the four nonces used in the two exchanges SHOULD be closed by
    the endpoint that created it" (lowest: octet by octet, a nonce that is a prefix of another lower); "the node
    that initiated the surviving rekeyed SA should delete the replaced SA". Traffic then runs on the surviving SA
    and each side lists it alone."""
    tunnel = ipsec_pair.establish(Scenario())
    assert tunnel.up, tunnel.explain()
    assert tunnel.ping(count=1).all_answered, tunnel.explain()
    held = tunnel.rekey_from_both()
    allure.attach(held, name="what the packet holder did", attachment_type=allure.attachment_type.TEXT)
    ipsec_pair.decrypted_until(lambda d: sum(r is not None for _, r in esp_deletes(d)) >= 2,
                               timeout=ipsec_pair.patience(COLLISION_SETTLE_S))
    after = tunnel.ping(count=3)
    listed = {role: tunnel.child_sas(role) for role in ("initiator", "responder")}

    decrypted = ipsec_pair.decrypted()
    shown = f"{decrypted.ike('CREATE_CHILD_SA').describe()}\n{decrypted.ike('INFORMATIONAL').describe()}"
    rekeys = child_rekeys(decrypted)
    senders = {q.message.src for q, _ in rekeys}
    answered_at = min((r.message.time for _, r in rekeys if r is not None), default=float("inf"))
    if len(senders) < 2 or sum(q.message.time < answered_at for q, _ in rekeys) < 2:
        raise HarnessError(f"the two rekey requests did not cross on the wire, so the case did not happen "
                           f"(the holder: {held.strip()!r}):\n{shown}")
    crossed = [next((q, r) for q, r in rekeys if q.message.src == sender) for sender in sorted(senders)]
    for request, response in crossed:
        assert response is not None and esp_proposals(response) and not response.errors, \
            f"each side must answer the other's rekey with a new SA (RFC 7296 2.8.1):\n{shown}"
    lowest = min(n for exchange in crossed for n in nonces(*exchange))
    [(lost_request, lost_response)] = [x for x in crossed if lowest in nonces(*x)]
    [(won_request, won_response)] = [x for x in crossed if x[0] is not lost_request]
    redundant, surviving = spis(lost_request) | spis(lost_response), spis(won_request) | spis(won_response)
    deletes = esp_deletes(decrypted)
    by = {(q.message.src, spi) for q, _ in deletes for spi in deleted_esp_spis(q)}
    closer = lost_request.message.src
    assert any((closer, spi) in by for spi in spis(lost_request)), \
        f"{closer} made the SA with the lowest nonce ({lowest.hex()}) and must delete it, its SPI " \
        f"{sorted(map(hex, spis(lost_request)))} (RFC 7296 2.8.1):\n{shown}"
    old_spi = won_request.notify("REKEY_SA").spi
    assert (won_request.message.src, int.from_bytes(old_spi, "big")) in by, \
        f"{won_request.message.src} initiated the surviving SA and must delete the replaced one, " \
        f"SPI 0x{old_spi.hex()} (RFC 7296 2.8.1):\n{shown}"
    assert all(r is not None for _, r in deletes), f"a Delete went unanswered:\n{shown}"
    # RFC 7296 1.4.1: each Delete is answered with the paired SA's SPI, so both halves of both SAs go
    deleted = {spi for exchange in deletes for m in exchange for spi in deleted_esp_spis(m)}
    old = set().union(*(spis(m) for m in ike_auth_esp(ipsec_pair)))
    assert old | redundant <= deleted and not deleted & surviving, \
        f"deleted {sorted(map(hex, deleted))}; expected the replaced SA {sorted(map(hex, old))} and the redundant " \
        f"one {sorted(map(hex, redundant))}, never the surviving {sorted(map(hex, surviving))}:\n{shown}"

    assert after.all_answered, f"no traffic after the collision:\n{after.output}"
    echoes = ipsec_pair.echoes_in_esp()
    last = {kind: next((e.spi for e in reversed(echoes) if e.kind == kind), None) for kind in ("request", "reply")}
    assert set(last.values()) == surviving, \
        f"the last echo request and reply travelled in {last}, not the surviving SA's " \
        f"{sorted(map(hex, surviving))} (the redundant one was {sorted(map(hex, redundant))})"
    for role, sas in listed.items():
        assert [{sa.spi_in, sa.spi_out} for sa in sas] == [surviving], \
            f"{role} lists the CHILD SAs {[(hex(sa.spi_in), hex(sa.spi_out)) for sa in sas]}; only the surviving " \
            f"one, {sorted(map(hex, surviving))}, should be left"
