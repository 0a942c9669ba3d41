"""--kernel: which vendors of a cell run as qemu microVMs, and which cells skip, from the vendors' declared host
needs, the host's capabilities and the VM kernel's (harness.plugin._placement)."""
from types import SimpleNamespace

import pytest

from harness.host import HostCapabilities, declared
from harness.pairlab import VendorPair
from harness.plugin import _placement
from harness.vendor import HARNESS_PEER
from harness.vm import VmKernel

from test_vendor_registry import VARIANT, declare, vendor_toml

NEEDS_ESP = '[protocols.ipsec.host]\npsk = ["kernel-esp"]\n'
KNOWN = declared()
HOST = HostCapabilities({"kernel-esp": False, "tun": True}, {"kernel-esp": "Operation not supported"}, KNOWN)
VM = VmKernel(HostCapabilities({"kernel-esp": True, "tun": True}, {}, KNOWN), "6.1.0-50-amd64")
VM_WITHOUT = VmKernel(HostCapabilities({"kernel-esp": False, "tun": True}, {"kernel-esp": "no xfrm4"}, KNOWN), "6.1.0")


def cell(tmp_path, a_toml, b_toml=None):
    from harness.vendor import load_registry
    declare(tmp_path, "a", a_toml)
    if b_toml:
        declare(tmp_path, "b", b_toml)
    found = load_registry(tmp_path)
    return found, lambda a, b: VendorPair("ipsec", "psk_tunnel", found[a], found[b], ("initiator", "responder"))


def request(vm=VM, host=HOST, features=("psk",)):
    asked = []

    def getfixturevalue(name):
        asked.append(name)
        return {"host": host, "vm_kernel": vm}[name]
    marks = {"features": SimpleNamespace(args=features)}
    return SimpleNamespace(node=SimpleNamespace(get_closest_marker=marks.get), getfixturevalue=getfixturevalue,
                           asked=asked)


def test_auto_runs_in_a_vm_only_the_vendor_whose_needs_the_host_lacks(tmp_path):
    _, pair = cell(tmp_path, vendor_toml("a", extra=NEEDS_ESP), vendor_toml("b"))
    assert _placement(request(), pair("a", "b"), "auto") == {"a"}
    assert _placement(request(), pair("b", "b"), "auto") == set()
    assert _placement(request(host=HostCapabilities({"kernel-esp": True, "tun": True}, {}, KNOWN)), pair("a", "b"),
                      "auto") == set()  # a capable host: no VM


def test_a_cell_that_needs_nothing_asks_for_no_probe_and_no_vm(tmp_path):
    _, pair = cell(tmp_path, vendor_toml("a"), vendor_toml("b"))
    asking = request()
    assert _placement(asking, pair("a", "b"), "auto") == set() and asking.asked == []


def test_host_gives_the_skip_back_with_the_hosts_reason(tmp_path):
    _, pair = cell(tmp_path, vendor_toml("a", extra=NEEDS_ESP), vendor_toml("b"))
    with pytest.raises(pytest.skip.Exception, match=r"^a needs kernel-esp for psk: host lacks ESP in the kernel's "
                                                    r"XFRM \(Operation not supported\)$"):
        _placement(request(), pair("a", "b"), "host")


def test_vm_puts_every_vendor_in_a_vm_but_never_the_built_in_probe(tmp_path):
    found, pair = cell(tmp_path, vendor_toml("a"), vendor_toml("b"))
    assert _placement(request(), pair("a", "b"), "vm") == {"a", "b"}
    probed = VendorPair("ipsec", "truncated_request", HARNESS_PEER, found["b"], ("initiator", "responder"),
                        prober="initiator")
    assert _placement(request(), probed, "vm") == {"b"}


def test_a_need_the_vm_kernel_lacks_too_skips_saying_so(tmp_path):
    _, pair = cell(tmp_path, vendor_toml("a", extra=NEEDS_ESP), vendor_toml("b"))
    with pytest.raises(pytest.skip.Exception, match=r"^a needs kernel-esp for psk: the VM's kernel lacks ESP in "
                                                    r"the kernel's XFRM \(no xfrm4\)$"):
        _placement(request(vm=VM_WITHOUT), pair("a", "b"), "auto")


def test_a_variant_runs_in_a_vm_in_every_case_where_the_host_lacks_its_needs(tmp_path):
    _, pair = cell(tmp_path, vendor_toml("a", extra=VARIANT))
    assert _placement(request(features=()), pair("a@kernel", "a"), "auto") == {"a@kernel"}
    with pytest.raises(pytest.skip.Exception, match=r"^a@kernel needs kernel-esp for its kernel variant: host lacks"):
        _placement(request(features=()), pair("a", "a@kernel"), "host")
