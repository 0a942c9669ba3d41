"""Devices under test outside the harness (harness.devices): the inventory is validated field by field, a device
pairs like a vendor, and its node drives the device through its control mode. No Docker here."""
import dataclasses
import json
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from harness import devices
from harness.errors import ConfigError, HarnessError, LabTimeout
from harness.pairlab import cells
from harness.protocols.vxlan.device import Endpoint, device_settings
from harness.protocols.vxlan.scenario import Scenario, Side
from harness.vendor import load_registry

ROOT = Path(__file__).resolve().parent.parent
ROUTES = "Iface\tDestination\tGateway\tFlags\tRefCnt\tUse\tMetric\tMask\n" \
         "eth9\t00000000\t010200C0\t0003\t0\t0\t0\t00000000\n" \
         "eth9\t000200C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\n"

GOOD = """
[[device]]
name = "acme-gw"
description = "ACME Gateway 5000"
version = "7.2.1"
interface = "dut0"
address = "198.18.250.10/24"
peer_address = "198.18.250.1/24"
control = "command"
command = "./push-config"
{extra}
[device.protocols.vxlan]
roles = ["vtep2"]
features = ["vxlan"]
"""


def inventory(tmp_path, text: str = GOOD, extra: str = "", routes: str = ROUTES):
    path = tmp_path / "devices.toml"
    path.write_text(text.replace("{extra}", extra))
    table = tmp_path / "route"
    table.write_text(routes)
    return devices.load_inventory(path, routes=table)


def test_a_good_inventory_reads_as_devices(tmp_path):
    [device] = inventory(tmp_path)
    assert (device.name, device.interface, str(device.address), str(device.peer_address), device.control) == \
        ("acme-gw", "dut0", "198.18.250.10/24", "198.18.250.1/24", "command")
    assert device.protocols["vxlan"].roles == {"vtep2"} and device.timeout == 60


@pytest.mark.parametrize("old, new, field, problem", [
    ('control = "command"', 'control = "telnet"', "control", "one of manual, command, static"),
    ('command = "./push-config"', '', "command", "required"),
    ('address = "198.18.250.10/24"', 'address = "198.18.250.10"', "address", "prefix length"),
    ('address = "198.18.250.10/24"', 'address = "acme"', "address", "not an IPv4 address"),
    ('peer_address = "198.18.250.1/24"', 'peer_address = "198.18.251.1/24"', "peer_address", "not on the device's link"),
    ('peer_address = "198.18.250.1/24"', 'peer_address = "198.18.250.10/24"', "peer_address", "device's own address"),
    ('version = "7.2.1"', 'versoin = "7.2.1"', "versoin", "unknown key"),
    ('roles = ["vtep2"]', 'roles = ["responder"]', "protocols.vxlan.roles", "not among"),
    ('features = ["vxlan"]', 'features = ["vxlan"]\nkeylog = "x:y"', "protocols.vxlan.keylog", "unknown key"),
    ('name = "acme-gw"', 'name = "acme@gw"', "name", "letters, digits"),
    ('[device.protocols.vxlan]', '[device.protocols.vxlam]', "protocols.vxlam", "unknown protocol"),
])
def test_a_mistake_is_one_line_naming_file_device_and_field(tmp_path, old, new, field, problem):
    assert old in GOOD
    with pytest.raises(ConfigError) as caught:
        inventory(tmp_path, GOOD.replace(old, new))
    assert re.search(r"devices.toml: device acme[-@]gw$", caught.value.where), caught.value.where
    assert caught.value.field == field and problem in caught.value.problem, str(caught.value)
    assert "\n" not in str(caught.value)


def test_a_second_device_on_the_same_interface_is_refused(tmp_path):
    second = GOOD.replace('name = "acme-gw"', 'name = "other"')
    with pytest.raises(ConfigError, match=r"device other: interface: 'dut0' is also device acme-gw's"):
        inventory(tmp_path, GOOD + second)


def test_the_interface_of_the_default_route_is_refused_unless_forced(tmp_path):
    text = GOOD.replace('interface = "dut0"', 'interface = "eth9"')
    with pytest.raises(ConfigError, match=r"device acme-gw: interface: eth9 carries this host's default route"):
        inventory(tmp_path, text)
    [device] = inventory(tmp_path, text, extra="force = true")
    assert device.force


def test_the_default_route_is_read_from_the_kernel_table(tmp_path):
    table = tmp_path / "route"
    table.write_text(ROUTES)
    assert devices.default_route_interfaces(table) == {"eth9"}


def test_a_device_pairs_like_a_vendor_against_the_vendors_that_play_the_other_role(tmp_path):
    vendors = load_registry(ROOT / "vendors", ["linux", "ovs"])
    path = tmp_path / "devices.toml"
    path.write_text(GOOD.replace("{extra}", ""))
    entries = devices.registry_entries(path, vendors)
    ids = [p.id for p in cells("vxlan", "unicast", {**vendors, **entries})]
    assert {"linux->acme-gw", "ovs->acme-gw"} <= set(ids)
    assert not any(i.startswith("acme-gw->") for i in ids)  # it declares vtep2 only
    assert entries["acme-gw"].images() == {}


def test_a_device_named_like_a_vendor_is_refused(tmp_path):
    path = tmp_path / "devices.toml"
    path.write_text(GOOD.replace("{extra}", "").replace('"acme-gw"', '"linux"'))
    with pytest.raises(ConfigError, match="device linux: name: is a vendor's name too"):
        devices.registry_entries(path, load_registry(ROOT / "vendors", ["linux"]))


def test_the_plugin_refuses_a_bad_inventory_in_one_line(tmp_path):
    path = tmp_path / "devices.toml"
    path.write_text(GOOD.replace("{extra}", "").replace('control = "command"', 'control = "telnet"'))
    done = subprocess.run([sys.executable, "-m", "pytest", "suites/vxlan", "--collect-only", "-q",
                           "--devices", str(path), "-p", "no:randomly"], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 4
    assert f"{path}: device acme-gw: control: 'telnet'; one of manual, command, static" in done.stderr
    assert "Traceback" not in done.stderr + done.stdout


# --- the device node ---------------------------------------------------------------------------------------------

SCRIPT = """#!/usr/bin/env python3
import json, sys
request = json.load(sys.stdin)
with open("requests.jsonl", "a") as f:
    f.write(json.dumps(request) + "\\n")
if request["action"] == "exec":
    print("ran " + " ".join(request["argv"]))
    sys.exit(3)
sys.exit({status})
"""


def command_device(tmp_path, status: int = 0, extra: str = ""):
    script = tmp_path / "push-config"
    script.write_text(SCRIPT.format(status=status))
    script.chmod(0o755)
    [device] = inventory(tmp_path, extra=extra)
    return devices.DeviceNode(device, "vtep2", "vxlan", "unicast", tmp_path / "pair")


def side() -> Side:
    return Side(name="vtep2", index=2, address="198.18.250.10", prefix_len=24, peers=("198.18.250.1",), port=4789,
                segments=Scenario().segments)


def test_command_control_gets_the_cases_settings_as_json_on_stdin(tmp_path):
    node = command_device(tmp_path)
    Endpoint(node, None).setup(Scenario(), side(), 10)
    [request] = [json.loads(line) for line in (tmp_path / "requests.jsonl").read_text().splitlines()]
    assert request["action"] == "configure" and request["role"] == "vtep2" and request["case"] == "unicast"
    assert request["settings"] == device_settings(Scenario(), side())
    assert request["settings"]["remote_addresses"] == ["198.18.250.1"]
    assert request["settings"]["segments"] == [{"vni": 100, "inner_address": "198.19.100.2/24",
                                                "inner_mac": "02:4f:49:64:00:02"}]
    assert json.loads(node.settings_file.read_text())["settings"] == request["settings"]  # the record


def test_a_failing_command_breaks_the_cell_naming_the_device(tmp_path):
    node = command_device(tmp_path, status=7)
    with pytest.raises(HarnessError, match="device acme-gw: its command exited with 7"):
        node.configure({"x": 1})


def test_a_command_that_hangs_times_out_saying_what_it_waited_for(tmp_path):
    node = command_device(tmp_path, extra="timeout = 0.5")
    (tmp_path / "push-config").write_text("#!/bin/sh\nsleep 5\n")
    with pytest.raises(LabTimeout, match=r"acme-gw: timed out after 0.5s waiting for its command"):
        node.configure({"x": 1})


def test_exec_goes_to_the_command_with_its_exit_status(tmp_path):
    node = command_device(tmp_path)
    result = node.exec(["ping", "-c", "1", "198.18.250.1"], timeout=5)
    assert (result.exit_code, result.output.strip()) == (3, "ran ping -c 1 198.18.250.1")
    with pytest.raises(HarnessError, match="exited with 3"):
        node.exec(["true"], timeout=5, check=True)


def test_manual_control_writes_the_settings_and_waits_for_the_operators_file(tmp_path):
    text = GOOD.replace('control = "command"\ncommand = "./push-config"', 'control = "manual"\ntimeout = 0.6')
    [device] = inventory(tmp_path, text)
    node = devices.DeviceNode(device, "vtep2", "vxlan", "unicast", tmp_path / "pair")
    with pytest.raises(LabTimeout, match=r"timed out after 0.6s waiting for the operator .*device-acme-gw.ready"):
        node.configure({"vni": 100})
    assert json.loads(node.settings_file.read_text())["settings"] == {"vni": 100}
    with pytest.raises(pytest.skip.Exception, match="manual control\\) cannot run ping"):
        node.exec(["ping", "x"], timeout=1)

    import threading
    threading.Timer(0.2, lambda: (tmp_path / "pair" / "device-acme-gw.ready").touch()).start()
    node.configure({"vni": 100})
    assert "the operator confirmed" in node.logs()


def test_static_control_skips_a_case_needing_other_settings_naming_the_setting(tmp_path):
    settings = tmp_path / "acme.json"
    text = GOOD.replace('control = "command"\ncommand = "./push-config"', 'control = "static"\nsettings = "acme.json"')
    [device] = inventory(tmp_path, text)
    configured = device_settings(Scenario(), side())
    settings.write_text(json.dumps({"vxlan.vtep2": configured}))
    node = devices.DeviceNode(device, "vtep2", "vxlan", "unicast", tmp_path / "pair")
    node.configure(configured)  # the same: nothing to do
    other = device_settings(Scenario(port=8472), dataclasses.replace(side(), port=8472))
    with pytest.raises(pytest.skip.Exception, match=r"configured once \(static\); this case needs another "
                                                    r"udp_port \(8472, not 4789\)"):
        node.configure(other)


def test_first_difference_names_the_setting():
    assert devices.first_difference({"a": {"b": [1, 2]}}, {"a": {"b": [1, 3]}}) == "a.b[1] (3, not 2)"
    assert devices.first_difference({"a": 1}, {"a": 1}) is None


def test_a_capture_of_a_device_is_taken_on_the_harness_side_of_its_link(tmp_path):
    node = command_device(tmp_path)
    with pytest.raises(HarnessError, match="no harness node on acme-gw's link"):
        devices.captured_node(node)
    node.peer = peer = object()
    assert devices.captured_node(node) is peer


STATIC = GOOD.replace('control = "command"\ncommand = "./push-config"', 'control = "static"\nsettings = "acme.json"')


def test_devices_settings_writes_what_a_static_device_is_configured_with_once(tmp_path, capsys):
    from harness import cli
    from harness.protocols.vxlan.scenario import Segment
    path = tmp_path / "devices.toml"
    path.write_text(STATIC.replace("{extra}", ""))
    assert cli.main(["devices", "settings", str(path)]) == 0
    assert "acme-gw: " + str(tmp_path / "acme.json") in capsys.readouterr().out
    written = json.loads((tmp_path / "acme.json").read_text())
    assert list(written) == ["vxlan.vtep2"]
    [device] = devices.load_inventory(path)
    node = devices.DeviceNode(device, "vtep2", "vxlan", "unicast", tmp_path / "pair")
    Endpoint(node, None).setup(Scenario(), side(), 10)  # the default scenario: as configured
    two = Scenario(segments=(Scenario().segments[0], Segment(vni=200, k=101)))
    with pytest.raises(pytest.skip.Exception, match=r"needs another segments"):
        Endpoint(node, None).setup(two, dataclasses.replace(side(), segments=two.segments), 10)


def test_devices_settings_on_a_bad_inventory_is_one_line_and_exit_2(tmp_path, capsys):
    from harness import cli
    path = tmp_path / "devices.toml"
    path.write_text(STATIC.replace("{extra}", "").replace('settings = "acme.json"', ""))
    assert cli.main(["devices", "settings", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.strip() == f"overlay-interop: error: {path}: device acme-gw: settings: required, one non-empty line"


def test_run_forwards_devices_to_pytest_as_an_absolute_path(tmp_path, monkeypatch):
    from harness import cli
    monkeypatch.chdir(tmp_path)
    sub = cli._Parser(prog="x").add_subparsers(dest="command")
    run = cli.add_run_parser(sub)
    args = run.parse_args(["--devices", "inv.toml"])
    assert cli.pytest_arguments(args)[-2:] == ["--devices", str(tmp_path / "inv.toml")]


def test_one_cell_at_a_time_holds_a_device_link(tmp_path):
    first = devices.hold("dut0", folder=tmp_path)
    with pytest.raises(LabTimeout, match=r"timed out after 0.3s waiting for another cell to free the device "
                                         r"interface dut0"):
        devices.hold("dut0", timeout=0.3, folder=tmp_path)
    devices.hold("dut1", timeout=0.3, folder=tmp_path).close()  # another link is free
    first.close()
    devices.hold("dut0", timeout=0.3, folder=tmp_path).close()


def test_a_peers_own_command_waits_for_the_device_link(tmp_path):
    """A daemon binding the peer's address at start (xl2tpd) exited before the link was in, taking the namespace
    and the interface with it: the peer runs the image's entrypoint and command only once eth0 is up."""
    from types import SimpleNamespace
    images = {"lns": {"Config": {"Entrypoint": ["/init"], "Cmd": ["xl2tpd", "-D"]}}, "bare": {"Config": {}}}
    client = SimpleNamespace(images=SimpleNamespace(get=lambda image: SimpleNamespace(attrs=images[image])))
    entrypoint, command = devices.awaiting_link(client, "lns", None)
    assert entrypoint[:2] == ["/bin/sh", "-c"] and "/sys/class/net/eth0/flags" in entrypoint[2]
    assert command == ["/init", "xl2tpd", "-D"]
    assert devices.awaiting_link(client, "lns", ["sleep", "infinity"])[1] == ["/init", "sleep", "infinity"]
    with pytest.raises(HarnessError, match="neither an entrypoint nor a command"):
        devices.awaiting_link(client, "bare", None)
    # the wait itself, on a fake sysfs: it runs the command once the flags say up (IFF_UP), gives up otherwise
    assert "-le 1200 " in entrypoint[2]  # 60 s of 50 ms naps
    script = entrypoint[2].replace("/sys/class/net", str(tmp_path)).replace("-le 1200", "-le 4")
    (tmp_path / "eth0").mkdir()
    (tmp_path / "eth0" / "flags").write_text("0x1002\n")
    down = subprocess.run(["sh", "-c", script, "await-link", "echo", "ran"], capture_output=True, text=True)
    assert down.returncode == 1 and "no eth0" in down.stderr and "ran" not in down.stdout
    (tmp_path / "eth0" / "flags").write_text("0x1003\n")
    up = subprocess.run(["sh", "-c", script, "await-link", "echo", "ran"], capture_output=True, text=True)
    assert up.returncode == 0 and up.stdout == "ran\n"


# --- a routed device: via + gateway ------------------------------------------------------------------------------

ROUTED = GOOD.replace('interface = "dut0"\naddress = "198.18.250.10/24"',
                      'via = "dut0"\ngateway = "198.18.250.254"\naddress = "198.18.254.10/32"')


def test_a_routed_device_is_reached_through_via_and_its_gateway(tmp_path):
    [device] = inventory(tmp_path, ROUTED)
    assert (device.interface, str(device.gateway), str(device.address)) == ("dut0", "198.18.250.254",
                                                                            "198.18.254.10/32")
    assert devices.route_to(device) == ("198.18.254.10", "198.18.250.254")
    [on_link] = inventory(tmp_path)  # a device on the link has no route
    assert on_link.gateway is None and devices.route_to(on_link) is None


@pytest.mark.parametrize("old, new, field, problem", [
    ('via = "dut0"', 'via = "dut0"\ninterface = "dut1"', "via", "give interface (the device is on that link) or via"),
    ('gateway = "198.18.250.254"\n', "", "gateway", "required"),
    ('gateway = "198.18.250.254"', 'gateway = "router"', "gateway", "'router' is not an IPv4 address"),
    ('gateway = "198.18.250.254"', 'gateway = "198.18.9.1"', "gateway", "another address on the peer's link"),
    ('gateway = "198.18.250.254"', 'gateway = "198.18.250.1"', "gateway", "another address on the peer's link"),
    ('address = "198.18.254.10/32"', 'address = "198.18.250.10/24"', "address", "on the via link 198.18.250.0/24 "
                                                                                "itself: give interface, not via"),
    ('via = "dut0"', 'via = "a/b"', "via", "not an interface name"),
])
def test_a_routed_device_mistake_is_one_line(tmp_path, old, new, field, problem):
    with pytest.raises(ConfigError) as caught:
        inventory(tmp_path, ROUTED.replace(old, new))
    assert caught.value.field == field and problem in caught.value.problem, str(caught.value)


def test_a_gateway_without_via_is_refused(tmp_path):
    with pytest.raises(ConfigError, match=r"device acme-gw: gateway: only with via"):
        inventory(tmp_path, extra='gateway = "198.18.250.254"')


def test_the_peer_routes_to_a_routed_device_through_its_gateway_never_nat(tmp_path, monkeypatch):
    ran = []
    monkeypatch.setattr(devices, "on_host", lambda interface: True)
    monkeypatch.setattr(devices, "_run", lambda argv, what, timeout=10: ran.append(argv) or "")
    devices.take("dut0", 42, "198.18.250.1/24", ("198.18.254.10", "198.18.250.254"))
    script = ran[-1][-1]
    assert script.splitlines()[-1] == "ip route add 198.18.254.10/32 via 198.18.250.254 dev eth0"
    assert "nat" not in script.lower() and "default" not in script
    devices.take("dut0", 42, "198.18.250.1/24")
    assert "route" not in ran[-1][-1]


def test_a_peers_command_waits_for_a_routed_devices_route_too(tmp_path):
    [device] = inventory(tmp_path, ROUTED)
    script = devices.await_link(device).replace("/sys/class/net", str(tmp_path)).replace(
        "/proc/net/route", str(tmp_path / "route")).replace("-le 1200", "-le 4")
    (tmp_path / "eth0").mkdir()
    (tmp_path / "eth0" / "flags").write_text("0x1003\n")
    (tmp_path / "route").write_text(ROUTES)
    waited = subprocess.run(["sh", "-c", script, "await-link", "echo", "ran"], capture_output=True, text=True)
    assert waited.returncode == 1 and "ran" not in waited.stdout  # up, but no route yet
    (tmp_path / "route").write_text(ROUTES + "eth0\t0AFE12C6\tFEFA12C6\t0007\t0\t0\t0\tFFFFFFFF\n")
    waited = subprocess.run(["sh", "-c", script, "await-link", "echo", "ran"], capture_output=True, text=True)
    assert waited.returncode == 0 and waited.stdout == "ran\n"
