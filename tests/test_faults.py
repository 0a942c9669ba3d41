"""Underlay faults (harness.faults): the nftables ruleset a drop renders to, and reading its counters back; and
how the IPsec adapters translate the scenario's retransmission and dead-peer fields."""
import json
from pathlib import Path

import pytest

from harness.faults import ONCE, TABLE, Drop, dropped_counts, ruleset
from harness.host import HostCapabilities
from harness.protocols.ipsec.scenario import Scenario, Side
from harness.vendor import load_vendor

VENDORS = Path(__file__).resolve().parent.parent / "vendors"


def test_the_first_packets_once():
    assert Drop("udp dport 500", first=1).rule("drop-0") == \
        f'udp dport 500 numgen inc mod {ONCE} < 1 counter drop comment "drop-0"'


def test_the_first_packets_of_every_n():
    assert Drop("udp dport 4500", first=2, every=5).rule("x") == \
        'udp dport 4500 numgen inc mod 5 < 2 counter drop comment "x"'


def test_every_packet():
    assert Drop("icmp type echo-request").rule("x") == 'icmp type echo-request counter drop comment "x"'


def test_ruleset_replaces_one_table_and_hooks_only_the_directions_used():
    text = ruleset([Drop("udp dport 500", first=1), Drop("udp sport 500", direction="out"),
                    Drop("udp dport 4500", first=1)])
    lines = text.splitlines()
    # declare, delete, define: nft -f of this twice leaves one table, not rules stacked twice
    assert lines[:3] == [f"table inet {TABLE}", f"delete table inet {TABLE}", f"table inet {TABLE} {{"]
    inbound = lines.index("    chain prerouting {")
    outbound = lines.index("    chain postrouting {")
    assert "type filter hook prerouting priority -300; policy accept;" in lines[inbound + 1]
    # labels follow the order the drops were asked for, whatever chain they land in
    assert 'comment "drop-0"' in lines[inbound + 2] and 'comment "drop-2"' in lines[inbound + 3]
    assert 'udp sport 500 counter drop comment "drop-1"' in lines[outbound + 2]
    assert "postrouting" not in ruleset([Drop("udp dport 500")])


def test_no_drops_leave_an_empty_table():
    assert ruleset([]).splitlines()[-2:] == [f"table inet {TABLE} {{", "}"]


@pytest.mark.parametrize("kwargs, problem", [
    (dict(matching="udp dport 500", direction="sideways"), "direction"),
    (dict(matching="udp dport 500", first=0), "first"),
    (dict(matching="udp dport 500", every=3), "every"),
    (dict(matching="udp dport 500", first=3, every=3), "every"),
    (dict(matching='udp dport 500; flush ruleset'), "one nftables match"),
    (dict(matching=" "), "one nftables match"),
])
def test_drop_refuses_what_it_cannot_render(kwargs, problem):
    with pytest.raises(ValueError, match=problem):
        Drop(**kwargs)


def test_describe_says_what_is_lost():
    assert Drop("udp dport 500", first=1).describe() == "drop the first 1 matching 'udp dport 500' (in)"
    assert Drop("udp", first=1, every=4, direction="out").describe() == \
        "drop the first 1 of every 4 matching 'udp' (out)"


def test_dropped_counts_from_nft_json():
    # shape of `nft --json list table inet ...` from nftables 1.0.6 (Debian 12)
    listing = {"nftables": [
        {"metainfo": {"version": "1.0.6", "json_schema_version": 1}},
        {"table": {"family": "inet", "name": TABLE, "handle": 3}},
        {"chain": {"family": "inet", "table": TABLE, "name": "prerouting", "handle": 1}},
        {"rule": {"family": "inet", "table": TABLE, "chain": "prerouting", "handle": 3, "comment": "drop-0",
                  "expr": [{"match": {"op": "==", "left": {"payload": {"protocol": "udp", "field": "dport"}},
                                      "right": 500}},
                           {"match": {"op": "<", "left": {"numgen": {"mode": "inc", "mod": 5, "offset": 0}},
                                      "right": 1}},
                           {"counter": {"packets": 2, "bytes": 60}}, {"drop": None}]}},
        {"rule": {"family": "inet", "table": TABLE, "chain": "prerouting", "handle": 4, "comment": "drop-1",
                  "expr": [{"counter": {"packets": 0, "bytes": 0}}, {"drop": None}]}},
        {"rule": {"family": "inet", "table": TABLE, "chain": "prerouting", "handle": 5,  # not ours: no comment
                  "expr": [{"counter": {"packets": 9, "bytes": 0}}, {"drop": None}]}},
    ]}
    assert dropped_counts(json.dumps(listing)) == {"drop-0": 2, "drop-1": 0}


HOST = HostCapabilities(present={"kernel-esp": False}, details={})
SIDE = Side(role="initiator", address="198.18.0.2", peer_address="198.18.0.3", identity="initiator.lab",
            peer_identity="responder.lab", psk="secret", subnet="198.19.1.0/24", peer_subnet="198.19.2.0/24")


def rendered(vendor: str, scenario: Scenario) -> dict[str, str]:
    return load_vendor(VENDORS / vendor).adapter_class()(None, HOST).render(scenario, SIDE)


def test_strongswan_retransmits_without_backoff_and_restarts_a_dead_peer():
    files = rendered("strongswan", Scenario(retransmit_timeout_s=1, retransmit_tries=2, dpd_delay_s=1,
                                            dpd_action="restart"))
    conf = files["/etc/strongswan.conf"]
    assert "retransmit_timeout = 1\n" in conf and "retransmit_base = 1\n" in conf and "retransmit_tries = 2\n" in conf
    assert "dpd_action = restart" in files["/etc/swanctl/swanctl.conf"]
    default = rendered("strongswan", Scenario())
    assert "retransmit_" not in default["/etc/strongswan.conf"].split("charon {", 1)[1].split("plugins", 1)[0]
    assert "dpd_action = clear" in default["/etc/swanctl/swanctl.conf"]


def test_libreswan_gives_up_when_the_last_doubled_retransmission_went_unanswered():
    conf = rendered("libreswan", Scenario(retransmit_timeout_s=1, retransmit_tries=2, dpd_delay_s=1,
                                          dpd_action="restart"))["/etc/ipsec.conf"]
    # retransmissions 1 s and 2 s after the first sending; the second's wait ends at 4 s: a deadline in (2, 4]
    assert "retransmit-interval=1000\n" in conf and "retransmit-timeout=3000ms\n" in conf
    assert "dpdaction=restart\n" in conf and "rekey=yes\n" in conf  # revival is what restarts in pluto 4.10
    default = rendered("libreswan", Scenario())["/etc/ipsec.conf"]
    assert "retransmit-timeout=5s\n" in default and "retransmit-interval" not in default
    assert "rekey=no\n" in default


def test_libreswan_keeps_four_retransmissions_before_giving_up_whatever_the_interval():
    """pluto gives up at a deadline, not a count: the fixed 5 s that allows four retransmissions of 0.5 s would end
    a scenario stretched for a microVM (5-s interval) before its first retransmission."""
    stretched = rendered("libreswan", Scenario(retransmit_timeout_s=0.5).slowed(10))["/etc/ipsec.conf"]
    assert "retransmit-interval=5000\n" in stretched and "retransmit-timeout=50000ms\n" in stretched
    host = rendered("libreswan", Scenario(retransmit_timeout_s=0.5))["/etc/ipsec.conf"]
    assert "retransmit-interval=500\n" in host and "retransmit-timeout=5000ms\n" in host


def test_scenario_refuses_an_unknown_dpd_action():
    with pytest.raises(ValueError, match="dpd_action"):
        Scenario(dpd_action="hold")


def test_a_vm_nodes_drops_act_on_its_bridge_by_port():
    """A VM node's container bridges the VM's frames (harness.vm): nothing there is routed, so "in" drops what
    arrives from the lab port and "out" what arrives from the VM's port, in the bridge family."""
    text = ruleset([Drop("udp dport 500", first=2), Drop("udp sport 4500", direction="out")], ("eth0", "tap0"))
    assert "table bridge overlay_interop_faults {" in text and "inet" not in text
    assert "type filter hook prerouting priority -300; policy accept;" in text
    assert 'iifname "eth0" udp dport 500 numgen inc mod 1073741824 < 2 counter drop comment "drop-0"' in text
    assert 'iifname "tap0" udp sport 4500 counter drop comment "drop-1"' in text
    assert "postrouting" not in text


def test_the_nat_router_masquerades_only_the_inside_node_towards_the_outside_one():
    from harness.nat import ROUTER_SYSCTLS, TABLE, ruleset
    rules = ruleset("198.18.0.2", "198.18.0.3")
    assert "ip saddr 198.18.0.2 ip daddr 198.18.0.3 counter masquerade" in rules
    assert rules.startswith(f"table ip {TABLE}\ndelete table ip {TABLE}\n")  # replaced whole, never stacked
    assert ROUTER_SYSCTLS["net.ipv4.ip_forward"] == "1"
    # it forwards out of the interface the packet came in by: a redirect would send the inside node direct
    assert ROUTER_SYSCTLS["net.ipv4.conf.all.send_redirects"] == "0"
