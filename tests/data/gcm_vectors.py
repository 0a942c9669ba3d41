"""AES-GCM test vectors for the decryption code, built on an independent path: the messages are assembled
here byte by byte with struct and sealed with `cryptography`'s AESGCM class (the harness opens IKE with the
Cipher API's GCM mode and ESP through scapy), following RFC 5282 (IKEv2), RFC 7383 (IKE fragments) and
RFC 4106 (ESP). Deterministic: fixed keys, SPIs and IVs.

    python tests/data/gcm_vectors.py OUT.pcap     # writes the capture, e.g. to open it with tshark

What the capture holds (I = 198.18.9.2, R = 198.18.9.3, all on UDP 4500, IKE behind the non-ESP marker):
   0  I->R  IKE_AUTH #1 request(I)      SK { IDi FQDN gcm-initiator.lab, AUTH shared-key, TSi, TSr }
   1  R->I  IKE_AUTH #1 response(R)     SK { N(AUTHENTICATION_FAILED) }
   2  I->R  INFORMATIONAL #2 request(I) SKF 1/2, 3 SKF 2/2 { Delete ESP 0xc0000011 0xc0000012, N(REKEY_SA) }
   4  I->R  ESP-in-UDP spi 0xc0000011 seq 1: ICMP echo-request 198.19.1.1 > 198.19.2.1 id=7 seq=1
"""
from __future__ import annotations

import ipaddress
import struct

from scapy.utils import checksum  # the Internet checksum (RFC 1071)
import sys

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

INITIATOR, RESPONDER = "198.18.9.2", "198.18.9.3"
ISPI, RSPI = bytes.fromhex("0102030405060708"), bytes.fromhex("1112131415161718")
SK_EI = bytes(range(0x20, 0x40)) + bytes.fromhex("a0a1a2a3")    # AES-256 key + 4-byte salt
SK_ER = bytes(range(0x40, 0x60)) + bytes.fromhex("b0b1b2b3")
ESP_SPI = 0xC0000011
ESP_KEY = bytes(range(0x60, 0x80)) + bytes.fromhex("c0c1c2c3")
IKE_AUTH, INFORMATIONAL = 35, 37
SK, SKF = 46, 53
IDI, AUTH, NOTIFY, DELETE, TSI, TSR = 35, 39, 41, 42, 44, 45


def payload(next_payload: int, body: bytes) -> bytes:
    return struct.pack("!BBH", next_payload, 0, 4 + len(body)) + body


def chain(*payloads: tuple[int, bytes]) -> tuple[int, bytes]:
    """(type of the first, bytes) of payloads given as (type, body) pairs."""
    data = b""
    for i, (_kind, body) in enumerate(payloads):
        following = payloads[i + 1][0] if i + 1 < len(payloads) else 0
        data += payload(following, body)
    return payloads[0][0], data


def selector(network: str) -> bytes:
    net = ipaddress.ip_network(network)
    return struct.pack("!BxxxBBHHH", 1, 7, 0, 16, 0, 65535) + net.network_address.packed + net.broadcast_address.packed


def header(exchange: int, flags: int, message_id: int, first: int, length: int) -> bytes:
    return ISPI + RSPI + struct.pack("!BBBBII", first, 0x20, exchange, flags, message_id, length)


def sealed(exchange: int, flags: int, message_id: int, first: int, inner: bytes, key: bytes, iv: bytes,
           fragment: tuple[int, int] | None = None) -> bytes:
    """A whole IKE message whose only payload is SK (or SKF) around `inner`, padded with 3 bytes."""
    plaintext = inner + bytes(3) + b"\x03"
    payload_header_size = 4 + (4 if fragment else 0)
    length = 28 + payload_header_size + len(iv) + len(plaintext) + 16
    kind = SKF if fragment else SK
    aad = header(exchange, flags, message_id, kind, length) + struct.pack("!BBH", first, 0, length - 28)
    if fragment:
        aad += struct.pack("!HH", *fragment)
    sealed_text = AESGCM(key[:32]).encrypt(key[32:] + iv, plaintext, aad)
    return aad + iv + sealed_text


def ike_messages() -> list[tuple[str, str, bytes]]:
    """(src, dst, IKE message) in capture order."""
    first, inner = chain((IDI, struct.pack("!Bxxx", 2) + b"gcm-initiator.lab"),
                         (AUTH, struct.pack("!Bxxx", 2) + bytes(range(32))),
                         (TSI, selector("198.19.1.0/24")), (TSR, selector("198.19.2.0/24")))
    request = sealed(IKE_AUTH, 0x08, 1, first, inner, SK_EI, bytes.fromhex("0001020304050607"))
    first, inner = chain((NOTIFY, struct.pack("!BBH", 0, 0, 24)))
    response = sealed(IKE_AUTH, 0x20, 1, first, inner, SK_ER, bytes.fromhex("1011121314151617"))
    first, inner = chain((DELETE, struct.pack("!BBH", 3, 4, 2) + struct.pack("!II", 0xC0000011, 0xC0000012)),
                         (NOTIFY, struct.pack("!BBH", 3, 4, 16393) + struct.pack("!I", 0xC0000011)))
    half = len(inner) // 2
    fragment_1 = sealed(INFORMATIONAL, 0x08, 2, first, inner[:half], SK_EI, bytes.fromhex("2021222324252627"),
                        fragment=(1, 2))
    fragment_2 = sealed(INFORMATIONAL, 0x08, 2, 0, inner[half:], SK_EI, bytes.fromhex("3031323334353637"),
                        fragment=(2, 2))
    return [(INITIATOR, RESPONDER, request), (RESPONDER, INITIATOR, response),
            (INITIATOR, RESPONDER, fragment_1), (INITIATOR, RESPONDER, fragment_2)]




def inner_ping() -> bytes:
    """IPv4 + ICMP echo-request 198.19.1.1 > 198.19.2.1 id=7 seq=1, checksums computed here."""
    icmp = struct.pack("!BBHHH", 8, 0, 0, 7, 1) + b"overlay-interop!"
    icmp = icmp[:2] + struct.pack("!H", checksum(icmp)) + icmp[4:]
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(icmp), 0x1234, 0, 64, 1, 0,
                     ipaddress.ip_address("198.19.1.1").packed, ipaddress.ip_address("198.19.2.1").packed)
    ip = ip[:10] + struct.pack("!H", checksum(ip)) + ip[12:]
    return ip + icmp


def esp_packet() -> bytes:
    """ESP (RFC 4303/4106): SPI | seq | IV | sealed(inner | padding | pad length | next header 4) | ICV."""
    inner = inner_ping()
    pad = (-(len(inner) + 2)) % 4
    plaintext = inner + bytes(range(1, pad + 1)) + bytes([pad, 4])
    spi_seq = struct.pack("!II", ESP_SPI, 1)
    iv = bytes.fromhex("4041424344454647")
    return spi_seq + iv + AESGCM(ESP_KEY[:32]).encrypt(ESP_KEY[32:] + iv, plaintext, spi_seq)


def write_pcap(path) -> None:
    from scapy.layers.inet import IP, UDP
    from scapy.layers.l2 import Ether
    from scapy.packet import Raw
    from scapy.utils import wrpcap

    frames = [(src, dst, bytes(4) + message) for src, dst, message in ike_messages()]
    frames.append((INITIATOR, RESPONDER, esp_packet()))
    packets = []
    for number, (src, dst, body) in enumerate(frames):
        frame = Ether() / IP(src=src, dst=dst, id=number + 1) / UDP(sport=4500, dport=4500) / Raw(body)
        frame.time = 1_700_000_000 + number
        packets.append(frame)
    wrpcap(str(path), packets)


if __name__ == "__main__":
    write_pcap(sys.argv[1])
