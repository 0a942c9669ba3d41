"""An L2TP device under test (harness.protocols.l2tp.device): the settings in RFC 2661 terms, the tunnel secret
and the PPP password kept out of the console, its end of the session read off its counterpart. No Docker here
(tests/test_devices_l2tp_docker.py runs real cases)."""
import json

import pytest

from harness import devices
from harness.protocols.l2tp.device import Endpoint, device_settings, reference_settings
from harness.protocols.l2tp.scenario import Scenario, Side

INVENTORY = """
[[device]]
name = "acme-lns"
description = "ACME LNS"
version = "1.0"
interface = "dut0"
address = "198.18.252.10/24"
peer_address = "198.18.252.1/24"
{control}

[device.protocols.l2tp]
roles = ["lns"]
features = ["tunnel_auth", "data_plane"]
"""


def lns_side(scenario: Scenario = Scenario()) -> Side:
    return Side(role="lns", address="198.18.252.10", peer_address="198.18.252.1", hostname="lns.lab",
                secret=scenario.secret_of("lns"), local_inner="198.19.200.1", remote_inner="198.19.200.2")


def endpoint(tmp_path, control: str) -> Endpoint:
    path = tmp_path / "devices.toml"
    path.write_text(INVENTORY.format(control=control))
    table = tmp_path / "route"
    table.write_text("Iface\tDestination\tGateway\tFlags\tRefCnt\tUse\tMetric\tMask\n")
    [device] = devices.load_inventory(path, routes=table)
    return Endpoint(devices.DeviceNode(device, "lns", "l2tp", "tunnel_setup", tmp_path / "pair"), None)


def test_the_settings_are_the_lns_side_in_rfc_2661_terms():
    settings = device_settings(Scenario(), lns_side())
    assert (settings["role"], settings["local_address"], settings["remote_address"], settings["udp_port"]) == \
        ("lns", "198.18.252.10", "198.18.252.1", 1701)
    assert (settings["host_name"], settings["peer_host_name"]) == ("lns.lab", "lac.lab")
    assert settings["tunnel_authentication"] and settings["secret"] == Scenario().secret
    assert settings["ppp"] == {"auth": "pap", "username": "interop", "password": "interop-password", "mru": 1400,
                               "local_address": "198.19.200.1", "pool": ["198.19.200.2"]}
    off = device_settings(Scenario(secret=None), lns_side(Scenario(secret=None)))
    assert not off["tunnel_authentication"] and off["secret"] is None


def test_manual_control_prints_the_settings_without_secret_or_password(tmp_path, capfd):
    ep = endpoint(tmp_path, 'control = "manual"\ntimeout = 0.3')
    with pytest.raises(devices.LabTimeout):
        ep.render(Scenario(), lns_side())
    printed = capfd.readouterr().err
    assert '"host_name": "lns.lab"' in printed
    assert Scenario().secret not in printed and Scenario().password not in printed
    written = json.loads(ep.node.settings_file.read_text())["settings"]
    assert (written["secret"], written["ppp"]["password"]) == (Scenario().secret, Scenario().password)


def test_a_static_device_skips_another_secret_naming_it_without_showing_it(tmp_path):
    ep = endpoint(tmp_path, 'control = "static"\nsettings = "lns.json"')
    (tmp_path / "lns.json").write_text(json.dumps(devices.static_settings(ep.node.device)))
    assert devices.static_settings(ep.node.device)["l2tp.lns"] == reference_settings(
        "lns", "198.18.252.10", "198.18.252.1", 24)
    ep.render(Scenario(), lns_side())  # the reference case: as configured
    wrong = Scenario(lns_secret="other-secret")
    with pytest.raises(pytest.skip.Exception, match=r"needs another secret \(another value") as caught:
        ep.render(wrong, lns_side(wrong))
    assert "other-secret" not in str(caught.value)


def test_the_devices_end_of_the_session_is_its_counterparts(tmp_path):
    ep = endpoint(tmp_path, 'control = "command"\ncommand = "true"')
    ep.render(Scenario(), lns_side())

    class Lac:
        up = False

        def inner_interface(self):
            return "ppp0" if self.up else None
    ep.counterpart = lac = Lac()
    assert ep.inner_interface() is None
    lac.up = True
    assert "acme-lns's end" in ep.inner_interface()


def test_the_device_cannot_be_told_to_place_a_call(tmp_path):
    ep = endpoint(tmp_path, 'control = "command"\ncommand = "true"')
    with pytest.raises(pytest.skip.Exception, match="cannot make it place a call"):
        ep.connect(10)
