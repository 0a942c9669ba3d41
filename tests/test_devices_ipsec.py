"""An IPsec device under test (harness.protocols.ipsec.device): the settings in neutral terms, the secret kept out
of the console and skip reasons, a static device running wrong_psk, its CHILD SAs read off its counterpart.
No Docker here (tests/test_devices_ipsec_docker.py runs real cases)."""
import json
from pathlib import Path

import pytest

from harness import devices
from harness.protocols.ipsec.device import Endpoint, device_settings, reference_settings
from harness.protocols.ipsec.fixtures import side_of
from harness.protocols.ipsec.roles import ChildSa
from harness.protocols.ipsec.scenario import Scenario

INVENTORY = """
[[device]]
name = "acme-gw"
description = "ACME Gateway 5000"
version = "7.2.1"
interface = "dut0"
address = "198.18.250.10/24"
peer_address = "198.18.250.1/24"
{control}

[device.protocols.ipsec]
roles = ["responder"]
features = ["psk", "child_sa"]
"""
ADDRESSES = {"initiator": "198.18.250.1", "responder": "198.18.250.10"}


def device(tmp_path, control: str):
    path = tmp_path / "devices.toml"
    path.write_text(INVENTORY.format(control=control))
    table = tmp_path / "route"
    table.write_text("Iface\tDestination\tGateway\tFlags\tRefCnt\tUse\tMetric\tMask\n")
    [made] = devices.load_inventory(path, routes=table)
    return made


def endpoint(tmp_path, control: str) -> Endpoint:
    node = devices.DeviceNode(device(tmp_path, control), "responder", "ipsec", "psk_tunnel", tmp_path / "pair")
    return Endpoint(node, None)


def load(ep: Endpoint, scenario: Scenario) -> None:
    scenario = ep.fit(scenario)
    ep.render(scenario, side_of("responder", scenario, ADDRESSES))
    ep.load()


def test_the_settings_are_the_responders_side_in_rfc_7296_terms():
    settings = device_settings(Scenario(), side_of("responder", Scenario(), ADDRESSES))
    assert settings["local_address"] == "198.18.250.10" and settings["remote_address"] == "198.18.250.1"
    assert (settings["local_identity"], settings["remote_identity"]) == ("responder.lab", "initiator.lab")
    assert (settings["auth"], settings["psk"]) == ("psk", Scenario().psk)
    assert settings["ike_proposals"] == [{"encryption": "ENCR_AES_CBC_128", "integrity": "AUTH_HMAC_SHA2_256_128",
                                          "prf": "PRF_HMAC_SHA2_256", "key_exchange": "MODP_2048"}]
    assert settings["esp_proposals"] == [{"encryption": "ENCR_AES_CBC_128", "integrity": "AUTH_HMAC_SHA2_256_128"}]
    assert (settings["local_subnet"], settings["remote_subnet"], settings["inner_address"]) == \
        ("198.19.2.0/24", "198.19.1.0/24", "198.19.2.1")
    assert settings["mode"] == "tunnel" and not settings["initiates"]
    assert "child_rekey_s" not in settings  # a lifetime only where the case sets one
    assert device_settings(Scenario(child_rekey_s=2), side_of("responder", Scenario(), ADDRESSES))[
        "child_rekey_s"] == 2


def test_certificate_cases_skip_naming_the_setting():
    with pytest.raises(pytest.skip.Exception, match=r"PSK authentication only so far \(auth\)"):
        device_settings(Scenario(auth="rsa"), side_of("responder", Scenario(), ADDRESSES))


def test_manual_control_prints_the_settings_without_the_psk(tmp_path, capfd):
    ep = endpoint(tmp_path, 'control = "manual"\ntimeout = 0.3')
    with pytest.raises(devices.LabTimeout):
        load(ep, Scenario())
    printed = capfd.readouterr().err
    assert '"local_identity": "responder.lab"' in printed and Scenario().psk not in printed
    assert '"psk": "(secret: in the settings file)"' in printed
    assert json.loads(ep.node.settings_file.read_text())["settings"]["psk"] == Scenario().psk  # the file holds it
    assert Scenario().psk not in ep.node.logs()


def static(tmp_path) -> Endpoint:
    ep = endpoint(tmp_path, 'control = "static"\nsettings = "acme.json"')
    (tmp_path / "acme.json").write_text(json.dumps(devices.static_settings(ep.node.device)))
    return ep


def test_a_static_device_runs_the_reference_case_and_skips_another_psk_without_showing_it(tmp_path):
    ep = static(tmp_path)
    load(ep, Scenario())
    assert "static settings match ipsec.responder" in ep.node.logs()
    with pytest.raises(pytest.skip.Exception, match=r"needs another psk \(another value than the one configured\)") \
            as caught:
        ep.render(Scenario(psk="other"), side_of("responder", Scenario(psk="other"), ADDRESSES))
        ep.load()
    assert "other" not in str(caught.value).replace("another", "")


def test_a_static_device_runs_wrong_psk_with_the_harness_side_holding_the_other_psk(tmp_path):
    ep = static(tmp_path)
    asked = Scenario(responder_psk="a-different-secret")
    fitted = ep.fit(asked)
    assert fitted.psk_of("responder") == Scenario().psk  # the device keeps what it was configured with
    assert fitted.psk_of("initiator") == "a-different-secret"  # the harness's side disagrees with it
    load(ep, asked)  # matches the static settings: no skip
    assert "the harness's side takes the other PSK" in ep.node.logs()  # the cell's evidence says so
    (tmp_path / "c").mkdir()
    command = endpoint(tmp_path / "c", 'control = "command"\ncommand = "true"')
    assert command.fit(asked) is asked  # a device configured per case takes the case's PSK as asked


def test_reference_settings_are_the_default_scenario_between_the_inventorys_addresses():
    settings = reference_settings("responder", "198.18.250.10", "198.18.250.1", 24)
    assert settings == device_settings(Scenario(), side_of("responder", Scenario(), ADDRESSES))


def test_the_devices_child_sas_are_its_counterparts_mirrored(tmp_path):
    ep = endpoint(tmp_path, 'control = "command"\ncommand = "true"')
    assert ep.child_sas() == []

    class Counterpart:
        def child_sas(self):
            return [ChildSa("net", spi_in=0x1111, spi_out=0x2222, udp_encapsulated=True)]
    ep.counterpart = Counterpart()
    assert ep.child_sas() == [ChildSa("net", spi_in=0x2222, spi_out=0x1111, udp_encapsulated=True)]


def test_the_device_cannot_be_told_to_initiate(tmp_path):
    ep = endpoint(tmp_path, 'control = "command"\ncommand = "true"')
    with pytest.raises(pytest.skip.Exception, match="cannot tell it when to initiate"):
        ep.initiate(10)


def test_a_vendor_that_would_run_as_a_microvm_skips_against_a_device_saying_why(tmp_path):
    """A microVM cannot hold the device's link: run in a container on a kernel without ESP, the vendor's failure
    would be the host's, not an interop failure."""
    from harness.pairlab import VendorPair
    from harness.plugin import _placement
    from test_placement import NEEDS_ESP, cell, request
    from test_vendor_registry import vendor_toml
    (tmp_path / "v").mkdir()
    found, _ = cell(tmp_path / "v", vendor_toml("a", extra=NEEDS_ESP), vendor_toml("b"))
    box = devices.DeviceVendor(device(tmp_path, 'control = "command"\ncommand = "true"'))
    with pytest.raises(pytest.skip.Exception, match=r"a would run as a qemu microVM \(a needs kernel-esp for psk, "
                                                    r"which this host lacks\), and a microVM cannot hold"):
        _placement(request(), VendorPair("ipsec", "psk_tunnel", found["a"], box, ("initiator", "responder")), "auto")
    # a vendor the host can run stays in its container on the device's link
    assert _placement(request(), VendorPair("ipsec", "psk_tunnel", found["b"], box, ("initiator", "responder")),
                      "auto") == set()
