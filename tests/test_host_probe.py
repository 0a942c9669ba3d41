"""The host capability probe's parsing and the skip reasons it gives."""
import pytest

from harness.errors import ConfigError, HarnessError
from harness.host import CAPABILITIES, parse_probe

THIS_HOST = """kernel-esp no Error: Requested type not found.
kernel-l2tp no RTNETLINK answers: No such file or directory
ppp no /proc/devices has no ppp (ppp_generic not loaded)
openvswitch no RTNETLINK answers: No such file or directory
tun yes
vxlan yes
geneve no Error: Unknown device type.
"""


def test_probe_output_becomes_capabilities_with_details():
    caps = parse_probe(THIS_HOST)
    assert caps.has("tun") and caps.has("vxlan")
    assert not caps.has("kernel-esp")
    assert caps.missing("tun", "kernel-esp", "ppp") == ["kernel-esp", "ppp"]
    assert caps.reason("kernel-esp") == "host lacks ESP in the kernel's XFRM (Error: Requested type not found.)"


def test_requires_skips_with_every_missing_reason():
    caps = parse_probe(THIS_HOST)
    caps.requires("tun", "vxlan")  # present: no skip
    with pytest.raises(pytest.skip.Exception, match=r"host lacks ESP .*; host lacks PPP"):
        caps.requires("kernel-esp", "ppp")


def test_an_incomplete_probe_is_an_error_not_a_guess():
    with pytest.raises(HarnessError, match="no answer for"):
        parse_probe("tun yes\n")


def test_unknown_capability_names_are_rejected():
    with pytest.raises(ConfigError, match="unknown host capability"):
        parse_probe(THIS_HOST).has("kernel-esb")
    assert len(CAPABILITIES) == 7
