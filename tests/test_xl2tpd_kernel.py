"""xl2tpd@kernel: xl2tpd with the kernel's L2TP and PPP and Debian's real pppd, in a qemu microVM where this host
lacks them (--kernel auto). The unit tests check what the adapter renders for a kernel with PPP; the docker tests
run real cells and read their evidence: the verdict, the VM record, and the node log saying the kernel carried the
session and the real pppd (not the harness's user-space endpoint) ran it."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from support import ROOT, vm_ready

from harness import vm
from harness.protocols.l2tp.scenario import Scenario, Side
from harness.vendor import load_vendor

XL2TPD = load_vendor(ROOT / "vendors" / "xl2tpd")
RUN_TIMEOUT_S = 900  # a first run also builds the xl2tpd image, the VM kit and xl2tpd's VM root


class Host:
    def __init__(self, ppp: bool):
        self.ppp = ppp

    def has(self, name: str) -> bool:
        return name == "ppp" and self.ppp


def side(role: str) -> Side:
    lac, lns = "198.18.0.2", "198.18.0.3"
    mine, theirs = (lac, lns) if role == "lac" else (lns, lac)
    inner = ("198.19.200.2", "198.19.200.1") if role == "lac" else ("198.19.200.1", "198.19.200.2")
    return Side(role=role, address=mine, peer_address=theirs, hostname=f"{role}.lab", secret="s",
                local_inner=inner[0], remote_inner=inner[1])


def render(role: str, ppp: bool) -> dict:
    adapter = XL2TPD.adapter_class()(None, Host(ppp))
    return adapter.render(Scenario(), side(role))


@pytest.mark.parametrize("role", ["lac", "lns"])
def test_with_the_kernels_ppp_the_real_pppd_runs_and_logs_where_the_node_log_is(role):
    files = render(role, ppp=True)
    assert "/usr/sbin/pppd" not in files, "the user-space endpoint would replace Debian's pppd"
    options = files["/etc/ppp/options.xl2tpd"].splitlines()
    # Without it pppd logs only to syslog (none in a node) and to fd 1, closed under xl2tpd with kernel L2TP.
    assert "logfd 2" in options
    assert "ifname ppp0" in options
    # The LAC asks for its address rather than offering the underlay address its host name resolves to.
    assert ("noipdefault" in options) == (role == "lac")
    assert files["/etc/ppp/pap-secrets"] == files["/etc/ppp/chap-secrets"] == '"interop" * "interop-password" *\n'


def test_without_the_kernels_ppp_the_user_space_endpoint_stands_in_for_pppd():
    files = render("lac", ppp=False)
    assert "/usr/sbin/pppd" in files and "/etc/l2tp-ppp.json" in files
    assert "logfd" not in files["/etc/ppp/options.xl2tpd"]


# --- real cells: a Docker engine, and qemu (software emulation) in the VM kit ------------------------------------

CELLS = {  # xl2tpd@kernel as the LAC against another LNS, as the LNS of another LAC, and against itself
    "data_plane[xl2tpd@kernel->l2tpns]": ("xl2tpd@kernel", "l2tpns"),
    "data_plane[scapy-l2tp->xl2tpd@kernel]": ("scapy-l2tp", "xl2tpd@kernel"),
    "tunnel_auth[xl2tpd@kernel->xl2tpd@kernel]": ("xl2tpd@kernel", "xl2tpd@kernel"),
}


@pytest.fixture(scope="module")
def cells(tmp_path_factory):
    vm_ready("xl2tpd")
    reports = tmp_path_factory.mktemp("xl2tpd-kernel")
    ids = [f"suites/l2tp/test_l2tp.py::test_{cell}" for cell in CELLS]
    proc = subprocess.run([sys.executable, "-m", "pytest", *ids, "--rootdir", str(ROOT), "-p", "no:randomly",
                           "--vendors", "xl2tpd@kernel,l2tpns,scapy-l2tp", "--kernel", "auto", "-n", "0",
                           "--reports-dir", str(reports), "-q"],
                          cwd=ROOT, capture_output=True, text=True, timeout=RUN_TIMEOUT_S,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    matrix = json.loads((reports / "matrix.json").read_text()) if (reports / "matrix.json").exists() else []
    found = {f"{r['case']}[{r['a']}->{r['b']}]": r for r in matrix}
    assert set(found) == set(CELLS), f"cells run: {sorted(found)}\n{proc.stdout[-3000:]}{proc.stderr[-2000:]}"
    return reports, found, proc.stdout


@pytest.mark.docker
@pytest.mark.parametrize("cell", CELLS)
def test_the_cell_passes_with_xl2tpd_in_a_vm(cells, cell):
    reports, found, output = cells
    record = found[cell]
    assert record["verdict"] == "passed", f"{record['verdict']}: {record['reason']}\n{output[-3000:]}"
    # --kernel auto: a VM exactly where this host (whose kernel the containers share) has no PPP.
    assert ("xl2tpd@kernel" in (record.get("vm") or {})) == (not _host_has_ppp()), record.get("vm")


@pytest.mark.docker
@pytest.mark.parametrize("cell", CELLS)
def test_the_kernel_carried_the_session_and_the_real_pppd_ran_it(cells, cell):
    reports, found, _ = cells
    case, pair = cell.rstrip("]").split("[")
    folder = reports / "pairs" / "l2tp" / case / "__".join(pair.split("->"))
    logs = {p.name: p.read_text(errors="replace") for p in folder.glob("l*-xl2tpd@kernel.log")}
    assert logs, f"no xl2tpd@kernel node log in {folder}: {sorted(p.name for p in folder.iterdir())}"
    in_vm = "xl2tpd@kernel" in (found[cell].get("vm") or {})
    for name, text in logs.items():
        if in_vm:  # the VM's kernel has l2tp_ppp (harness/vm_image/modules.txt); a host with PPP alone may not
            assert "Using l2tp kernel support." in text, f"{name}: xl2tpd ran the tunnel in user space"
            assert '"pppol2tp.so"' in text, f"{name}: xl2tpd did not hand pppd a PPPoL2TP socket"
        # pppd's own lines (logfd 2); the user-space endpoint says "ppp0 up: <local> peer <remote>" instead.
        assert "Using interface ppp0" in text and "local  IP address 198.19.200." in text, \
            f"{name}: no sign of Debian's pppd bringing up ppp0:\n{text[-2000:]}"
        if name.startswith("lac-"):
            assert "sent [IPCP ConfReq id=0x1 <addr 0.0.0.0>]" in text, f"{name}: the LAC did not ask for its address"
        assert "has world and/or group access" not in text, f"{name}: run-xl2tpd left the PPP secrets readable"


def _host_has_ppp() -> bool:
    # The l2tp package's probe of "ppp", read here: a container sees this kernel's /proc/devices.
    with open("/proc/devices") as devices:
        return any(line.split()[1:] == ["ppp"] for line in devices if line.strip())


# --- harness.vm: found by these cells ------------------------------------------------------------------------------

class BootingQemu:
    """The qemu container of a VM node that is still booting: its broker has not bound the exec socket until the
    console says the VM is ready (as on a loaded host, where put_files came first in 7 of 30 xl2tpd@kernel cells)."""
    id = "qemu"
    status = "running"

    def __init__(self):
        self.polls = 0
        self.requests = []

    def reload(self):
        self.polls += 1

    def logs(self, **_):
        return f"booting\n{vm.READY}\n".encode() if self.polls >= 3 else b"booting\n"

    def exec_run(self, argv, demux=False):
        if self.polls < 3:
            return vm.BROKER_FAILED, b"oi-vm: no answer from the VM's broker: [Errno 2] No such file or directory"
        self.requests.append(argv)
        return 0, b"6.1.0-test\n"


def test_files_put_while_the_vm_boots_wait_for_its_broker():
    vendor = type("Image", (), {"id": "sha256:v", "tags": ["overlay-interop/xl2tpd:x"], "attrs": {}})()
    node = vm.VmNode(BootingQemu(), "lac", "198.18.0.2", None, vendor, boot_timeout=5)
    node.put_files({"/etc/xl2tpd/xl2tpd.conf": "[global]\n"})
    assert len(node.qemu.requests) == 2  # uname -r once booted, then the tar
