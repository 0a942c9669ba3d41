"""Harness code shipped into a lab node (harness.shipping): one function finds it by module name, lays it out so
it imports there on its own, and refuses a set that would not run; adapters never walk the file system to it."""
from __future__ import annotations

import ast
import subprocess
import sys

import pytest

from support import ROOT

from harness.errors import HarnessError
from harness.protocols.l2tp.scenario import Scenario, Side
from harness.shipping import harness_files
from harness.vendor import load_vendor

L2TP = ROOT / "harness" / "protocols" / "l2tp"


def test_modules_are_laid_out_as_packages_below_a_folder():
    files = harness_files("harness.protocols.l2tp.avp", "harness.protocols.l2tp.codec", "harness.protocols.l2tp.ppp",
                          under="/opt/peer")
    assert files == {"/opt/peer/harness/__init__.py": "", "/opt/peer/harness/protocols/__init__.py": "",
                     "/opt/peer/harness/protocols/l2tp/__init__.py": "",
                     "/opt/peer/harness/protocols/l2tp/avp.py": (L2TP / "avp.py").read_text(),
                     "/opt/peer/harness/protocols/l2tp/codec.py": (L2TP / "codec.py").read_text(),
                     "/opt/peer/harness/protocols/l2tp/ppp.py": (L2TP / "ppp.py").read_text()}
    named_package = harness_files("harness.protocols.l2tp", "harness.protocols.l2tp.ppp", under="/x")
    assert named_package["/x/harness/protocols/l2tp/__init__.py"] == (L2TP / "__init__.py").read_text()


def test_one_module_is_placed_as_a_program():
    assert harness_files("harness.protocols.l2tp.ppp", at="/usr/sbin/pppd") == {
        "/usr/sbin/pppd": (L2TP / "ppp.py").read_text()}


@pytest.mark.parametrize("modules, place, problem", [
    (("harness.protocols.l2tp.codec", "harness.protocols.l2tp.ppp"), {"under": "/x"},
     r"codec imports harness.protocols.l2tp.avp, which is not shipped with it: name it too"),
    (("harness.protocols.l2tp.codec",), {"at": "/x/codec"}, r"a program at /x/codec runs alone"),
    (("json",), {"under": "/x"}, "not a harness module"),
    (("harness.protocols.l2tp.nothing",), {"under": "/x"}, "no harness module"),
    (("harness.protocols.l2tp.avp",), {}, "either under=DIR or at=PATH"),
    (("harness.protocols.l2tp.avp", "harness.protocols.l2tp.ppp"), {"at": "/x/y"}, "places one module, not 2"),
])
def test_a_set_that_would_not_run_is_refused(modules, place, problem):
    with pytest.raises(HarnessError, match=problem):
        harness_files(*modules, **place)


def side(role: str) -> Side:
    return Side(role=role, address="198.18.0.2", peer_address="198.18.0.3", hostname=f"{role}.lab", secret="s",
                local_inner="198.19.200.2", remote_inner="198.19.200.1")


def test_what_scapy_l2tp_ships_imports_there_on_its_own(tmp_path):
    """Written out as the node gets them, the files import with the shipped folder first on the path: the codec is
    the shipped copy and needs nothing of the harness it was not given."""
    files = load_vendor(ROOT / "vendors" / "scapy-l2tp").adapter_class()(None, None).render(Scenario(), side("lac"))
    shipped = {path: text for path, text in files.items() if "/harness/" in path}
    assert shipped == harness_files("harness.protocols.l2tp.avp", "harness.protocols.l2tp.codec",
                                    "harness.protocols.l2tp.ppp", under="/opt/scapy-l2tp")
    for path, text in shipped.items():
        (tmp_path / path.lstrip("/")).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path.lstrip("/")).write_text(text)
    home = tmp_path / "opt" / "scapy-l2tp"
    code = (f"import sys; sys.path.insert(0, {str(home)!r}); "
            "from harness.protocols.l2tp import avp, codec, ppp; import harness; "
            "print(harness.__file__, codec.__file__, sorted(m for m in sys.modules if m.startswith('harness')))")
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith(f"{home}/harness/__init__.py {home}/harness/protocols/l2tp/codec.py"), out.stdout


def test_xl2tpd_ships_the_ppp_endpoint_as_pppd():
    lac = load_vendor(ROOT / "vendors" / "xl2tpd").adapter_class()
    endpoint = lac(None, None)
    endpoint.host = type("Host", (), {"has": staticmethod(lambda name: False)})()  # no /dev/ppp: the endpoint
    files = endpoint.render(Scenario(), side("lac"))
    assert files["/usr/sbin/pppd"] == (L2TP / "ppp.py").read_text()


def test_no_adapter_walks_the_file_system_to_harness_code():
    """An adapter gets harness code from harness.shipping; a path from its own file reaches only its own folder."""
    walking = []
    for path in sorted((ROOT / "vendors").glob("*/*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Attribute) and node.attr == "parents":
                walking.append(f"{path.relative_to(ROOT)}:{node.lineno}: .parents")
            if isinstance(node, ast.Constant) and node.value == "harness":
                walking.append(f"{path.relative_to(ROOT)}:{node.lineno}: a path through 'harness'")
    assert not walking, walking
