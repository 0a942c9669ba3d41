"""L2TP secured by IPsec (RFC 3193), the classic remote-access pairing: IKEv1 sets up a transport-mode SA for the
L2TP traffic between the two hosts, and every L2TP message, the PPP session inside it and what PPP carries travel
in ESP. Played by the stacks declaring "ipsec" (xl2tpd under strongSwan, under Libreswan): between two of them
every L2TP case runs over IPsec; this one judges the IPsec itself. The ESP is opened with the keys both kernels
hold, so the L2TP is judged as it went inside."""
import pytest

from harness.protocols.l2tp.scenario import L2TP_PORT, Scenario

pytestmark = [pytest.mark.protocol("l2tp")]


@pytest.mark.severity("critical")  # the L2TP/IPsec login of every built-in VPN client
@pytest.mark.features("ipsec", "data_plane")
def test_l2tp_over_ipsec(l2tp_pair):
    """RFC 3193 4 and 5: IKE (here IKEv1, RFC 2409: Main Mode with a pre-shared key, then Quick Mode) sets up an ESP
    SA in transport mode whose selectors are the two hosts and UDP port 1701; the L2TP tunnel, the session and PPP
    are set up inside it (SCCRQ, SCCRP, SCCCN, ICRQ, ICRP, ICCN, then LCP and IPCP), and a ping through the
    session crosses ESP both ways. No L2TP crosses the wire outside ESP."""
    lab = l2tp_pair.start(Scenario())
    session = lab.connect()
    assert session.up, session.detail
    result = lab.ping()
    assert result.all_answered, f"{result.output}\n{lab.explain()}"
    lac, lns = lab.address("lac"), lab.address("lns")
    ipsec = lab.ipsec_wire()
    main, quick = ipsec.ike("Main Mode"), ipsec.ike("Quick Mode")
    assert [m.src for m in main[:1]] == [lac] and len(main) >= 6, \
        f"expected phase 1 in Main Mode (RFC 2409 5: six messages), the LAC first:\n{ipsec.describe()}"
    assert len(quick) >= 3 and all(m.encrypted for m in quick) and quick[0].src == lac, \
        f"expected Quick Mode (RFC 2409 5.5: three messages under the phase 1 SA), the LAC first:\n{ipsec.describe()}"
    assert ipsec.esp_between(lac, lns) and ipsec.esp_between(lns, lac), f"no ESP both ways:\n{ipsec.describe()}"
    opened = lab.opened_esp()
    assert opened and all(p.problem is None for p in opened), \
        "ESP the kernels' keys do not open (or whose ICV fails):\n" + "\n".join(p.describe() for p in opened[:10])
    tunnelled = [p.describe() for p in opened if p.plaintext.next_header != 17]  # RFC 4303 2.6: UDP, not IP-in-IP
    assert not tunnelled, "ESP not in transport mode (next header other than UDP):\n" + "\n".join(tunnelled[:10])
    clear = lab.clear_wire()
    assert not clear.datagrams and not clear.unreadable, \
        f"L2TP (UDP {L2TP_PORT}) crossed the wire outside ESP:\n{clear.describe()}"
    wire = lab.wire()  # the L2TP inside the ESP, opened with the kernels' keys
    assert wire.message_types(src=lac, zlb=False)[:3] == ["SCCRQ", "SCCCN", "ICRQ"], wire.describe()
    assert wire.message_types(src=lns, zlb=False)[:2] == ["SCCRP", "ICRP"], wire.describe()
    carried = [d for d in wire.data() if d.message.ppp is not None and "ICMP" in d.message.ppp.summary()]
    assert [d for d in carried if d.src == lac] and [d for d in carried if d.src == lns], \
        f"no ICMP inside the session's data messages both ways in the opened ESP:\n{wire.describe()}"
    keys = lab.esp_keys()
    assert {k.dst for k in keys} >= {lac, lns}, f"the kernels hold no ESP SA both ways: {keys}"
