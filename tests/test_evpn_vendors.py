"""The EVPN vendors' rendering and the scenario's side of it, without Docker: what each daemon is told."""
from __future__ import annotations

import json
import tomllib
from pathlib import Path

from harness.protocols.evpn.scenario import Peer, Scenario, Side
from harness.protocols.vxlan.scenario import DEFAULT_SEGMENT
from harness.vendor import load_registry

VENDORS = Path(__file__).resolve().parent.parent / "vendors"


def _side(asn=65000, peer_asn=65000, explicit=False, rt="65000:100") -> Side:
    return Side(name="vtep1", index=1, address="198.18.0.2", asn=asn, peers=(Peer("198.18.0.3", peer_asn),),
                segments=(DEFAULT_SEGMENT,), route_targets={100: rt}, explicit_route_targets=explicit)


def _adapter(name):
    return load_registry(VENDORS, [name])[name].adapter_class()(None, None)


def test_frr_derives_route_targets_unless_told():
    config = _adapter("frr").render(Scenario(), _side())["/etc/frr/frr.conf"]
    assert " neighbor 198.18.0.3 remote-as 65000" in config and "  neighbor 198.18.0.3 activate" in config
    assert "  advertise-all-vni" in config and "route-target" not in config
    explicit = _adapter("frr").render(Scenario(), _side(explicit=True, rt="64999:4242"))["/etc/frr/frr.conf"]
    assert "  vni 100\n   route-target import 64999:4242\n   route-target export 64999:4242\n  exit-vni" in explicit


def test_gobgp_peers_for_evpn_only():
    config = tomllib.loads(_adapter("gobgp").render(Scenario(), _side(asn=65001, peer_asn=65002))[
        "/etc/gobgpd/gobgpd.toml"])
    assert config["global"]["config"] == {"as": 65001, "router-id": "198.18.0.2"}
    (neighbor,) = config["neighbors"]
    assert neighbor["config"] == {"neighbor-address": "198.18.0.3", "peer-as": 65002}
    assert [a["config"]["afi-safi-name"] for a in neighbor["afi-safis"]] == ["l2vpn-evpn"]


def test_scapy_bgp_ships_the_codec_it_speaks():
    files = _adapter("scapy-bgp").render(Scenario(), _side())
    assert json.loads(files["/etc/scapy-bgp/config.json"])["peers"] == ["198.18.0.3"]
    assert "/opt/scapy-bgp/harness/protocols/evpn/bgp.py" in files


def test_session_attributes_follow_the_session():
    """RFC 4271 5.1.5: LOCAL_PREF towards iBGP peers; 5.1.2: the sender's own AS first towards eBGP peers."""
    assert _side().session_attributes() == {"local_pref": 100}
    assert _side(asn=65001, peer_asn=65002).session_attributes() == {"as_path": [65001]}


def test_route_targets_derived_given_or_overridden():
    assert Scenario().route_target(DEFAULT_SEGMENT, 1) == "65000:100"
    assert Scenario(ebgp=True).route_target(DEFAULT_SEGMENT, 2) == "65002:100"
    assert Scenario(route_targets={100: "1:1"}).route_target(DEFAULT_SEGMENT, 1) == "1:1"
    mismatch = Scenario(route_targets={100: "1:1"}, vtep_route_targets={2: "2:2"})
    assert (mismatch.route_target(DEFAULT_SEGMENT, 1), mismatch.route_target(DEFAULT_SEGMENT, 2)) == ("1:1", "2:2")


def test_frr_type5_in_the_default_vrf():
    side = Side(name="vtep1", index=1, address="198.18.0.2", asn=65000, peers=(Peer("198.18.0.3", 65000),),
                segments=(DEFAULT_SEGMENT,), route_targets={100: "65000:100"}, l3vni=4001,
                prefix=Scenario.prefix(1))
    config = _adapter("frr").render(Scenario(l3vni=4001), side)["/etc/frr/frr.conf"]
    assert "vrf default\n vni 4001\nexit-vrf" in config
    assert " address-family ipv4 unicast\n  network 198.19.201.0/24" in config
    assert "  advertise ipv4 unicast" in config
    assert "advertise ipv4 unicast" not in _adapter("frr").render(Scenario(), _side())["/etc/frr/frr.conf"]
