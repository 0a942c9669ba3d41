"""L2TP under IPsec (RFC 3193) read from the wire: ESP keys from the kernel's SA database as `ip xfrm state` prints
it (the real output of a run's node, tests/data/xfrm-state-transport.txt), and a capture of transport-mode ESP
carrying L2TP, built with scapy's own ESP (another implementation of RFC 4303 than the harness's), written again with
the ESP opened: the L2TP reader then reads the conversation, and on the capture as it went finds no L2TP at all."""
from __future__ import annotations

from pathlib import Path

from scapy.layers.inet import IP, UDP
from scapy.layers.ipsec import ESP, SecurityAssociation
from scapy.layers.l2 import ARP, Ether
from scapy.utils import rdpcap, wrpcap

from harness.protocols.ipsec.keys import EspSaKeys
from harness.protocols.ipsec.transcript import write_decrypted
from harness.protocols.ipsec.xfrm import parse_xfrm_state
from harness.protocols.l2tp import avp as A
from harness.protocols.l2tp.codec import control, encode
from harness.protocols.l2tp.wire import Wire

DATA = Path(__file__).parent / "data"
LAC, LNS = "198.18.2.2", "198.18.2.3"


def test_the_kernels_sas_are_read_with_their_keys_and_algorithms():
    read = parse_xfrm_state((DATA / "xfrm-state-transport.txt").read_text())
    assert read.skipped == []
    assert [(k.spi, k.src, k.dst, k.encryption, k.integrity, len(k.enc_key), len(k.auth_key)) for k in read.keys] == [
        (0xc8a9d3ae, LNS, LAC, "ENCR_AES_CBC_256", "AUTH_HMAC_SHA1_96", 32, 20),
        (0xc046e4e4, LAC, LNS, "ENCR_AES_CBC_256", "AUTH_HMAC_SHA1_96", 32, 20)]
    assert read.keys[1].enc_key.hex() == "c82cc50f907d9898f922509c16e2feaf0b478aa483285f26ca92a5bb5dc8640d"


def test_aead_old_auth_lines_and_what_cannot_be_opened():
    text = ("src 192.0.2.1 dst 192.0.2.2\n\tproto esp spi 0x00000101 reqid 1 mode tunnel\n"
            "\taead rfc4106(gcm(aes)) 0x" + "11" * 20 + " 128\n"
            "src 192.0.2.2 dst 192.0.2.1\n\tproto esp spi 0x00000102 reqid 1 mode tunnel\n"
            "\tauth hmac(sha1) 0x" + "22" * 20 + "\n\tenc cbc(des3_ede) 0x" + "33" * 24 + "\n"
            "src 192.0.2.1 dst 192.0.2.2\n\tproto ah spi 0x00000103 reqid 2 mode transport\n"
            "\tauth-trunc hmac(sha256) 0x" + "44" * 32 + " 128\n"
            "src 192.0.2.1 dst 192.0.2.2\n\tproto esp spi 0x00000104 reqid 3 mode tunnel\n"
            "\tenc cbc(serpent) 0x" + "55" * 16 + "\n")
    read = parse_xfrm_state(text)
    assert [(k.spi, k.encryption, k.integrity, len(k.enc_key)) for k in read.keys] == [
        (0x101, "ENCR_AES_GCM_16_128", None, 20), (0x102, "ENCR_3DES", "AUTH_HMAC_SHA1_96", 24)]
    assert read.skipped == ["SA spi 0x00000103 192.0.2.1 -> 192.0.2.2: proto ah, not esp",
                            "SA spi 0x00000104 192.0.2.1 -> 192.0.2.2: enc cbc(serpent) is not one the transcript "
                            "opens"]
    assert parse_xfrm_state("") .keys == [] and parse_xfrm_state("garbage\n\tproto esp\n").keys == []


def l2tp(src: str, message) -> IP:
    return IP(src=src, dst=LNS if src == LAC else LAC) / UDP(sport=1701, dport=1701) / encode(message)


def test_a_capture_with_its_esp_opened_reads_as_the_l2tp_inside(tmp_path):
    keys = {k.src: k for k in parse_xfrm_state((DATA / "xfrm-state-transport.txt").read_text()).keys}
    conversation = [
        l2tp(LAC, control(0, avps=[A.message_type("SCCRQ"), A.protocol_version(1, 0), A.host_name("lac"),
                                   A.framing_capabilities("sync+async"), A.assigned_tunnel_id(17)])),
        l2tp(LNS, control(17, nr=1, avps=[A.message_type("SCCRP"), A.protocol_version(1, 0), A.host_name("lns"),
                                          A.framing_capabilities("sync+async"), A.assigned_tunnel_id(33)])),
        l2tp(LAC, control(33, ns=1, nr=1, avps=[A.message_type("SCCCN")])),
    ]
    frames = [Ether() / ARP()]  # not IP: copied as it is
    for seq, packet in enumerate(conversation, 1):
        k: EspSaKeys = keys[packet[IP].src]
        sa = SecurityAssociation(ESP, spi=k.spi, crypt_algo="AES-CBC", crypt_key=k.enc_key,
                                 auth_algo="HMAC-SHA1-96", auth_key=k.auth_key)
        frames.append(Ether() / sa.encrypt(packet, seq_num=seq))  # transport mode: IP / ESP(UDP / L2TP)
    for number, frame in enumerate(frames):
        frame.time = 1_800_000_000 + number / 4
    raw, opened = tmp_path / "capture.pcap", tmp_path / "opened.pcap"
    wrpcap(str(raw), frames)

    assert not Wire.from_pcap(raw).datagrams  # nothing on UDP 1701 outside ESP
    assert write_decrypted(raw, keys.values(), opened) == 3
    wire = Wire.from_pcap(opened)
    assert [(d.src, d.kind) for d in wire.control()] == [(LAC, "SCCRQ"), (LNS, "SCCRP"), (LAC, "SCCCN")]
    again = rdpcap(str(opened))
    assert [float(f.time) for f in again] == [float(f.time) for f in frames]
    assert again[0].haslayer(ARP) and bytes(again[1][UDP].payload) == bytes(conversation[0][UDP].payload)

    wrong = [EspSaKeys(k.spi, k.src, k.dst, k.encryption, k.integrity, k.enc_key, bytes(20)) for k in keys.values()]
    assert write_decrypted(raw, wrong, opened) == 0  # an ICV that does not verify opens nothing
    assert not Wire.from_pcap(opened).datagrams and len(rdpcap(str(opened))) == 4
