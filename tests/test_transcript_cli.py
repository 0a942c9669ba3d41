"""`overlay-interop transcript`: run as a user runs it (a subprocess) over every capture in tests/data and the
damaged ones tests/data/malformed/make.py writes. The decoders underneath it are fuzzed in test_fuzz.py."""
from __future__ import annotations

import os
import struct
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from support import DATA, ROOT, load, without_spis
from harness import transcript_cli
from harness.protocols.ipsec import ike

MALFORMED = DATA / "malformed"
CAPTURES = sorted([*DATA.glob("*.pcap"), *MALFORMED.glob("*.pcap"), *MALFORMED.glob("*.pcapng")])
PSK = "strongswan_psk_tunnel"
make = load("malformed_make", MALFORMED / "make.py")


def run(*args: str | Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "harness.cli", "transcript", *map(str, args)], cwd=ROOT,
                          capture_output=True, text=True, timeout=60,
                          env={**os.environ, "PYTHONWARNINGS": "default"})


def test_every_malformed_capture_is_checked_in():
    made = {"truncated.pcap", "truncated_header.pcap", "garbage_after_header.pcap", "random_ipsec_payloads.pcap",
            "ike_huge_length.pcap", "payload_chain_loop.pcap", "fragments.pcap", "odd_frames.pcap",
            "linktype_user0.pcap", "linktype_raw_ip.pcap", "psk_tunnel.pcapng", "truncated.pcapng"}
    assert made <= {p.name for p in CAPTURES}


def test_make_reproduces_the_checked_in_files(tmp_path):
    subprocess.run([sys.executable, str(MALFORMED / "make.py"), str(tmp_path)], check=True, capture_output=True,
                   timeout=60)
    made = sorted(tmp_path.iterdir())
    assert len(made) == 13
    for path in made:
        assert path.read_bytes() == (MALFORMED / path.name).read_bytes(), path.name


@pytest.mark.parametrize("capture", CAPTURES, ids=[str(p.relative_to(DATA)) for p in CAPTURES])
def test_any_capture_is_transcribed_without_a_traceback(capture):
    result = run(capture)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert "Traceback" not in result.stdout
    assert "gave up" not in result.stdout  # a decoder raising is a bug, even though the command survives it
    assert result.stdout.startswith(f"{capture}: pcap")


@pytest.mark.parametrize("name, expected", [
    ("truncated.pcap", "malformed: record 9 cut short (135 of 270 bytes)"),
    ("truncated_header.pcap", "malformed: no whole pcap header (10 of 24 bytes)"),
    ("garbage_after_header.pcap", "malformed: record 1 claims"),
    ("truncated.pcapng", "malformed: block at byte 1128 claims 548 bytes with 372 left"),
    ("linktype_user0.pcap", "malformed: linktype 147: no decoder for this link layer"),
    # A damaged IKE message shows its header and why the rest is unreadable; the datagram with a UDP length past
    # its frame is not even that.
    ("ike_huge_length.pcap", "IKE_SA_INIT mid=0 request(I)\n    malformed: length 4294967295, 68 bytes on the wire"),
    ("ike_huge_length.pcap", "1 malformed packet(s) skipped"),
    ("payload_chain_loop.pcap", "INFORMATIONAL mid=2 request(I) Notify x200\n    malformed: "),
    ("random_ipsec_payloads.pcap", "    malformed: "),
])
def test_damage_is_marked(name, expected):
    result = run(MALFORMED / name)
    assert result.returncode == 0 and expected in without_spis(result.stdout), result.stdout


def test_truncated_capture_keeps_what_came_before_the_damage():
    lines = run(MALFORMED / "truncated.pcap").stdout.splitlines()
    assert any("IKE_SA_INIT mid=0 response(R)" in line for line in lines)
    assert any("IKE_AUTH mid=1 request(I)" in line for line in lines)


def test_pcapng_and_raw_ip_read_like_pcap():
    pcap, pcapng = run(DATA / f"{PSK}.pcap").stdout, run(MALFORMED / "psk_tunnel.pcapng").stdout
    assert pcap.splitlines()[1:] == pcapng.splitlines()[1:]
    raw_ip = run(MALFORMED / "linktype_raw_ip.pcap").stdout
    assert "linktype 101 (raw IP)" in raw_ip and "IKE_SA_INIT mid=0 response(R) SA KE Nonce" in without_spis(raw_ip)


def test_frames_of_no_known_protocol_are_counted():
    out = run(DATA / f"{PSK}.pcap").stdout
    assert "== ipsec: 10 frame(s)" in out and out.rstrip().endswith("not decoded: 9 frame(s): 7 ICMPv6, 2 ARP")
    later = run(MALFORMED / "fragments.pcap").stdout  # a later fragment goes with its first fragment's protocol
    assert "== ipsec: 3 frame(s)" in later and "not decoded: 1 frame(s): 1 IPv4 fragment" in later


def test_keys_from_both_logs_decrypt_ike_and_esp(tmp_path):
    svg = tmp_path / "ladder.svg"
    result = run(DATA / f"{PSK}.pcap", "--keys-from", DATA / f"{PSK}.initiator.log",
                 "--keys-from", DATA / f"{PSK}.responder.log", "--ladder", svg)
    assert result.returncode == 0 and result.stderr == ""
    out = result.stdout
    initiator_log = DATA / f"{PSK}.initiator.log"
    assert f"keys: {initiator_log}: 1 IKE SA key set(s), 2 ESP SA key set(s) (read by strongswan)" in out
    assert "    IDi FQDN initiator.lab" in out and out.count("ICMP echo-request 198.19.1.1 > 198.19.2.1") == 3
    assert "no keys" not in out
    assert f"ladder diagram: {svg}" in out
    root = ET.parse(svg).getroot()
    assert "IDi FQDN initiator.lab" in [t.text for t in root.iter("{http://www.w3.org/2000/svg}text")]


def test_a_log_without_keys_says_so():
    out = run(DATA / f"{PSK}.pcap", "--keys-from", MALFORMED / "not_a_pcap.txt").stdout
    assert "not_a_pcap.txt: 0 IKE SA key set(s), 0 ESP SA key set(s)" in out and "encrypted (no keys" in out


@pytest.mark.parametrize("args, message", [
    (["tests/data/malformed/not_a_pcap.txt"], "tests/data/malformed/not_a_pcap.txt: not a pcap or pcapng capture"),
    (["tests/data/no_such.pcap"], "tests/data/no_such.pcap: no such file"),
    (["tests/data"], "tests/data: is a folder, not a capture"),
    (["tests/data/malformed/make.py"], "tests/data/malformed/make.py: not a pcap or pcapng capture"),
    ([f"tests/data/{PSK}.pcap", "--keys-from", "nowhere.log"], "nowhere.log: no such file (--keys-from)"),
])
def test_what_is_not_a_capture_is_one_line_and_exit_1(args, message):
    result = run(*args)
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr == f"overlay-interop: error: {message}\n"


def test_an_empty_file_is_not_a_capture(tmp_path):
    empty = tmp_path / "empty.pcap"
    empty.write_bytes(b"")
    result = run(empty)
    assert result.returncode == 1 and result.stderr == f"overlay-interop: error: {empty}: an empty file\n"


def test_protocols_join_the_dispatch_by_shipping_a_dissector(tmp_path):
    """A protocol's frames are counted when the dispatch table names it and it ships a dissector; a datagram is
    counted once (UDP 4500 -> 8472: the lower port decides, IPsec)."""
    assert {"ipsec", "vxlan", "l2tp"} <= set(transcript_cli.dissectors())
    ipsec = transcript_cli.dissectors()["ipsec"]
    i, r = "198.18.9.2", "198.18.9.3"
    frames = [make.ether(make.ipv4(i, r, 17, make.udp(4789, 4789, bytes(8)))),
              make.ether(make.ipv4(i, r, 17, make.udp(500, 500, bytes(8)))), make.ether(make.ipv4(i, r, 50, bytes(8))),
              make.ether(bytes(28), ethertype=0x0806), make.ether(make.ipv4(i, r, 17, make.udp(1701, 1701, bytes(8)))),
              make.ether(make.ipv4(i, r, 17, make.udp(4500, 8472, bytes(8))))]
    (tmp_path / "mixed.pcap").write_bytes(make.pcap(frames))
    capture = transcript_cli.read_capture(tmp_path / "mixed.pcap")
    counts, others = transcript_cli._claimed({"ipsec": ipsec}, capture)   # vxlan and l2tp without a dissector
    assert counts == {"ipsec": 3}
    assert others == {"ARP": 1, "UDP port 1701": 1, "UDP port 4789": 1}


def test_auth_with_a_degenerate_signature_oid_does_not_raise():
    body = bytes([14, 0, 0, 0]) + bytes([4, 0x06, 0x02, 0x80, 0x80])   # digital signature, OID 06 02 80 80
    chain = struct.pack("!BBH", 0, 0, 4 + len(body)) + body
    payloads, problem = ike.decode_chain(39, chain)
    assert problem == "AUTH: RFC 7427 3: an object identifier in the AlgorithmIdentifier is cut short"
    assert payloads[0].describe() == "AUTH digital-signature"


@pytest.mark.parametrize("args, problem", [
    (["--keys", "{empty}"], "holds no key at all"),
    (["--ladder", "{empty}"], "is a folder"),
    (["--ladder", "{empty}/no/such/ladder.svg"], "its folder does not exist"),
])
def test_unusable_keys_or_ladder_are_refused_before_anything_is_printed(tmp_path, args, problem):
    empty = tmp_path / "keys"
    (empty / "sub").mkdir(parents=True)
    result = subprocess.run([sys.executable, "-m", "harness.cli", "transcript", str(DATA / f"{PSK}.pcap"),
                             *[a.format(empty=empty) for a in args]], cwd=ROOT, capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 2 and result.stdout == "" and problem in result.stderr, result.stderr


def test_an_esp_authentication_key_of_the_wrong_length_is_refused(tmp_path):
    path = tmp_path / "esp_sa"
    path.write_text('"IPv4","*","*","*","AES-CBC [RFC3602]","0x000102030405060708090a0b0c0d0e0f",'
                    '"HMAC-SHA-1-96 [RFC2404]","0x00"\n')
    result = subprocess.run([sys.executable, "-m", "harness.cli", "transcript", str(DATA / f"{PSK}.pcap"),
                             "--keys", str(path)], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "takes a 20-byte key, the Authentication Key is 1 bytes" in result.stderr, \
        result.stderr
