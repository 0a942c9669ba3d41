"""Every ESP packet in the transcript: SPI and sequence number per frame as tshark numbers them, gaps, replays and
SPI changes called out, and the inner packet opened with or without an integrity key, an ICV that does not verify
shown anyway and marked. The captures are built here with scapy's ESP (RFC 4303) and read back by tshark with
the esp_sa file keyfiles.py writes: tshark and the transcript must open exactly the same frames."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import replace
from pathlib import Path

import pytest
from scapy.layers.inet import ICMP, IP, UDP
from scapy.layers.inet6 import ICMPv6EchoRequest, IPv6
from scapy.layers.ipsec import ESP, SecurityAssociation
from scapy.layers.l2 import Ether
from scapy.utils import wrpcap

from harness.protocols.ipsec import crypto
from harness.protocols.ipsec.keyfiles import write_key_files
from harness.protocols.ipsec.keys import EspSaKeys
from harness.protocols.ipsec.transcript import ESP_SA_NO_KEYS, esp_inner, read_capture, transcript

A, B = "198.51.100.1", "198.51.100.2"          # the gateways
A6, B6 = "2001:db8::1", "2001:db8::2"
INNER_A, INNER_B = "10.1.0.1", "10.2.0.1"      # the hosts behind them
CBC_KEY, SHA_KEY = bytes(range(16)), bytes(range(32, 64))
GCM_KEY = bytes(range(100, 120))               # AES-128 key and 4-byte salt (RFC 4106)


def sa(keys: EspSaKeys, src: str, dst: str, udp: bool = False) -> SecurityAssociation:
    """scapy's SA for the same keys (its algorithm names)."""
    crypt = {"ENCR_AES_CBC_128": "AES-CBC", "ENCR_AES_GCM_16_128": "AES-GCM", "ENCR_NULL": "NULL"}[keys.encryption]
    auth = {None: None, "AUTH_HMAC_SHA2_256_128": "SHA2-256-128", "AUTH_HMAC_SHA1_96": "HMAC-SHA1-96"}[keys.integrity]
    outer = IPv6(src=src, dst=dst) if ":" in dst else IP(src=src, dst=dst)
    return SecurityAssociation(ESP, spi=keys.spi, crypt_algo=crypt, crypt_key=keys.enc_key,
                               crypt_icv_size=16 if crypt == "AES-GCM" else None, auth_algo=auth,
                               auth_key=keys.auth_key or None, tunnel_header=outer,
                               nat_t_header=UDP(sport=4500, dport=4500) if udp else None)


def ping(seq: int, reply: bool = False, v6: bool = False):
    if v6:
        return IPv6(src="2001:db8:1::1", dst="2001:db8:2::1") / ICMPv6EchoRequest(id=9, seq=seq)
    src, dst = (INNER_B, INNER_A) if reply else (INNER_A, INNER_B)
    return IP(src=src, dst=dst) / ICMP(type=0 if reply else 8, id=7, seq=seq) / b"payload!"


# The SAs: A->B rekeyed from 0x1000 to 0x2000, B->A on 0x3000 in UDP (RFC 3948), an AES-GCM SA (no integrity
# transform), an SA whose integrity key only the sender has, and one over IPv6.
AB = EspSaKeys(0x1000, A, B, "ENCR_AES_CBC_128", "AUTH_HMAC_SHA2_256_128", CBC_KEY, SHA_KEY)
AB_REKEYED = replace(AB, spi=0x2000, enc_key=bytes(range(16, 32)))
BA_UDP = EspSaKeys(0x3000, B, A, "ENCR_AES_CBC_128", "AUTH_HMAC_SHA1_96", CBC_KEY[::-1], SHA_KEY[:20])
GCM = EspSaKeys(0x4000, A, B, "ENCR_AES_GCM_16_128", None, GCM_KEY, b"")
NO_AUTH_KEY = EspSaKeys(0x5000, B, A, "ENCR_AES_CBC_128", "AUTH_HMAC_SHA2_256_128", CBC_KEY, SHA_KEY)
V6 = EspSaKeys(0x6000, A6, B6, "ENCR_AES_CBC_128", "AUTH_HMAC_SHA2_256_128", CBC_KEY, SHA_KEY)

# (SA, sequence number, damage): frame n of the capture is entry n-1.
SENT = [
    (AB, 1, None), (BA_UDP, 1, None), (AB, 2, None), (AB, 3, None),
    (AB, 6, None),                      # 4 and 5 lost: a gap
    (AB, 4, None),                      # late: out of order
    (AB, 6, None),                      # seen before: a replay
    (BA_UDP, 2, "icv"),                 # a flipped ICV byte: opened, shown unverified
    (AB_REKEYED, 1, None),              # the SPI changes (a CHILD_SA rekey)
    (AB, 7, None),                      # the old SPI again
    (AB_REKEYED, 2, None),
    (GCM, 1, None), (GCM, 2, "tag"),    # AEAD: no integrity key at all; then a damaged tag
    (NO_AUTH_KEY, 1, None),             # the key file gives the encryption key only
    (AB, 8, "ciphertext"),              # a flipped byte in the last block: the trailer is garbage
    (V6, 1, None),
]


def build(path: Path) -> None:
    frames = []
    for keys, seq, damage in SENT:
        udp = keys is BA_UDP
        inner = ping(seq, reply=keys.src == B, v6=keys is V6)
        packet = sa(keys, keys.src, keys.dst, udp).encrypt(inner, seq_num=seq, iv=bytes(range(seq, seq + 16))[
            :16 if keys.encryption.startswith("ENCR_AES_CBC") else 8])
        raw = bytearray(bytes(packet))
        if damage in ("icv", "tag"):
            raw[-1] ^= 0x01
        elif damage == "ciphertext":
            raw[-16 - 1] ^= 0xFF               # the Next Header byte, under the cipher (before a 16-byte ICV)
        frames.append(Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02") / (IPv6 if keys is V6 else IP)(bytes(raw)))
    for number, frame in enumerate(frames):
        frame.time = 1_700_000_000 + number / 10
    wrpcap(str(path), frames)


# What the key file gives: NO_AUTH_KEY's SA without its integrity key.
KNOWN = [AB, AB_REKEYED, BA_UDP, GCM, replace(NO_AUTH_KEY, auth_key=b""), V6]


@pytest.fixture(scope="module")
def capture(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("esp") / "esp.pcap"
    build(path)
    return path


def listing(text: str) -> dict[int, list[str]]:
    """Frame number -> the indented lines under its ESP line."""
    frames: dict[int, list[str]] = {}
    current = None
    for line in text.splitlines():
        match = re.match(r"^#(\d+) \d+\.\d{6} .* ESP spi=0x[0-9a-f]{8} seq=\d+$", line)
        if match:
            current = frames.setdefault(int(match[1]), [])
        elif line.startswith("    ") and current is not None:
            current.append(line.strip())
        else:
            current = None
    return frames


def test_every_esp_packet_is_listed_with_its_frame_spi_and_sequence_number(capture):
    text = transcript(capture, esp_keys=KNOWN)
    # the line every transcript starts a message with (harness.textfmt): frame, time since the first frame, ends
    heads = re.findall(r"^#(\d+) (\d+\.\d{6}) (\S+) > (\S+) ESP spi=0x([0-9a-f]{8}) seq=(\d+)$", text, re.M)
    assert [(int(frame), int(spi, 16), int(seq)) for frame, _, _, _, spi, seq in heads] == [
        (n, keys.spi, seq) for n, (keys, seq, _) in enumerate(SENT, 1)]
    assert heads[0][1] == "0.000000" and heads[4][1] == "0.400000"            # time since the first frame
    assert heads[1][2:4] == (f"{B}:4500", f"{A}:4500") and heads[0][2:4] == (A, B)   # ESP in UDP: the ports


def test_gaps_replays_late_packets_and_spi_changes_are_called_out(capture):
    frames = listing(transcript(capture, esp_keys=KNOWN))
    assert "gap: seq 4..5 not seen" in frames[5]
    assert "out of order: seq 4 after seq 6" in frames[6]
    assert "replay: seq 6 seen before on this SA (#5)" in frames[7]
    assert f"SPI change {A} > {B}: spi=0x00002000 after spi=0x00001000" in frames[9]
    assert f"spi=0x00001000 again {A} > {B}, after spi=0x00002000 (#9)" in frames[10]
    assert f"spi=0x00002000 again {A} > {B}, after spi=0x00001000 (#10)" in frames[11]
    assert f"SPI change {A} > {B}: spi=0x00004000 after spi=0x00002000" in frames[12]
    called_out = [n for n, lines in frames.items() if any(re.match(r"(gap|replay|out of order|SPI change|spi=)", x)
                                                           for x in lines)]
    assert called_out == [5, 6, 7, 9, 10, 11, 12, 14, 15], frames   # 14: B > A changes SPI too
    summary = transcript(capture, esp_keys=KNOWN).splitlines()
    flow = summary.index(f"ESP spi=0x00001000 {A} -> {B} plain packets=8 seq=1..8")
    assert summary[flow + 1] == "    1 gap, 1 replay, 1 out of order"


def test_inner_packets_are_shown_with_or_without_an_integrity_key_and_past_a_bad_icv(capture):
    frames = listing(transcript(capture, esp_keys=KNOWN))
    assert frames[1] == [f"ICMP echo-request {INNER_A} > {INNER_B} id=7 seq=1"]
    assert frames[2] == [f"ICMP echo-reply {INNER_B} > {INNER_A} id=7 seq=1"]            # HMAC-SHA1-96, in UDP
    assert frames[8] == [f"ICMP echo-reply {INNER_B} > {INNER_A} id=7 seq=2", crypto.SHOWN_UNVERIFIED]
    assert frames[12] == [f"SPI change {A} > {B}: spi=0x00004000 after spi=0x00002000",
                          f"ICMP echo-request {INNER_A} > {INNER_B} id=7 seq=1"]          # AEAD: no integrity key
    assert frames[13] == [f"ICMP echo-request {INNER_A} > {INNER_B} id=7 seq=2", crypto.SHOWN_UNVERIFIED]
    assert frames[14][1:] == [f"ICMP echo-reply {INNER_B} > {INNER_A} id=7 seq=1",
                              f"{crypto.NOT_CHECKED}: no integrity key"]
    assert frames[15][1:] == ["undecryptable: ICV mismatch"]   # nothing verifies it and what opens is no packet
    assert frames[16] == ["ICMPv6 echo-request 2001:db8:1::1 > 2001:db8:2::1 id=9 seq=1"]


def test_the_scapy_packet_of_an_opened_payload_is_there_for_the_suites(capture):
    inner = esp_inner(capture, KNOWN)
    assert inner[0].packet[ICMP].seq == 1 and inner[0].packet[IP].dst == INNER_B
    assert inner[13].packet[ICMP].type == 0 and inner[13].problem.startswith(crypto.NOT_CHECKED)
    assert inner[14].packet is None


def test_without_keys_every_packet_is_still_listed(capture):
    text = transcript(capture)
    assert len(listing(text)) == len(SENT) and "ICMP" not in text
    assert "replay: seq 6 seen before on this SA (#5)" in listing(text)[7]


# --- tshark agrees ----------------------------------------------------------------------------------------

needs_tshark = pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark not installed")


def tshark_fields(pcap: Path, config: Path, *fields: str) -> list[list[str]]:
    result = subprocess.run(["tshark", "-r", str(pcap), "-T", "fields", *(x for f in fields for x in ("-e", f))],
                            capture_output=True, text=True, timeout=60, env={**os.environ, "WIRESHARK_CONFIG_DIR": str(config)})
    assert result.returncode == 0 and "Error loading table" not in result.stderr, result.stderr
    return [line.split("\t") for line in result.stdout.splitlines()]


@needs_tshark
def test_tshark_reads_the_same_spi_and_sequence_number_in_every_frame(capture, tmp_path):
    (tmp_path / "empty").mkdir()
    rows = tshark_fields(capture, tmp_path / "empty", "frame.number", "esp.spi", "esp.sequence")
    ours = [(p.frame, p.spi, p.seq) for p in read_capture(capture)[1]]
    assert [(int(n), int(spi, 16), int(seq)) for n, spi, seq in rows] == ours


@needs_tshark
def test_tshark_opens_exactly_the_frames_the_transcript_opens_with_the_esp_sa_file_written_for_it(capture, tmp_path):
    write_key_files(tmp_path, [], KNOWN)
    rows = tshark_fields(capture, tmp_path / "keys", "frame.number", "icmp.type", "icmpv6.type", "esp.icv_good",
                         "esp.icv_bad")
    inner = esp_inner(capture, KNOWN)
    # tshark decrypts what a garbled trailer spoils too (frame 15) but finds no packet in it: no ICMP either way
    opened_by_tshark = [n for n, (_, icmp, icmp6, _, _) in enumerate(rows, 1) if icmp or icmp6]
    assert opened_by_tshark == [p.frame for p in inner if p.packet is not None]
    # Where both check an ICV with a key, they agree on it (tshark checks an empty key, and finds it bad)
    checked = {n: good == "1" for n, (_, _, _, good, bad) in enumerate(rows, 1) if good or bad}
    ours = {p.frame: p.problem is None for p in inner if p.problem != f"{crypto.NOT_CHECKED}: no integrity key"}
    assert {n: checked[n] for n in ours if n in checked} == {n: v for n, v in ours.items() if n in checked}
    assert checked[8] is False and checked[1] is True


def test_an_sa_without_keys_says_so_once(capture):
    text = transcript(capture, esp_keys=[k for k in KNOWN if k.spi != 0x1000])
    lines = text.splitlines()
    flow = lines.index(f"ESP spi=0x00001000 {A} -> {B} plain packets=8 seq=1..8")
    assert lines[flow + 1:flow + 3] == ["    1 gap, 1 replay, 1 out of order", f"    {ESP_SA_NO_KEYS}"]
    assert "encrypted (no keys" not in text and listing(text)[1] == [] and text.count(ESP_SA_NO_KEYS) == 1
