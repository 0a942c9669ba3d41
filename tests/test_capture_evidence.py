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
from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import Ether
from scapy.packet import Raw
from scapy.utils import wrpcap

from harness.capture import Capture
from harness.errors import CaptureError
from harness.packets import Frames, damage
from harness.protocols.ipsec.fixtures import CapturedWire
from harness.protocols.l2tp.fixtures import L2tpPair

V1, V2 = "198.18.0.2", "198.18.0.3"
CLEAN = ("tcpdump: listening on eth0, link-type EN10MB (Ethernet), snapshot length 262144 bytes\n"
         "12 packets captured\n12 packets received by filter\n0 packets dropped by kernel\n")


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
    ("tcpdump: listening on eth0\n", "tcpdump gave no closing summary, so what it dropped is unknown (tcpdump: listening on eth0)"),
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
