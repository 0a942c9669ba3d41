"""MAC mobility (RFC 7432 15) against a reference speaker that advertises the judged side's own host MAC with a
sequence number of its choosing: the higher sequence number wins, and a MAC that moves back is advertised with a
sequence number above every one seen."""
import pytest

from harness.protocols.evpn import bgp
from harness.protocols.evpn.scenario import Scenario

pytestmark = [pytest.mark.protocol("evpn"), pytest.mark.features("evpn", "mac_mobility"), pytest.mark.probes]

TIMEOUT_S = 30
MOVED_SEQ = 5


def _sequence(record) -> int:
    mobility = record.message.community(bgp.ExtMacMobility)
    return mobility.sequence if mobility else 0


@pytest.mark.severity("normal")
@pytest.mark.any_features("data_plane")
def test_higher_sequence_wins(evpn_pair):
    """RFC 7432 15.1: a PE that receives a MAC/IP route for a MAC it advertised with a higher sequence number
    withdraws its own route (the MAC moved); when the MAC is learned locally again, it advertises it with a sequence
    number higher than the one it received."""
    lab = evpn_pair.start(Scenario(svi=True))
    prober, judged = lab.pair_lab.prober, lab.pair_lab.judged
    segment = lab.segments[0]
    here, there = lab.address(prober), lab.address(judged)
    mac, ip = lab.inner_mac(judged), lab.inner_address(judged)
    svi = lab.sides[judged].svi_address(segment)
    communities = [bgp.route_target(lab.sides[prober].route_targets[segment.vni]), bgp.ExtEncapsulation(tunnel_type=8)]
    lab.wait_established(TIMEOUT_S)

    def talk():  # the judged side's host speaks: its VTEP learns (or re-learns) its MAC locally
        lab.inner_host(judged).exec(["ping", "-c", "1", "-W", "1", svi], timeout=5)

    talk()
    first = lab.until_wire(lambda w: w.advertised(route_type=2, src=there, mac=mac), TIMEOUT_S)
    assert first, f"{judged} never advertised its host's MAC {mac}"

    moved = bgp.mac_ip_route(lab.rd(prober), mac, segment.vni, ip)
    lab.send(prober, lab.update(prober, reach=[moved],
                                communities=[*communities, bgp.ExtMacMobility(sequence=MOVED_SEQ)]), "moved")
    lab.until_wire(lambda w: w.withdrawn(route_type=2, src=there, mac=mac), TIMEOUT_S)
    installed = lab.until(lambda: lab.remote_macs(judged).get(mac) == here, TIMEOUT_S)

    talk()  # the host is still there: the MAC moves back
    lab.until_wire(lambda w: any(_sequence(r) > MOVED_SEQ for r, _ in w.advertised(route_type=2, src=there, mac=mac)),
                   TIMEOUT_S)
    wire = lab.wire()
    sent = [r for r, _ in wire.advertised(route_type=2, src=here, mac=mac)]
    assert sent, f"the speaker's route for {mac} is not on the wire:\n{wire.describe()}"
    withdrawn = [r for r, _ in wire.withdrawn(route_type=2, src=there, mac=mac) if r.number > sent[0].number]
    assert withdrawn, (f"{judged} did not withdraw its route for {mac} after a route with sequence {MOVED_SEQ} "
                       f"from {here} (RFC 7432 15.1):\n{wire.describe()}")
    assert installed, f"{judged} did not install {mac} towards {here} after the move: {lab.remote_macs(judged)}"
    back = [r for r, _ in wire.advertised(route_type=2, src=there, mac=mac) if r.number > sent[0].number]
    assert back, f"{judged} never advertised {mac} again once its host talked after the move:\n{wire.describe()}"
    assert _sequence(back[-1]) > MOVED_SEQ, (
        f"{judged} advertised {mac} back with sequence {_sequence(back[-1])}, not above {MOVED_SEQ} (RFC 7432 15.1)"
        f":\n{wire.describe()}")


@pytest.mark.severity("normal")
@pytest.mark.any_features("data_plane")
def test_sticky_mac_never_moves(evpn_pair):
    """RFC 7432 15.2: a MAC advertised with the sticky (static) flag must not move: a PE that then sees it behind a
    local port does not advertise it (and keeps forwarding it towards the PE that made it sticky)."""
    lab = evpn_pair.start(Scenario(svi=True))
    prober, judged = lab.pair_lab.prober, lab.pair_lab.judged
    segment = lab.segments[0]
    here, there = lab.address(prober), lab.address(judged)
    sticky_mac = "02:4f:49:ee:57:01"
    communities = [bgp.route_target(lab.sides[prober].route_targets[segment.vni]), bgp.ExtEncapsulation(tunnel_type=8)]
    lab.wait_established(TIMEOUT_S)
    static = bgp.mac_ip_route(lab.rd(prober), sticky_mac, segment.vni)
    lab.send(prober, lab.update(prober, reach=[static], communities=[*communities, bgp.ExtMacMobility(flags=1)]),
             "sticky")
    installed = lab.until(lambda: lab.remote_macs(judged).get(sticky_mac) == here, TIMEOUT_S)
    assert installed, f"{judged} did not install the sticky MAC {sticky_mac} towards {here}: {lab.remote_macs(judged)}"

    host = lab.inner_host(judged)  # the judged side's host takes the sticky MAC and talks
    host.exec(["ip", "link", "set", "eth0", "address", sticky_mac], timeout=10, check=True,
              what="giving the host the sticky MAC")
    host.exec(["ping", "-c", "2", "-W", "1", lab.sides[judged].svi_address(segment)], timeout=5)
    lab.until_wire(lambda w: w.advertised(route_type=2, src=there, mac=sticky_mac), 5)
    still = lab.remote_macs(judged).get(sticky_mac)
    wire = lab.wire()
    moved = wire.advertised(route_type=2, src=there, mac=sticky_mac)
    assert not moved, (f"{judged} advertised the sticky MAC {sticky_mac} as its own (RFC 7432 15.2: it never moves):"
                       f"\n{wire.describe()}")
    assert still == here, f"{judged} no longer forwards the sticky MAC {sticky_mac} towards {here} (now: {still})"


DUPLICATE_MOVES = 5  # RFC 7432 15.1's default N (in M = 180 s)
MOVES_TRIED = 8


@pytest.mark.severity("minor")
@pytest.mark.any_features("data_plane")
def test_duplicate_mac_detection(evpn_pair):
    """RFC 7432 15.1: a MAC that moves N times within M seconds (5 in 180 s by default) is a duplicate: the PE
    stops sending MAC/IP routes for it. The speaker and the judged side's host take turns claiming the host's MAC,
    each claim with a higher sequence number; the judged side must stop claiming it back after at most N moves."""
    lab = evpn_pair.start(Scenario(svi=True))
    prober, judged = lab.pair_lab.prober, lab.pair_lab.judged
    segment = lab.segments[0]
    there = lab.address(judged)
    mac, ip = lab.inner_mac(judged), lab.inner_address(judged)
    svi = lab.sides[judged].svi_address(segment)
    communities = [bgp.route_target(lab.sides[prober].route_targets[segment.vni]), bgp.ExtEncapsulation(tunnel_type=8)]
    lab.wait_established(TIMEOUT_S)

    def talk():
        lab.inner_host(judged).exec(["ping", "-c", "1", "-W", "1", svi], timeout=5)

    def claims(wire):
        return [r for r, _ in wire.advertised(route_type=2, src=there, mac=mac)]

    talk()
    assert lab.until_wire(claims, TIMEOUT_S), f"{judged} never advertised its host's MAC {mac}"
    sequence, followed = 0, 0
    for move in range(1, MOVES_TRIED + 1):
        sequence += 1  # the speaker's claim: one above the judged side's last
        lab.send(prober, lab.update(prober, reach=[bgp.mac_ip_route(lab.rd(prober), mac, segment.vni, ip)],
                                    communities=[*communities, bgp.ExtMacMobility(sequence=sequence)]),
                 f"claim-{move}")
        lab.until(lambda: False, 1)
        talk()
        back = lab.until_wire(lambda w: [r for r in claims(w) if _sequence(r) > sequence], 5)
        if not back:
            break
        followed += 1
        sequence = max(_sequence(r) for r in back)
    wire = lab.wire()
    sequences = [_sequence(r) for r in claims(wire)]
    assert followed <= DUPLICATE_MOVES, (
        f"{judged} claimed {mac} back after each of {followed} moves (sequence numbers {sequences}); RFC 7432 15.1: "
        f"after {DUPLICATE_MOVES} moves it is a duplicate and no longer advertised:\n{wire.describe()}")
    assert followed >= 1, f"{judged} never claimed {mac} back after a move (see higher_sequence_wins):\n{wire.describe()}"
