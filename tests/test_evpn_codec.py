"""The BGP EVPN codec (harness/protocols/evpn/bgp.py): what it builds decodes back field by field, labels read as
24-bit VNIs, and damaged bytes become problems, never exceptions."""
from __future__ import annotations

import random
import struct

import pytest

from harness.protocols.evpn import bgp

RD = "198.18.0.2:2"
MAC = "02:4f:49:64:00:01"


def _mac_ip_update(**kwargs) -> bytes:
    return bgp.update(reach=[bgp.mac_ip_route(RD, MAC, 100, "198.19.100.1", **kwargs)], next_hop="198.18.0.2",
                      communities=[bgp.route_target("65000:100"), bgp.ExtEncapsulation(tunnel_type=8),
                                   bgp.ExtMacMobility(flags=1, sequence=7), bgp.ExtRouterMac(mac="02:00:00:00:00:aa")],
                      as_path=[65001])


def test_mac_ip_route_round_trip():
    message = bgp.decode(_mac_ip_update())
    assert not message.problems
    assert message.type_name == "UPDATE"
    (route,) = message.reached()
    assert type(route) is bgp.EvpnMacIp
    assert (bgp.rd_text(bytes(route.rd)), route.mac, route.ip_text, route.vni) == (RD, MAC, "198.19.100.1", 100)
    assert message.route_targets() == ["65000:100"]
    assert message.community(bgp.ExtEncapsulation).tunnel_type == 8
    mobility = message.community(bgp.ExtMacMobility)
    assert (mobility.sequence, mobility.sticky) == (7, True)
    assert message.community(bgp.ExtRouterMac).mac == "02:00:00:00:00:aa"
    assert message.attribute(bgp.MpReach).next_hop == bytes([198, 18, 0, 2])
    assert message.attribute(bgp.AsPath).text() == "AS_PATH 65001"
    assert route.text() == f"type 2 (MAC/IP) rd {RD} mac {MAC} ip 198.19.100.1 vni 100"


def test_label_is_a_24_bit_vni():
    """RFC 8365 5.1.3: the whole 3-byte label field is the VNI (an MPLS reading would shift it by 4 bits)."""
    raw = bgp.update(reach=[bgp.mac_ip_route(RD, MAC, 0xABCDEF)], next_hop="198.18.0.2")
    (route,) = bgp.decode(raw).reached()
    assert route.vni == 0xABCDEF
    assert bytes.fromhex("abcdef") in raw


def test_second_label_is_the_l3_vni():
    (route,) = bgp.decode(_mac_ip_update(vni2=4001)).reached()
    assert (route.vni, route.vni2) == (100, 4001)
    assert route.text().endswith("vni 100 l3vni 4001")


def test_mac_only_route_has_no_ip():
    (route,) = bgp.decode(bgp.update(reach=[bgp.mac_ip_route(RD, MAC, 100)], next_hop="198.18.0.2")).reached()
    assert route.length == 33 and route.ip_text is None and route.vni == 100


def test_inclusive_multicast_with_pmsi_ingress_replication():
    raw = bgp.update(reach=[bgp.inclusive_multicast_route(RD, "198.18.0.2")], next_hop="198.18.0.2",
                     pmsi=bgp.ingress_replication(100, "198.18.0.2"), communities=[bgp.route_target("65000:100")])
    message = bgp.decode(raw)
    assert not message.problems
    (route,) = message.reached()
    assert route.ip_text == "198.18.0.2" and bgp.route_vni(route) is None
    pmsi = message.attribute(bgp.PmsiTunnel)
    assert (pmsi.tunnel_type, pmsi.vni, pmsi.tunnel_id) == (6, 100, bytes([198, 18, 0, 2]))
    assert pmsi.text() == "PMSI_TUNNEL Ingress Replication vni 100 endpoint 198.18.0.2"


def test_ip_prefix_route():
    raw = bgp.update(reach=[bgp.ip_prefix_route(RD, "198.19.7.0/24", 4001)], next_hop="198.18.0.2")
    (route,) = bgp.decode(raw).reached()
    assert type(route) is bgp.EvpnIpPrefix and route.length == 34
    assert (route.prefix_text, route.vni) == ("198.19.7.0/24", 4001)


def test_ethernet_ad_and_segment_routes():
    esi = bytes.fromhex("00112233445566778899")
    ad = bgp.EvpnEthernetAd(rd=bgp.rd(RD), esi=esi, ethernet_tag=5, vni=200)
    es = bgp.EvpnEthernetSegment(rd=bgp.rd(RD), esi=esi, ip=bytes([198, 18, 0, 2]))
    routes = bgp.decode(bgp.update(reach=[ad, es], next_hop="198.18.0.2")).reached()
    assert [type(r) for r in routes] == [bgp.EvpnEthernetAd, bgp.EvpnEthernetSegment]
    assert routes[0].vni == 200 and routes[0].ethernet_tag == 5
    assert "esi 00:11:22:33:44:55:66:77:88:99" in routes[1].text()


@pytest.mark.parametrize("text, kind, raw", [
    ("65000:100", 0, struct.pack("!HHI", 0, 65000, 100)),
    ("198.18.0.2:2", 1, bytes([0, 1, 198, 18, 0, 2, 0, 2])),
    ("4200000000:7", 2, struct.pack("!HIH", 2, 4200000000, 7)),
])
def test_route_distinguisher_types(text, kind, raw):
    assert bgp.rd(text) == raw
    assert bgp.rd_text(raw) == text
    (route,) = bgp.decode(bgp.update(reach=[bgp.inclusive_multicast_route(text, "198.18.0.2")],
                                     next_hop="198.18.0.2")).reached()
    assert struct.unpack("!H", bytes(route.rd)[:2])[0] == kind


def test_route_targets_of_every_administrator_kind():
    raw = bgp.update(reach=[bgp.mac_ip_route(RD, MAC, 100)], next_hop="198.18.0.2",
                     communities=[bgp.route_target("65000:100"), bgp.route_target("198.18.0.2:100"),
                                  bgp.route_target("4200000000:100")])
    assert bgp.decode(raw).route_targets() == ["65000:100", "198.18.0.2:100", "4200000000:100"]


def test_withdrawal():
    route = bgp.mac_ip_route(RD, MAC, 100, "198.19.100.1")
    message = bgp.decode(bgp.update(withdraw=[route]))
    assert not message.problems and not message.reached()
    (gone,) = message.withdrawn()
    assert gone.key() == route.key()


def test_open_keepalive_notification_end_of_rib():
    opened = bgp.decode(bgp.open_message(4200000000, "198.18.0.2"))
    assert not opened.problems
    assert opened.body.my_as == 23456  # AS_TRANS, RFC 6793 4.2.3
    assert opened.body.text().endswith("capabilities: multiprotocol L2VPN/EVPN, four-octet AS 4200000000")
    assert bgp.decode(bgp.keepalive()).type_name == "KEEPALIVE"
    note = bgp.decode(bgp.message(bgp.Notification(code=6, subcode=2)))
    assert note.text() == "NOTIFICATION Cease subcode 2"
    assert bgp.decode(bgp.end_of_rib()).end_of_rib
    assert not bgp.decode(_mac_ip_update()).end_of_rib


def test_split_cuts_a_stream_and_keeps_the_tail():
    stream = bgp.keepalive() + _mac_ip_update() + bgp.keepalive()[:10]
    messages, rest, why = bgp.split(stream)
    assert [len(m) for _, m in messages] == [19, len(_mac_ip_update())] and rest == bgp.keepalive()[:10]
    assert why is None
    _, _, why = bgp.split(b"\x00" * 40)
    assert why == "at byte 0: no marker"


# --- damage --------------------------------------------------------------------------------------------------

def _update_with(attribute: bytes) -> bytes:
    """An UPDATE holding one path attribute given as bytes, header lengths right."""
    body = struct.pack("!HH", 0, len(attribute)) + attribute
    return bgp.MARKER + struct.pack("!HB", bgp.HEADER_LEN + len(body), 2) + body


def _fixed(raw: bytes) -> bytes:
    """`raw` with the header's length made to agree with its size (a message cut short on purpose)."""
    return raw[:16] + struct.pack("!H", len(raw)) + raw[18:]


def _nlri(route: bytes) -> bytes:
    """An UPDATE whose MP_REACH_NLRI (AFI 25, SAFI 70) holds `route` (type, length, value: as given)."""
    value = struct.pack("!HBB4sB", 25, 70, 4, bytes([198, 18, 0, 2]), 0) + route
    return _update_with(bytes([0x90, 14]) + struct.pack("!H", len(value)) + value)


def test_route_longer_than_the_nlri_is_a_problem():
    route = bytes(bgp.mac_ip_route(RD, MAC, 100))
    message = bgp.decode(_nlri(route[:21]))
    assert message.problems == ["route type 2: length 33 runs past the NLRI (19 bytes left)"]
    assert not message.reached()[0].text().startswith("type 2 (MAC/IP) rd")


def test_route_length_its_type_cannot_have():
    message = bgp.decode(_nlri(bytes([2, 30]) + b"\x00" * 30))
    assert message.problems and "length 30 is none it can have" in message.problems[0]


def test_ip_length_that_disagrees_with_the_route_length():
    raw = bytearray(bytes(bgp.mac_ip_route(RD, MAC, 100, "198.19.100.1")))
    raw[2 + 29] = 128  # says IPv6, holds IPv4
    message = bgp.decode(_nlri(bytes(raw)))
    assert message.problems == ["route type 2 (MAC/IP): IP length 128 bits does not fit a route length of 37"]


def test_extended_communities_not_a_multiple_of_8():
    message = bgp.decode(_update_with(bytes([0xC0, 16, 7]) + b"\x00" * 7))
    assert message.problems == ["EXTENDED_COMMUNITIES: length 7 is not a multiple of 8"]


def test_attribute_running_past_the_message():
    raw = bytearray(_mac_ip_update())
    message = bgp.decode(_fixed(bytes(raw[:-10])))
    assert message.problems, "a cut UPDATE must say so"
    assert any("runs past" in p for p in message.problems), message.problems


def test_header_problems():
    assert bgp.decode(b"\xff" * 10).problems == ["10 bytes cannot hold the 19-byte header"]
    bad = bytearray(bgp.keepalive())
    bad[0] = 0
    assert bgp.decode(bytes(bad)).problems == ["the marker is not all ones (RFC 4271 4.1)"]
    longer = bgp.keepalive() + b"\x01\x02"
    problems = bgp.decode(longer).problems
    assert problems[0] == "the header says 19 bytes, the message has 21"
    assert problems[1] == "2 bytes no structure accounts for: 0102"


def test_never_raises_on_damaged_bytes():
    """Every prefix and random mutations of real messages decode to a Message, whatever they hold."""
    seeds = [_mac_ip_update(), bgp.open_message(65000, "198.18.0.2"),
             bgp.update(reach=[bgp.inclusive_multicast_route(RD, "198.18.0.2"), bgp.ip_prefix_route(RD, "10.0.0.0/8", 5)],
                        next_hop="198.18.0.2", pmsi=bgp.ingress_replication(100, "198.18.0.2")),
             bgp.update(withdraw=[bgp.mac_ip_route(RD, MAC, 100)])]
    rng = random.Random(20)
    for seed in seeds:
        for cut in range(len(seed)):
            bgp.decode(_fixed(seed[:cut]) if cut >= bgp.HEADER_LEN else seed[:cut]).text()
        for _ in range(300):
            raw = bytearray(seed)
            for _ in range(rng.randint(1, 4)):
                raw[rng.randrange(bgp.HEADER_LEN, len(raw))] = rng.randrange(256)
            message = bgp.decode(bytes(raw))
            message.text()
            for route in message.reached() + message.withdrawn():
                route.text()
            for attribute in message.attributes():
                attribute.text()


def test_generic_structures_build_as_asked():
    """A case builds what no typed layer describes (a malformed MP_REACH_NLRI, an unknown route type) from the
    generic layers: building must give that class, not a damaged stand-in."""
    attribute = bgp.PathAttribute(flags=bgp.OPTIONAL | bgp.EXTENDED, type_code=14, value=b"\x00" * 5)
    assert bytes(attribute) == bytes([0x90, 14, 0, 5]) + b"\x00" * 5
    route = bgp.EvpnRoute(route_type=9, value=b"\x01\x02")
    assert bytes(route) == bytes([9, 2, 1, 2])


def test_update_error_subcodes_are_named():
    assert bgp.decode(bgp.message(bgp.Notification(code=3, subcode=9))).text() == \
        "NOTIFICATION UPDATE Message Error subcode 9 (Optional Attribute Error)"
