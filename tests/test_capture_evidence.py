"""A capture that cannot back a verdict makes the cell broken, never clean (issue 12, item 2): the core check
(harness.packets.damage, Capture.stop on tcpdump's closing summary) on pcaps written here, and what it means for
cases that check that something is ABSENT from the wire (vxlan mtu) and that use the wire at all (port_default,
the IPsec and L2TP wire accessors). tcpdump runs in a fake sidecar: these tests need no Docker."""
from __future__ import annotations

import io
import os
import struct
import tarfile
import tempfile

import docker.errors
import pytest
from scapy.layers.inet import ICMP, IP, UDP
from scapy.layers.l2 import Ether
from scapy.packet import Raw
from scapy.utils import wrpcap

import suites.vxlan.test_vxlan as vxlan_cases
from harness.capture import Capture
from harness.errors import CaptureError, HarnessError
from harness.packets import Frames, damage
from harness.ping import Ping
from harness.protocols.ipsec.fixtures import CapturedWire
from harness.protocols.l2tp.fixtures import L2tpPair
from harness.protocols.vxlan.fixtures import VxlanPair
from harness.protocols.vxlan.frames import vxlan
from harness.protocols.vxlan.scenario import DEFAULT_SEGMENT, LINUX_LEGACY_PORT, VXLAN_PORT, Side

V1, V2 = "198.18.0.2", "198.18.0.3"
CLEAN = ("tcpdump: listening on eth0, link-type EN10MB (Ethernet), snapshot length 262144 bytes\n"
         "12 packets captured\n12 packets received by filter\n0 packets dropped by kernel\n")
FITS = 1500 - 50 - 28  # test_mtu's largest ICMP payload that fits the underlay


def _pcap(frames) -> bytes:
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "frames.pcap")
        wrpcap(path, frames)
        with open(path, "rb") as f:
            return f.read()


def _udp(n: int = 3) -> list:
    return [Ether() / IP(src=V1, dst=V2) / UDP(sport=5000 + i, dport=9) / Raw(bytes(40)) for i in range(n)]


HEADER_ONLY = _pcap([])
WHOLE = _pcap(_udp())


# --- the file: harness.packets.damage and Frames ---------------------------------------------------------------

def test_a_whole_capture_has_no_damage_and_silence_is_whole(tmp_path):
    (tmp_path / "whole.pcap").write_bytes(WHOLE)
    (tmp_path / "silent.pcap").write_bytes(HEADER_ONLY)
    assert damage(tmp_path / "whole.pcap") is None
    assert damage(tmp_path / "silent.pcap") is None  # only the case knows whether it expects silence


@pytest.mark.parametrize("data, expected", [
    (b"", "empty: no pcap header (tcpdump never wrote to it)"),
    (WHOLE[:10], "no whole pcap header (10 of 24 bytes)"),
    (b"this is a text file, not a capture", "not a capture: no pcap header (it begins 0x74686973)"),
    (WHOLE[:-10], "damaged: record 3 cut short (72 of 82 bytes)"),
    (WHOLE[:24 + 98 + 5], "damaged: record 2 header cut short (5 of 16 bytes)"),
    (HEADER_ONLY + struct.pack("<IIII", 0, 0, 1 << 30, 1 << 30) + bytes(64),
     f"damaged: record 1 claims {1 << 30} bytes, more than any capture holds"),
], ids=["empty", "short header", "not a pcap", "record cut", "record header cut", "unframeable record"])
def test_damage_says_what_is_wrong(tmp_path, data, expected):
    path = tmp_path / "capture.pcap"
    path.write_bytes(data)
    assert damage(path) == expected


def test_a_missing_capture_is_damage(tmp_path):
    assert damage(tmp_path / "never-written.pcap") == "no capture file"


def test_frames_stop_at_a_cut_record_and_say_so(tmp_path):
    """scapy alone hands over a cut record as a short one: the capture would look whole."""
    path = tmp_path / "cut.pcap"
    path.write_bytes(WHOLE[:-10])
    frames = Frames(path)
    assert [number for number, _ in frames] == [1, 2]
    assert frames.damaged and frames.problem == "record 3 cut short (72 of 82 bytes)"


def test_frames_of_no_capture_at_all_is_an_error():
    with pytest.raises(CaptureError, match="never started"):
        Frames(None)


# --- tcpdump: Capture.stop --------------------------------------------------------------------------------------

class FakeSidecar:
    """tcpdump's container as Capture sees it: its log, its exit status, and the file it leaves (None: none)."""

    def __init__(self, pcap: bytes | None, log: str = CLEAN, status: int = 0):
        self.pcap, self.log, self.status, self.signals = pcap, log, status, []

    def start(self):
        pass

    def logs(self) -> bytes:
        return self.log.encode()

    def kill(self, signal):
        self.signals.append(signal)

    def wait(self, timeout):
        return {"StatusCode": self.status, "Error": None}

    def get_archive(self, path):
        if self.pcap is None:
            raise docker.errors.NotFound(f"Could not find the file {path} in container")
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w") as tar:
            info = tarfile.TarInfo(path.lstrip("/"))
            info.size = len(self.pcap)
            tar.addfile(info, io.BytesIO(self.pcap))
        return iter([buffer.getvalue()]), {}


class FakeLab:
    def __init__(self, sidecar):
        self._sidecar = sidecar

    def sidecar(self, name, image, of, command, cap_add):
        return self._sidecar


class FakeNode:
    name = "vtep1"


def started(pcap: bytes | None, log: str = CLEAN, status: int = 0) -> Capture:
    return Capture(FakeLab(FakeSidecar(pcap, log, status)), FakeNode(), "tools").start()


def test_a_clean_capture_stops_into_its_file(tmp_path):
    capture = started(WHOLE)
    assert capture.stop(tmp_path / "capture.pcap") == tmp_path / "capture.pcap"
    assert (tmp_path / "capture.pcap").read_bytes() == WHOLE and capture.problem is None


@pytest.mark.parametrize("log, expected", [
    (CLEAN.replace("0 packets dropped by kernel", "3 packets dropped by kernel"),
     "tcpdump lost packets: 3 packets dropped by kernel"),
    (CLEAN + "2 packets dropped by interface\n", "tcpdump lost packets: 2 packets dropped by interface"),
    (CLEAN.replace("0 packets dropped by kernel", "1 packet dropped by kernel") + "4 packets dropped by interface\n",
     "tcpdump lost packets: 1 packets dropped by kernel, 4 packets dropped by interface"),
    ("tcpdump: listening on eth0\n",
     "tcpdump gave no closing summary, so what it dropped is unknown (tcpdump: listening on eth0)"),
], ids=["kernel", "interface", "both", "no summary"])
def test_packets_tcpdump_dropped_make_the_capture_unfit(tmp_path, log, expected):
    capture = started(WHOLE, log)
    with pytest.raises(CaptureError) as raised:
        capture.stop(tmp_path / "capture.pcap")
    assert str(raised.value) == f"{tmp_path / 'capture.pcap'} (tcpdump on vtep1 eth0): {expected}"
    assert (tmp_path / "capture.pcap").read_bytes() == WHOLE  # kept as evidence all the same


@pytest.mark.parametrize("pcap, status, expected", [
    (b"", 0, "empty: no pcap header"),
    (WHOLE[:-10], 0, "damaged: record 3 cut short"),
    (None, 0, "tcpdump wrote no capture file (0 packets dropped by kernel)"),
    (WHOLE, 1, "tcpdump exited with status 1"),
], ids=["empty", "truncated", "missing", "exit status"])
def test_a_capture_tcpdump_did_not_keep_whole_is_unfit(tmp_path, pcap, status, expected):
    capture = started(pcap, status=status)
    with pytest.raises(CaptureError) as raised:
        capture.stop(tmp_path / "capture.pcap")
    assert str(raised.value).startswith(f"{tmp_path / 'capture.pcap'} (tcpdump on vtep1 eth0): {expected}")


def test_every_later_stop_raises_again(tmp_path):
    """The teardown stops the capture too: a second reader must not get the damaged file as a quiet wire."""
    capture = started(b"")
    for _ in range(2):
        with pytest.raises(CaptureError):
            capture.stop(tmp_path / "capture.pcap")
    assert capture._sidecar.signals == ["SIGINT"]


def test_a_capture_that_never_started_stops_to_nothing(tmp_path):
    capture = Capture(FakeLab(FakeSidecar(WHOLE)), FakeNode(), "tools")
    assert capture.stop(tmp_path / "capture.pcap") is None  # the case broke before any traffic: no verdict read it


def test_a_peek_is_not_judged(tmp_path):
    """tcpdump still writes: the last record may be cut short; the reader takes it as the end."""
    capture = started(WHOLE[:-10])
    peeked = capture.peek(tmp_path / "so-far.pcap")
    assert [n for n, _ in Frames(peeked)] == [1, 2]


def test_confirm_names_the_missing_control(tmp_path):
    capture = started(WHOLE)
    capture.stop(tmp_path / "capture.pcap")
    capture.confirm([1, 2], "answered echo requests", 2)
    with pytest.raises(CaptureError, match=r"1 of 2 answered echo requests on the wire, though they crossed it"):
        capture.confirm([1], "answered echo requests", 2)


# --- every protocol's wire goes through Capture.stop ------------------------------------------------------------

def test_the_ipsec_wire_of_an_unfit_capture_is_an_error(tmp_path):
    pair = CapturedWire()
    pair.capture, pair._pcap = started(b""), tmp_path / "capture.pcap"
    with pytest.raises(CaptureError, match="empty: no pcap header"):
        pair.wire()


def test_the_l2tp_wire_of_an_unfit_capture_is_an_error(tmp_path):
    pair = L2tpPair.__new__(L2tpPair)
    pair.capture, pair._pcap, pair.scenario = started(WHOLE, CLEAN.replace("0 packets dropped", "9 packets dropped")), \
        tmp_path / "capture.pcap", None
    with pytest.raises(CaptureError, match="9 packets dropped by kernel"):
        pair.wire()


# --- the cases: an absent check on an unfit capture is broken, and port_default checks the port -----------------

H1, H2 = DEFAULT_SEGMENT.address(1), DEFAULT_SEGMENT.address(2)
M1, M2 = DEFAULT_SEGMENT.mac(1), DEFAULT_SEGMENT.mac(2)


def _echoes(payload: int, ports=(VXLAN_PORT, VXLAN_PORT), count: int = 2, replies: bool = True,
            ways=vxlan_cases.BOTH_WAYS) -> list:
    """`count` echo requests (and their replies) from each inner host to the other, in VXLAN, as vtep1's capture
    shows them: vtep1 sends to ports[0], vtep2 to ports[1]."""
    vteps = {"vtep1": (V1, H1, M1, ports[0]), "vtep2": (V2, H2, M2, ports[1])}

    def carried(sender, receiver, icmp_type, seq):
        (outer_src, inner_src, mac_src, port), (outer_dst, inner_dst, mac_dst, _) = sender, receiver
        inner = Ether(src=mac_src, dst=mac_dst) / IP(src=inner_src, dst=inner_dst, flags="DF") \
            / ICMP(type=icmp_type, id=7, seq=seq) / Raw(bytes(payload))
        return Ether() / IP(src=outer_src, dst=outer_dst, flags="DF") / UDP(sport=40000, dport=port, chksum=0) \
            / Raw(vxlan(DEFAULT_SEGMENT.vni, bytes(inner)))

    frames = []
    for a, b in ways:
        for seq in range(1, count + 1):
            frames.append(carried(vteps[a], vteps[b], 8, seq))
            if replies:
                frames.append(carried(vteps[b], vteps[a], 0, seq))
    return frames


class LabOnFile(VxlanPair):
    """A VXLAN lab whose VTEPs are a capture already made: its pings answer as told, its wire() is the fixture's
    own (Capture.stop, then the reader) over the fake tcpdump."""

    def __init__(self, tmp_path, pcap: bytes | None, log: str = CLEAN, answered: bool = True, ports=(4789, 4789)):
        self.capture = started(pcap, log)
        self._pcap = tmp_path / "capture.pcap"
        self.addresses = {"vtep1": V1, "vtep2": V2}
        self.sides = {name: Side(name=name, index=index, address=self.addresses[name], prefix_len=24,
                                 peers=(), port=port, segments=(DEFAULT_SEGMENT,))
                      for index, (name, port) in enumerate(zip(("vtep1", "vtep2"), ports), start=1)}
        self.answered = answered

    def start(self, scenario):
        self.scenario = scenario
        return self

    def ping(self, src, dst, segment=None, count=3, **kwargs):
        return Ping(count, count if self.answered else 0, "")

    def address(self, name):
        return self.addresses[name]

    def vendor_name(self, name):
        return "linux"

    def explain(self):
        return ""


def test_mtu_passes_on_a_capture_that_saw_the_echoes_that_fit(tmp_path):
    vxlan_cases.test_mtu(LabOnFile(tmp_path, _pcap(_echoes(FITS))))


def test_mtu_fails_on_outer_fragments(tmp_path):
    fragments = Ether() / IP(src=V1, dst=V2, flags="MF", frag=0, id=9) / UDP(sport=40000, dport=VXLAN_PORT) \
        / Raw(bytes(1472))
    with pytest.raises(AssertionError, match="outer IP fragments of VXLAN packets"):
        vxlan_cases.test_mtu(LabOnFile(tmp_path, _pcap([*_echoes(FITS), fragments])))


@pytest.mark.parametrize("pcap, log", [
    (b"", CLEAN),
    (HEADER_ONLY, CLEAN),
    (_pcap(_echoes(FITS))[:-100], CLEAN),
    (_pcap(_echoes(FITS)), CLEAN.replace("0 packets dropped by kernel", "5 packets dropped by kernel")),
    (_pcap(_echoes(FITS)[:4]), CLEAN),
], ids=["empty file", "header only", "truncated", "tcpdump dropped", "one direction missing"])
def test_mtu_no_fragments_on_an_unfit_capture_is_broken_not_passed(tmp_path, pcap, log):
    """'No outer fragments on the wire' holds of any capture that saw nothing."""
    with pytest.raises(HarnessError):
        vxlan_cases.test_mtu(LabOnFile(tmp_path, pcap, log))


def test_port_default_passes_when_both_send_to_4789(tmp_path):
    vxlan_cases.test_port_default(LabOnFile(tmp_path, _pcap(_echoes(56))))


def test_port_default_fails_on_8472_even_when_the_pings_work(tmp_path):
    """linux -> linux: both on 8472, every ping answered; RFC 7348 5 names 4789."""
    legacy = (LINUX_LEGACY_PORT, LINUX_LEGACY_PORT)
    lab = LabOnFile(tmp_path, _pcap(_echoes(56, ports=legacy)), ports=legacy)
    with pytest.raises(AssertionError, match=r"^vtep1 \(linux\) sent to 8472, not 4789 \(RFC 7348 5"):
        vxlan_cases.test_port_default(lab)


def test_port_default_names_the_side_on_8472(tmp_path):
    """ovs -> linux: vtep1 on 4789, vtep2 on 8472; no ping answered (neither listens where the other sends)."""
    ports = (VXLAN_PORT, LINUX_LEGACY_PORT)
    lab = LabOnFile(tmp_path, _pcap(_echoes(56, ports=ports, replies=False)), answered=False, ports=ports)
    with pytest.raises(AssertionError, match=r"^vtep2 \(linux\) sent to 8472, not 4789"):
        vxlan_cases.test_port_default(lab)


def test_port_default_on_a_capture_that_missed_answered_pings_is_broken(tmp_path):
    with pytest.raises(HarnessError):
        vxlan_cases.test_port_default(LabOnFile(tmp_path, HEADER_ONLY))


def test_port_default_fails_a_vtep_that_sends_nothing(tmp_path):
    frames = _echoes(56, replies=False, ways=[("vtep2", "vtep1")])
    with pytest.raises(AssertionError, match="vtep1 sent no VXLAN frames to vtep2"):
        vxlan_cases.test_port_default(LabOnFile(tmp_path, _pcap(frames), answered=False))
