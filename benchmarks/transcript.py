"""How fast does `overlay-interop transcript` read a busy capture? Writes a 20,000-frame pcap of mixed traffic
(IKEv2 from a real strongSwan exchange, ESP-in-UDP and plain ESP, L2TP control and data messages, VXLAN with
echoes and ARP inside, some of it IP-fragmented, a little that nothing decodes), then prints:

- the seconds the command takes on it, as a user runs it (a fresh Python process, output to /dev/null);
- the seconds the capture reader alone takes (harness.packets: records, link layers, IP, reassembly) with
  the dispatch table deciding every datagram, in this process.

Each figure is printed against the project's target (the command under 3 s for 20,000 frames). Nothing is
asserted: machines differ. Usage:

    python benchmarks/transcript.py [--frames 20000] [--runs 3] [--keep FILE]
"""
from __future__ import annotations

import argparse
import os
import random
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from harness.packets import Datagrams  # noqa: E402
from harness.protocols.dispatch import DISPATCH  # noqa: E402

COMMAND_TARGET_S = 3.0
IKE_SEED = ROOT / "tests" / "data" / "strongswan_psk_tunnel.pcap"
T0 = 1_700_000_000
A, B, C, D = "198.18.0.2", "198.18.0.3", "198.18.0.4", "198.18.0.5"
MIX = {"esp_in_udp": 0.25, "esp": 0.05, "l2tp_data": 0.25, "l2tp_control": 0.01, "vxlan": 0.38,
       "fragmented": 0.01, "other": 0.05}   # of the frames; IKE: the seed's messages, repeated


def _checksum(header: bytes) -> int:
    total = sum(struct.unpack(f"!{len(header) // 2}H", header))
    while total > 0xFFFF:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def ipv4(src: str, dst: str, proto: int, payload: bytes, ident: int = 0, flags_offset: int = 0,
         total: int | None = None) -> bytes:
    header = struct.pack("!BBHHHBBH4s4s", 0x45, 0, total or 20 + len(payload), ident, flags_offset, 64, proto, 0,
                         bytes(map(int, src.split("."))), bytes(map(int, dst.split("."))))
    return header[:10] + struct.pack("!H", _checksum(header)) + header[12:] + payload


def udp(sport: int, dport: int, payload: bytes) -> bytes:
    return struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload


def ether(packet: bytes, ethertype: int = 0x0800) -> bytes:
    return bytes.fromhex("020000000003020000000002") + struct.pack("!H", ethertype) + packet


def echo(seq: int, size: int = 56) -> bytes:
    """An inner Ethernet frame with an ICMP echo request (what a VTEP carries)."""
    icmp = struct.pack("!BBHHH", 8, 0, 0, 7, seq) + bytes(size)
    return (bytes.fromhex("024f49640002024f49640001") + b"\x08\x00"
            + ipv4("198.19.100.1", "198.19.100.2", 1, icmp, ident=seq, flags_offset=0x4000))


def l2tp_control(ns: int, nr: int, message_type: int) -> bytes:
    avps = struct.pack("!HHHH", 0x8008, 0, 0, message_type) + struct.pack("!HHH", 0x8008, 0, 2) + b"\x01\x00"
    return struct.pack("!HHHHHH", 0xC802, 12 + len(avps), 1, 0, ns, nr) + avps


def l2tp_data(seq: int) -> bytes:
    ppp = b"\xff\x03\x00\x21" + ipv4("198.19.200.2", "198.19.200.1", 1,
                                     struct.pack("!BBHHH", 8, 0, 0, 9, seq) + bytes(48))
    return struct.pack("!HHH", 0x0002, 7, 3) + ppp


def ike_frames() -> list[bytes]:
    """The seed capture's IKE and ESP frames (link layer Ethernet), as strongSwan sent them."""
    data = IKE_SEED.read_bytes()
    frames, offset = [], 24
    while offset + 16 <= len(data):
        caplen = struct.unpack_from("<I", data, offset + 8)[0]
        frame = data[offset + 16:offset + 16 + caplen]
        if frame[12:14] == b"\x08\x00" and frame[23] in (17, 50):
            frames.append(frame)
        offset += 16 + caplen
    return frames


def build(count: int, seed: int = 7) -> list[bytes]:
    rng = random.Random(seed)
    frames = ike_frames()
    kinds = list(MIX)
    weights = [MIX[k] for k in kinds]
    seq = {"esp_in_udp": 0, "esp": 0, "l2tp": 0, "vxlan": 0, "frag": 0x100}
    while len(frames) < count:
        kind = rng.choices(kinds, weights)[0]
        if kind == "esp_in_udp":
            seq["esp_in_udp"] += 1
            body = struct.pack("!II", 0xC0000001, seq["esp_in_udp"]) + rng.randbytes(96)
            frames.append(ether(ipv4(A, B, 17, udp(4500, 4500, body))))
        elif kind == "esp":
            seq["esp"] += 1
            frames.append(ether(ipv4(B, A, 50, struct.pack("!II", 0xC0000002, seq["esp"]) + rng.randbytes(96))))
        elif kind == "l2tp_data":
            seq["l2tp"] += 1
            frames.append(ether(ipv4(C, D, 17, udp(1701, 1701, l2tp_data(seq["l2tp"])))))
        elif kind == "l2tp_control":
            frames.append(ether(ipv4(D, C, 17, udp(1701, 1701, l2tp_control(seq["l2tp"] & 0xFFFF, 1, 6)))))
        elif kind == "vxlan":
            seq["vxlan"] += 1
            header = struct.pack("!B3sI", 0x08, bytes(3), 100 << 8)
            frames.append(ether(ipv4(A, C, 17, udp(49152 + seq["vxlan"] % 1000, 4789,
                                                   header + echo(seq["vxlan"] & 0xFFFF)))))
        elif kind == "fragmented":
            seq["frag"] += 1
            datagram = udp(50000, 4789, struct.pack("!B3sI", 0x08, bytes(3), 100 << 8) + echo(1, 1400))
            first, rest = datagram[:1200], datagram[1200:]
            frames.append(ether(ipv4(A, C, 17, first, ident=seq["frag"], flags_offset=0x2000)))
            frames.append(ether(ipv4(A, C, 17, rest, ident=seq["frag"], flags_offset=1200 // 8)))
        else:
            frames.append(ether(ipv4(A, B, 6, struct.pack("!HHIIHHHH", 40000, 22, 1, 1, 0x5010, 512, 0, 0)
                                     + bytes(40))))
    return frames[:count]


def write(path: Path, frames: list[bytes]) -> None:
    with open(path, "wb") as f:
        f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, 1))
        for number, frame in enumerate(frames):
            micros = number * 100
            f.write(struct.pack("<IIII", T0 + micros // 1_000_000, micros % 1_000_000, len(frame), len(frame)))
            f.write(frame)


def time_command(path: Path) -> float:
    started = time.perf_counter()
    result = subprocess.run([sys.executable, "-m", "harness.cli", "transcript", str(path)], cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=600)
    elapsed = time.perf_counter() - started
    if result.returncode:
        sys.exit(f"the transcript command failed: {result.stderr.decode(errors='replace').strip()}")
    return elapsed


def time_reader(path: Path) -> tuple[float, int, int]:
    started = time.perf_counter()
    datagrams = Datagrams(path)
    claimed = sum(DISPATCH.claim(d) is not None for d in datagrams)
    return time.perf_counter() - started, datagrams.frames, claimed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=20_000)
    parser.add_argument("--runs", type=int, default=3, help="take the median of this many runs")
    parser.add_argument("--keep", type=Path, help="write the capture here (and keep it)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        path = args.keep or Path(folder) / "mixed.pcap"
        write(path, build(args.frames))
        print(f"{path}: {args.frames} frames, {os.path.getsize(path) / 1e6:.1f} MB")
        reader = [time_reader(path) for _ in range(args.runs)]
        seconds = statistics.median(r[0] for r in reader)
        _, frames, claimed = reader[0]
        print(f"reader alone:             {seconds:.2f} s ({seconds / frames * 1e6:.0f} us a frame; {claimed} "
              f"datagrams claimed by a protocol)")
        command = statistics.median(time_command(path) for _ in range(args.runs))
        verdict = "within" if command < COMMAND_TARGET_S else "OVER"
        print(f"overlay-interop transcript: {command:.2f} s ({verdict} the {COMMAND_TARGET_S:g} s target; "
              f"median of {args.runs})")


if __name__ == "__main__":
    main()
