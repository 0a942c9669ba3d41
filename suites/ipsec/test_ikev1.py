"""IKEv1 (RFC 2409 on ISAKMP, RFC 2408) where it still lives in the field: remote access, a client dialling a
gateway with a group PSK in Aggressive Mode, XAUTH for the user, Mode Config for its inner address, then Quick Mode
for the IPsec SA. Judged from the wire: IKEv1 has no response flag, so who sent a message is read off its
addresses; what phase 1 leaves encrypted (XAUTH, Mode Config, Quick Mode) is judged by its exchange types and
order, the data plane by the ESP that carries the pings."""
import pytest

from harness.protocols.ipsec.scenario import EspProposal, IkeProposal, Scenario

# Each case names its own features: vpnc plays remote access (aggressive, xauth, modecfg) but not site to site (ikev1).
pytestmark = [pytest.mark.protocol("ipsec")]



def remote_access(encryption: str) -> Scenario:
    """What a Cisco-style client offers and a gateway of this decade still accepts from it: `encryption` with SHA-1
    as phase 1's hash and PRF, MODP 2048 (RFC 3526 3), and the same cipher with HMAC-SHA1-96 for ESP, no PFS."""
    return Scenario(
        ike_version=1, aggressive=True, remote_access=True,
        ike=(IkeProposal(encryption=encryption, integrity="AUTH_HMAC_SHA1_96", prf="PRF_HMAC_SHA1",
                         group="MODP_2048"),),
        esp=(EspProposal(encryption=encryption, integrity="AUTH_HMAC_SHA1_96"),))


REMOTE_ACCESS = remote_access("ENCR_AES_CBC_256")
# 3DES: the cipher every IKEv1 gateway takes, for a client whose AES offers a gateway cannot read
REMOTE_ACCESS_3DES = remote_access("ENCR_3DES")


def sent_by(messages, address: str) -> list:
    return [m for m in messages if m.src == address]


def attributes(transactions, src: str, cfg_type: str, name: str) -> list[str]:
    """The values of attribute `name` in the Attribute payloads of type `cfg_type` (ISAKMP_CFG_REQUEST, _REPLY,
    _SET, _ACK) that `src` sent in the opened Transaction exchanges ("" for an attribute asked for, valueless)."""
    found = []
    for m in transactions:
        payload = m.payload("Attributes")
        if m.message.src == src and payload is not None and str(payload.cfg_type) == cfg_type:
            value = payload.attribute(name)
            found += [] if value is None else [str(value)]
    return found


@pytest.mark.severity("critical")  # the remote-access login every IKEv1 client does
@pytest.mark.features("aggressive", "xauth", "modecfg")
def test_remote_access(ipsec_pair):
    """With AES-256: RFC 2409 Appendix A: AES's Key Length attribute (type 14) comes with the Encryption Algorithm
    attribute of its transform; RFC 2408 3.6 puts no order on a transform's attributes. The rest as
    test_remote_access_3des."""
    remote_access_login(ipsec_pair, REMOTE_ACCESS)


@pytest.mark.features("aggressive", "xauth", "modecfg")
def test_remote_access_3des(ipsec_pair):
    """RFC 2409 5.4: Aggressive Mode is three messages, the initiator's carrying SA, KE, Nonce and its ID (here the
    group's name, ID_KEY_ID) in the clear, the responder's the rest of phase 1, the initiator's last one HASH_I
    (encrypted, or in the clear as RFC 2409 allows). draft-beaulieu-ike-xauth-02 and draft-dukes-ike-mode-cfg-02:
    then Transaction exchanges (type 6) carry XAUTH and Mode Config, and only after them Quick Mode (RFC 2409 5.5:
    three messages) sets up the IPsec SA, from the address Mode Config gave; ESP then carries the pings both ways.
    With 3DES, the cipher every IKEv1 implementation reads."""
    remote_access_login(ipsec_pair, REMOTE_ACCESS_3DES)


def remote_access_login(ipsec_pair, scenario: Scenario) -> None:
    """The remote-access login, judged from the wire (the docstring of test_remote_access_3des)."""
    tunnel = ipsec_pair.establish(scenario)
    if not tunnel.up:  # the client's own words may misread the answer (vpnc): the wire says what it was
        wire = ipsec_pair.wire()
        refusals = [str(n.type) for m in wire.ike("Informational") if m.src == ipsec_pair.addresses[1]
                    and not m.encrypted for n in m.errors]
        said = f"the responder answered with N({', '.join(refusals)}) in the clear" if refusals else "not up"
        pytest.fail(f"{said}\n{tunnel.explain()}\non the wire:\n{wire.describe()}")
    assert tunnel.child_sas("responder"), f"the responder reports no installed IPsec SA\n{tunnel.explain()}"
    ping = tunnel.ping()
    assert ping.all_answered, f"{ping.output}\n{tunnel.explain()}"
    initiator, responder = ipsec_pair.addresses

    def carried(w) -> bool:
        return sum(f.packets for f in w.esp_between(initiator, responder)) >= ping.sent and \
            sum(f.packets for f in w.esp_between(responder, initiator)) >= ping.received
    # vpnc's last ESP can reach the pcap after ping has its answers: wait for it before judging the stopped capture
    ipsec_pair.wire_until(carried, timeout=ipsec_pair.patience(2))
    wire = ipsec_pair.wire()
    v1 = [m for m in wire.ike() if m.version == 1]
    assert v1 and len(v1) == len(wire.ike()), f"expected IKEv1 only on the wire:\n{wire.describe()}"
    aggressive = wire.ike("Aggressive Mode")
    assert [m.src for m in aggressive][:2] == [initiator, responder] and len(aggressive) == 3, \
        f"expected Aggressive Mode's three messages, initiator first:\n{aggressive.describe()}"
    first = aggressive[0]
    assert all(first.payload(kind) is not None for kind in ("SA", "KE", "Nonce", "ID")), \
        f"the first Aggressive Mode message lacks SA, KE, Nonce or ID:\n{first.describe()}"
    identity = first.payload("ID")
    assert (str(identity.id_type), identity.id_data) == ("ID_KEY_ID", scenario.group.encode()), \
        f"the initiator must name its group as ID_KEY_ID {scenario.group!r}:\n{first.describe()}"
    methods = {t.attribute("Authentication Method") for p in first.payload("SA").proposals for t in p.transforms}
    assert "XAUTHInitPreShared" in {str(m) for m in methods}, \
        f"the initiator offered no XAUTH with a pre-shared key (XAUTHInitPreShared):\n{first.describe()}"

    transactions = wire.ike("Transaction")
    quick = wire.ike("Quick Mode")
    assert sent_by(transactions, responder) and sent_by(transactions, initiator), \
        f"expected Transaction exchanges (XAUTH, Mode Config) both ways:\n{wire.describe()}"
    assert len(quick) >= 3 and [m.src for m in quick][:3] == [initiator, responder, initiator], \
        f"expected Quick Mode's three messages from the initiator:\n{quick.describe()}"
    assert all(m.encrypted for m in [*transactions, *quick]), \
        f"Transaction and Quick Mode must be encrypted under the phase 1 SA:\n{wire.describe()}"
    assert max(m.time for m in transactions) < quick[0].time, \
        f"Quick Mode started before XAUTH and Mode Config were done:\n{wire.describe()}"

    if ipsec_pair.ike_keys_exported:  # the responder's keys open phase 2: XAUTH and Mode Config themselves
        opened = ipsec_pair.decrypted().ike("Transaction")
        assert all(m.decrypted for m in opened), f"a Transaction message did not decrypt:\n{opened.describe()}"
        xauth = [attributes(opened, responder, "ISAKMP_CFG_REQUEST", "XAUTH_USER_NAME"),
                 attributes(opened, initiator, "ISAKMP_CFG_REPLY", "XAUTH_USER_NAME"),
                 attributes(opened, responder, "ISAKMP_CFG_SET", "XAUTH_STATUS"),
                 # draft-dukes-ike-mode-cfg-02 3.2: an ACK lists the attributes it accepts, valueless (strongSwan);
                 # vpnc repeats the value: either says the status was taken
                 len(attributes(opened, initiator, "ISAKMP_CFG_ACK", "XAUTH_STATUS"))]
        assert xauth == [[""], [scenario.xauth_user], ["OK"], 1], \
            f"expected XAUTH: the responder asks for a user name, the initiator names {scenario.xauth_user!r}, " \
            f"the responder sets XAUTH_STATUS OK and the initiator acknowledges it; got {xauth}:\n{opened.describe()}"
        pool = tunnel.inner_addresses[0]
        given = attributes(opened, responder, "ISAKMP_CFG_REPLY", "INTERNAL_IP4_ADDRESS")
        assert attributes(opened, initiator, "ISAKMP_CFG_REQUEST", "INTERNAL_IP4_ADDRESS") and given == [pool], \
            f"expected Mode Config: the initiator asks for INTERNAL_IP4_ADDRESS, the responder gives {pool}; " \
            f"got {given}:\n{opened.describe()}"
        first_quick = ipsec_pair.decrypted().ike("Quick Mode")[0]
        ids = [p.value for p in first_quick.payloads_of("ID")]
        assert first_quick.decrypted and ids[:1] == [pool], \
            f"Quick Mode must be from the Mode Config address {pool} (IDci):\n{first_quick.describe()}"

    assert carried(wire), \
        f"expected ESP for {ping.sent} echo requests and their replies:\n{wire.describe()}"
    if ipsec_pair.keys()[1]:  # the responder exported its ESP keys: the pings themselves, inside the ESP
        src, dst = tunnel.inner_addresses
        echoes = ipsec_pair.echoes_in_esp()
        assert [e for e in echoes if (e.kind, e.src, e.dst) == ("request", src, dst)] and \
            [e for e in echoes if (e.kind, e.src, e.dst) == ("reply", dst, src)], \
            f"expected echo requests {src} > {dst} (the Mode Config address) and replies inside ESP, got {echoes}"


# ---- Site to site (issue 19 case 10): Main Mode and Aggressive Mode, then Quick Mode between the subnets ----

def judge_quick_mode(ipsec_pair, tunnel, *, pfs: bool) -> None:
    """RFC 2409 5.5: Quick Mode is three messages under the phase 1 SA, initiator first; with PFS the first two
    carry KE (of the group the ESP proposal names), without it neither does (as far as the exported keys open them).
    ESP then carries the pings both ways."""
    ping = tunnel.ping()
    assert ping.all_answered, f"{ping.output}\n{tunnel.explain()}"
    initiator, responder = ipsec_pair.addresses

    def carried(w) -> bool:
        return all(sum(f.packets for f in w.esp_between(src, dst)) >= ping.sent
                   for src, dst in ((initiator, responder), (responder, initiator)))
    ipsec_pair.wire_until(carried, timeout=ipsec_pair.patience(2))  # the last ESP may reach the pcap after ping
    wire = ipsec_pair.wire()
    assert all(m.version == 1 for m in wire.ike()), f"expected IKEv1 only on the wire:\n{wire.describe()}"
    quick = wire.ike("Quick Mode")
    assert len(quick) >= 3 and [m.src for m in quick][:3] == [initiator, responder, initiator] and \
        all(m.encrypted for m in quick), f"expected Quick Mode's three encrypted messages:\n{quick.describe()}"
    if ipsec_pair.ike_keys_exported:
        opened = ipsec_pair.decrypted().ike("Quick Mode")[:2]
        assert all(m.decrypted for m in opened), "Quick Mode did not decrypt:\n" + "\n".join(m.describe() for m in opened)
        with_ke = [m.payload("KE") is not None for m in opened]
        assert with_ke == [pfs, pfs], \
            f"Quick Mode's first two messages must {'' if pfs else 'not '}carry KE (PFS {'on' if pfs else 'off'}):\n" \
            + "\n".join(m.describe() for m in opened)
    assert carried(wire), f"expected ESP both ways for the {ping.sent} pings:\n{wire.describe()}"


def main_mode(wire, initiator: str, responder: str) -> list[str]:
    """What is missing of RFC 2409 5's Main Mode: six messages alternating from the initiator, SA first in the
    clear, the last two (IDs and HASH or SIG) encrypted."""
    main = wire.ike("Main Mode")
    missing = []
    if [m.src for m in main][:6] != [initiator, responder] * 3:
        missing.append("six messages alternating from the initiator")
    elif not (main[0].payload("SA") and main[1].payload("SA")) or main[0].encrypted or main[1].encrypted:
        missing.append("SA in the clear in the first two")
    elif not (main[4].encrypted and main[5].encrypted):
        missing.append("the last two encrypted")
    return missing


@pytest.mark.severity("critical")  # the IKEv1 tunnel every legacy site still runs
@pytest.mark.features("ikev1", "psk")
def test_main_mode_psk(ipsec_pair):
    """RFC 2409 5: Main Mode with a pre-shared key: SA, then KE and Nonce, then the identities with HASH_I/HASH_R,
    encrypted; then Quick Mode (5.5) sets up the IPsec SA between the subnets, without PFS."""
    tunnel = ipsec_pair.establish(Scenario(ike_version=1))
    assert tunnel.up, tunnel.explain()
    initiator, responder = ipsec_pair.addresses
    missing = main_mode(ipsec_pair.wire_until(lambda w: len(w.ike("Quick Mode")) >= 3, timeout=2),
                        initiator, responder)
    assert not missing, f"Main Mode lacks {', '.join(missing)}:\n{ipsec_pair.wire().describe()}"
    judge_quick_mode(ipsec_pair, tunnel, pfs=False)


@pytest.mark.features("ikev1", "psk", "pfs")
def test_quick_mode_pfs(ipsec_pair):
    """RFC 2409 5.5: with PFS Quick Mode's first two messages carry KE of the group the proposal names (the SA's
    Group Description), and the IPsec SA's keys come from that exchange."""
    tunnel = ipsec_pair.establish(Scenario(ike_version=1, esp=(EspProposal(group="MODP_2048"),)))
    assert tunnel.up, tunnel.explain()
    judge_quick_mode(ipsec_pair, tunnel, pfs=True)


@pytest.mark.features("ikev1", "aggressive", "psk")
def test_aggressive_mode_psk(ipsec_pair):
    """RFC 2409 5.4: Aggressive Mode is three messages, the first two in the clear with SA, KE, Nonce and the IDs;
    then Quick Mode."""
    tunnel = ipsec_pair.establish(Scenario(ike_version=1, aggressive=True))
    assert tunnel.up, tunnel.explain()
    initiator, responder = ipsec_pair.addresses
    wire = ipsec_pair.wire_until(lambda w: len(w.ike("Quick Mode")) >= 3, timeout=2)
    aggressive = wire.ike("Aggressive Mode")
    assert [m.src for m in aggressive][:3] == [initiator, responder, initiator] and not wire.ike("Main Mode") and \
        all(m.payload(k) is not None for m in aggressive[:2] for k in ("SA", "KE", "Nonce", "ID")), \
        f"expected Aggressive Mode's three messages, the first two with SA, KE, Nonce and ID:\n{wire.describe()}"
    judge_quick_mode(ipsec_pair, tunnel, pfs=False)


@pytest.mark.features("ikev1", "rsa")
def test_main_mode_certificates(ipsec_pair):
    """RFC 2409 5.1: Main Mode with RSA signatures: the last two messages carry ID, CERT and SIG (encrypted); each
    side checks the other's certificate against its ID."""
    tunnel = ipsec_pair.establish(Scenario(ike_version=1, auth="rsa"))
    assert tunnel.up, tunnel.explain()
    initiator, responder = ipsec_pair.addresses
    missing = main_mode(ipsec_pair.wire_until(lambda w: len(w.ike("Quick Mode")) >= 3, timeout=2),
                        initiator, responder)
    assert not missing, f"Main Mode lacks {', '.join(missing)}:\n{ipsec_pair.wire().describe()}"
    judge_quick_mode(ipsec_pair, tunnel, pfs=False)  # first: reading the keys stops the capture, pings after it
    if ipsec_pair.ike_keys_exported:
        last = ipsec_pair.decrypted().ike("Main Mode")[4:6]
        assert all(m.decrypted and m.payload("SIG") is not None and m.payload("CERT") is not None for m in last), \
            "Main Mode's last two messages must carry CERT and SIG:\n" + "\n".join(m.describe() for m in last)
