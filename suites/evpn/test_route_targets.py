"""Route targets decide which EVPN routes a VTEP imports (RFC 7432 7.10, RFC 4364 4.3.1; auto-derived ones: RFC
8365 5.1.2.1): over iBGP and eBGP, auto-derived and explicit, and never a route whose RT the VTEP does not import."""
import pytest

from harness.protocols.evpn import bgp
from harness.protocols.evpn.scenario import Scenario

pytestmark = [pytest.mark.protocol("evpn"), pytest.mark.features("evpn"), pytest.mark.any_features("data_plane")]

TIMEOUT_S = 30
SETTLE_S = 5  # after the other side's routes are on the wire: time an importing VTEP would have taken
SHARED_RT, OTHER_RT = "64999:4242", "64999:1"


def assert_imports_each_other(lab, wire):
    """Each data-plane VTEP holds the other in its flood list once its type-3 route is on the wire."""
    for name in lab.data_planes():
        other = "vtep2" if name == "vtep1" else "vtep1"
        assert lab.address(other) in lab.flood_list(name), (
            f"{name} did not import {other}'s Inclusive Multicast route (flood list "
            f"{sorted(lab.flood_list(name))}):\n{wire.describe()}")


def originated(wire, src):
    """The Inclusive Multicast routes `src` sent for itself (over eBGP a VTEP also passes on its peer's)."""
    return [(record, route) for record, route in wire.advertised(route_type=3, src=src) if route.ip_text == src]


def route_targets(wire, src):
    return {rt for record, _ in originated(wire, src) for rt in record.message.route_targets()}


def wait_for_both(lab):
    """Until both VTEPs' own type-3 routes are on the wire and every data-plane VTEP has a flood list."""
    for name in ("vtep1", "vtep2"):
        lab.until_wire(lambda w: originated(w, lab.address(name)), TIMEOUT_S)
    for name in lab.data_planes():
        lab.until(lambda: lab.flood_list(name), TIMEOUT_S)


@pytest.mark.severity("critical")
def test_ebgp_auto_derived(evpn_pair):
    """RFC 8365 5.1.2.1: over eBGP each VTEP is its own AS; a VTEP that derives its RT exports AS:VNI with its own
    AS, and its peer imports it though the AS differs (a VTEP that derives none is given that same RT)."""
    lab = evpn_pair.start(Scenario(ebgp=True))
    lab.wait_established(TIMEOUT_S)
    wait_for_both(lab)
    wire = lab.wire()
    vni = lab.segments[0].vni
    for name in ("vtep1", "vtep2"):
        address, asn = lab.address(name), lab.sides[name].asn
        sent = originated(wire, address)
        assert sent, f"no Inclusive Multicast route from {name} over eBGP:\n{wire.describe()}"
        assert route_targets(wire, address) == {f"{asn}:{vni}"}, (
            f"{name} (AS {asn}) exported RTs {sorted(route_targets(wire, address))}, not {asn}:{vni} "
            f"(RFC 8365 5.1.2.1):\n{wire.describe()}")
        path = sent[0][0].message.attribute(bgp.AsPath)
        assert path is not None and path.text().split()[1:2] == [str(asn)], \
            f"{name}'s eBGP route has {path.text() if path else 'no AS_PATH'}, not its own AS first:\n{wire.describe()}"
    assert_imports_each_other(lab, wire)


@pytest.mark.severity("normal")
def test_explicit_route_targets(evpn_pair):
    """RFC 7432 7.10: with an RT configured for the VNI, each VTEP exports exactly it and imports the other's."""
    lab = evpn_pair.start(Scenario(route_targets={100: SHARED_RT}))
    lab.wait_established(TIMEOUT_S)
    wait_for_both(lab)
    wire = lab.wire()
    for name in ("vtep1", "vtep2"):
        got = route_targets(wire, lab.address(name))
        assert got == {SHARED_RT}, \
            f"{name} exported RTs {sorted(got)}, not the configured {SHARED_RT}:\n{wire.describe()}"
    assert_imports_each_other(lab, wire)


@pytest.mark.severity("normal")
def test_wrong_route_target_not_imported(evpn_pair):
    """RFC 4364 4.3.1 / RFC 7432 9.2.1: a VTEP imports a route only if one of its RTs is one the VTEP imports;
    vtep2 uses another RT than vtep1, so neither builds a flood entry for the other."""
    lab = evpn_pair.start(Scenario(vtep_route_targets={1: SHARED_RT, 2: OTHER_RT}))
    lab.wait_established(TIMEOUT_S)
    for name in ("vtep1", "vtep2"):
        lab.until_wire(lambda w: originated(w, lab.address(name)), TIMEOUT_S)
    lab.until(lambda: False, SETTLE_S)
    leaked = {name: sorted(lab.flood_list(name)) for name in lab.data_planes() if lab.flood_list(name)}
    wire = lab.wire()
    for name, rt in (("vtep1", SHARED_RT), ("vtep2", OTHER_RT)):
        got = route_targets(wire, lab.address(name))
        assert got == {rt}, f"{name} exported RTs {sorted(got)}, not the configured {rt}:\n{wire.describe()}"
    assert not leaked, (f"imported a route whose RT it does not import (flood lists {leaked}; vtep1 imports "
                        f"{SHARED_RT} only, vtep2 {OTHER_RT} only):\n{wire.describe()}")
