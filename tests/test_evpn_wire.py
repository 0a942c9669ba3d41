"""The BGP EVPN wire reader (harness/protocols/evpn/wire.py): BGP read from TCP as it was sent, whatever the
segments did, and read as Wireshark reads it (tests/evpn_tshark.py) on a real FRR capture and on one the codec
built."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from scapy.layers.inet import IP, TCP
from scapy.layers.l2 import Ether
from scapy.utils import wrpcap

from evpn_tshark import disagreements
from harness.protocols.evpn import bgp
from harness.protocols.evpn.wire import Wire

DATA = Path(__file__).parent / "data"
A, B = "198.18.0.2", "198.18.0.3"
RD = "198.18.0.2:2"
needs_tshark = pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark is not installed")


def _segments(stream: bytes, cuts: list[int], isn: int = 1000, src: str = A, dst: str = B, sport: int = 40000,
              dport: int = 179):
    """The stream as TCP segments cut at `cuts` (byte offsets), after a SYN: [(seq, packet)]."""
    syn = Ether() / IP(src=src, dst=dst) / TCP(sport=sport, dport=dport, flags="S", seq=isn)
    bounds = [0, *cuts, len(stream)]
    pieces = []
    for start, end in zip(bounds, bounds[1:]):
        pieces.append(Ether() / IP(src=src, dst=dst) / TCP(sport=sport, dport=dport, flags="PA",
                                                           seq=isn + 1 + start) / stream[start:end])
    return syn, pieces


def _write(tmp_path: Path, packets) -> Path:
    path = tmp_path / "bgp.pcap"
    for i, packet in enumerate(packets):
        packet.time = 1000 + i * 0.01
    wrpcap(str(path), packets)
    return path


def _stream() -> bytes:
    return (bgp.open_message(65000, A) + bgp.keepalive()
            + bgp.update(reach=[bgp.inclusive_multicast_route(RD, A)], next_hop=A,
                         pmsi=bgp.ingress_replication(100, A),
                         communities=[bgp.route_target("65000:100"), bgp.ExtEncapsulation()])
            + bgp.update(reach=[bgp.mac_ip_route(RD, "02:4f:49:64:00:01", 100, "198.19.100.1")], next_hop=A,
                         communities=[bgp.route_target("65000:100"), bgp.ExtEncapsulation(),
                                      bgp.ExtMacMobility(sequence=3), bgp.ExtRouterMac(mac="02:00:00:00:00:aa")])
            + bgp.update(withdraw=[bgp.mac_ip_route(RD, "02:4f:49:64:00:01", 100, "198.19.100.1")]))


def test_messages_split_across_segments_out_of_order_and_retransmitted(tmp_path):
    stream = _stream()
    syn, pieces = _segments(stream, [10, 40, 41, 90, 150])
    # the third piece comes after the fourth, the second is sent twice
    path = _write(tmp_path, [syn, pieces[0], pieces[1], pieces[3], pieces[2], pieces[1], pieces[4], pieces[5]])
    wire = Wire.from_pcap(path)
    assert not wire.problems
    assert [r.type_name for r in wire.records] == ["OPEN", "KEEPALIVE", "UPDATE", "UPDATE", "UPDATE"]
    assert [r.message.raw for r in wire.records] == [m for _, m in bgp.split(stream)[0]]
    (_, flood), = wire.advertised(route_type=3)
    assert flood.ip_text == A
    (record, mac), = wire.advertised(route_type=2, mac="02:4f:49:64:00:01")
    assert record.message.community(bgp.ExtMacMobility).sequence == 3 and mac.vni == 100
    assert wire.withdrawn(route_type=2, ip_text="198.19.100.1")
    # the OPEN ends past byte 41: its bytes came with frame 4, but frame 5 closed the gap before them
    assert len(bgp.split(stream)[0][0][1]) > 41 and wire.records[0].number == 5


def test_a_gap_that_never_closes_is_a_problem(tmp_path):
    syn, pieces = _segments(_stream(), [50, 100])
    wire = Wire.from_pcap(_write(tmp_path, [syn, pieces[0], pieces[2]]))
    assert [r.type_name for r in wire.records] == ["OPEN"]
    assert len(wire.problems) == 1 and "TCP bytes missing before frame #3" in wire.problems[0]


def test_a_stream_that_loses_its_marker_is_a_problem(tmp_path):
    syn, pieces = _segments(bgp.keepalive() + b"\x00" * 30, [])
    wire = Wire.from_pcap(_write(tmp_path, [syn, *pieces]))
    assert [r.type_name for r in wire.records] == ["KEEPALIVE"]
    assert wire.problems == [f"{A}:40000 > {B}:179: the BGP stream breaks at byte 19: no marker"]


def test_describe_names_routes_with_their_vnis():
    wire = Wire.from_pcap(DATA / "evpn_frr_ibgp.pcap")
    text = wire.describe()
    assert "+ type 3 (Inclusive Multicast) rd 198.18.250.2:2 originator 198.18.250.2 (PMSI vni 100)" in text
    assert "+ type 2 (MAC/IP) rd 198.18.250.3:2 mac 02:4f:49:64:00:03 ip 198.19.100.3 vni 100" in text
    assert "KEEPALIVE" not in text and "UPDATE End-of-RIB (L2VPN/EVPN)" in text


@needs_tshark
@pytest.mark.parametrize("capture", ["evpn_frr_ibgp.pcap", "evpn_frr_type5.pcap"])
def test_agrees_with_tshark_on_a_real_frr_capture(capture):
    assert not disagreements(DATA / capture)


def test_reads_frr_type5_routes_with_router_mac():
    """FRR 8.4's type-5 routes in the default VRF: the prefix, the L3 VNI as label, the router's MAC."""
    wire = Wire.from_pcap(DATA / "evpn_frr_type5.pcap")
    (record, route), = wire.advertised(route_type=5, src="198.18.251.3")
    assert (route.prefix_text, route.vni, bgp.rd_text(bytes(route.rd))) == ("198.19.203.0/24", 4001, "198.18.251.3:1")
    assert record.message.community(bgp.ExtRouterMac).mac == "2a:ba:49:ad:b6:aa"
    assert record.message.route_targets() == ["65000:4001"]


@needs_tshark
def test_agrees_with_tshark_on_every_route_type_the_codec_builds(tmp_path):
    routes = [bgp.EvpnEthernetAd(rd=bgp.rd("65000:7"), esi=bytes(range(10)), ethernet_tag=0, vni=0xABCDE0),
              bgp.mac_ip_route("4200000000:7", "02:4f:49:64:00:09", 100),
              bgp.mac_ip_route(RD, "02:4f:49:64:00:01", 0x123456, "198.19.100.1", vni2=4001),
              bgp.EvpnEthernetSegment(rd=bgp.rd(RD), esi=bytes(range(10)), ip=bytes([198, 18, 0, 2])),
              bgp.ip_prefix_route(RD, "198.19.7.0/24", 4001)]
    stream = b"".join(bgp.update(reach=[route], next_hop=A, communities=[
        bgp.route_target("65000:100"), bgp.ExtMacMobility(flags=1, sequence=9)]) for route in routes)
    syn, pieces = _segments(stream, [])
    problems = disagreements(_write(tmp_path, [syn, *pieces]))
    assert not problems, "\n".join(problems)


def test_transcript_command_shows_evpn_routes_with_their_vnis():
    """`overlay-interop transcript` gives TCP 179 to the evpn package (the dispatch table) and prints its routes."""
    from harness.transcript_cli import transcribe
    lines = "\n".join(transcribe(DATA / "evpn_frr_ibgp.pcap", []))
    assert "== evpn: " in lines
    assert "+ type 2 (MAC/IP) rd 198.18.250.2:2 mac 02:4f:49:64:00:02 ip 198.19.100.2 vni 100" in lines
    assert "PMSI_TUNNEL Ingress Replication vni 100 endpoint 198.18.250.3" in lines
    # a withdrawal's label is no VNI (FRR sends 0): the route is shown without one
    assert "- type 2 (MAC/IP) rd 198.18.250.3:2 mac 02:4f:49:64:00:03 ip 198.19.100.3\n" in lines


def test_dispatch_gives_tcp_179_to_evpn_and_nothing_else_of_tcp():
    from harness.protocols.dispatch import owner

    class Datagram:
        def __init__(self, proto, ports):
            self.proto, self.ports = proto, ports

    assert owner(Datagram(6, (40000, 179))) == "evpn" and owner(Datagram(6, (179, 40000))) == "evpn"
    assert owner(Datagram(6, (40000, 4789))) is None  # TCP to a VXLAN port is not VXLAN
    assert owner(Datagram(17, (40000, 179))) is None
