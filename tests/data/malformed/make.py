"""Writes the damaged captures `overlay-interop transcript` must survive (tests/test_transcript_cli.py).
Deterministic (fixed times, addresses and a seeded generator), so re-running it reproduces the checked-in
files byte for byte:

    python tests/data/malformed/make.py [FOLDER]      (default: beside this script)

    truncated.pcap              strongswan_psk_tunnel.pcap cut in the middle of its ninth frame (the IKE_AUTH response)
    truncated_header.pcap       a pcap file header cut after 10 bytes
    garbage_after_header.pcap   a valid file header, then random bytes
    random_ipsec_payloads.pcap  UDP 500/4500 and ESP frames whose payloads are random bytes (some behind a
                                non-ESP marker), and IKEv2 messages of random payloads whose lengths add up
    ike_huge_length.pcap        IKE headers claiming 0xffffffff bytes, and a payload claiming 65535
    payload_chain_loop.pcap     zero-length payloads (a parser that trusts them loops for ever), a chain of
                                4-byte payloads naming themselves as next, SKF 0 of 0, an SK shorter than its IV
    fragments.pcap              an IKE message IP-fragmented whose second fragment never comes, an
                                overlapping fragment, a lone later fragment
    odd_frames.pcap             short UDP/ESP datagrams, a UDP length larger than the frame, IPv6 with IKE,
                                a frame cut inside the IP header, ARP
    linktype_user0.pcap         linktype 147 (USER0): no decoder for the link layer
    linktype_raw_ip.pcap        linktype 101 (raw IP), no Ethernet: an IKE_SA_INIT exchange, readable
    psk_tunnel.pcapng           strongswan_psk_tunnel.pcap as pcapng
    truncated.pcapng            the same pcapng cut in the middle of a block
    not_a_pcap.txt              text: the command refuses it in one line
"""
from __future__ import annotations

import random
import struct

from scapy.utils import checksum  # the Internet checksum (RFC 1071)
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
PSK_TUNNEL = HERE.parent / "strongswan_psk_tunnel.pcap"
T0 = 1_700_000_000
I, R = "198.18.9.2", "198.18.9.3"
ISPI, RSPI = bytes.fromhex("a1a1a1a1a1a1a1a1"), bytes.fromhex("b2b2b2b2b2b2b2b2")
IKE_SA_INIT, IKE_AUTH, INFORMATIONAL = 34, 35, 37
FLAG_I, FLAG_R = 0x08, 0x20


# --- bytes on the wire --------------------------------------------------------------------------------------



def addr(text: str) -> bytes:
    return bytes(int(x) for x in text.split("."))


def ipv4(src: str, dst: str, proto: int, payload: bytes, *, ident: int = 0, flags_offset: int = 0,
         total: int | None = None) -> bytes:
    header = struct.pack("!BBHHHBBH4s4s", 0x45, 0, total or 20 + len(payload), ident, flags_offset, 64, proto, 0,
                         addr(src), addr(dst))
    header = header[:10] + struct.pack("!H", checksum(header)) + header[12:]
    return header + payload


def udp(sport: int, dport: int, payload: bytes, *, length: int | None = None) -> bytes:
    return struct.pack("!HHHH", sport, dport, length or 8 + len(payload), 0) + payload


def ether(ip: bytes, ethertype: int = 0x0800) -> bytes:
    return bytes.fromhex("020000000003" "020000000002") + struct.pack("!H", ethertype) + ip


def ike(exchange: int, flags: int, message_id: int, first_payload: int, body: bytes, *,
        length: int | None = None, version: int = 0x20) -> bytes:
    return struct.pack("!8s8sBBBBII", ISPI, RSPI, first_payload, version, exchange, flags, message_id,
                       length if length is not None else 28 + len(body)) + body


def payload(next_payload: int, body: bytes, *, length: int | None = None) -> bytes:
    return struct.pack("!BBH", next_payload, 0, length if length is not None else 4 + len(body)) + body


def ike_sa_init(flags: int) -> bytes:
    transforms = (struct.pack("!BBHBBH", 3, 0, 12, 1, 0, 12) + struct.pack("!HH", 0x800E, 128)   # ENCR_AES_CBC_128
                  + struct.pack("!BBHBBH", 3, 0, 8, 2, 0, 5)                                    # PRF_HMAC_SHA2_256
                  + struct.pack("!BBHBBH", 3, 0, 8, 3, 0, 12)                                   # AUTH_HMAC_SHA2_256_128
                  + struct.pack("!BBHBBH", 0, 0, 8, 4, 0, 14))                                  # MODP_2048
    proposal = struct.pack("!BBHBBBB", 0, 0, 8 + len(transforms), 1, 1, 0, 4) + transforms
    body = payload(34, proposal) + payload(40, struct.pack("!HH", 14, 0) + bytes(256)) + payload(0, bytes(32))
    return ike(IKE_SA_INIT, flags, 0, 33, body)


# --- files --------------------------------------------------------------------------------------------------

def pcap(frames: list[bytes], linktype: int = 1) -> bytes:
    out = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, linktype)
    for number, frame in enumerate(frames):
        out += struct.pack("<IIII", T0 + number, 0, len(frame), len(frame)) + frame
    return out


def pcap_records(data: bytes) -> tuple[int, list[tuple[int, int, bytes]]]:
    """(linktype, [(seconds, microseconds, frame)]) of a little-endian pcap file."""
    linktype = struct.unpack_from("<I", data, 20)[0]
    records, offset = [], 24
    while offset + 16 <= len(data):
        sec, usec, caplen, _ = struct.unpack_from("<IIII", data, offset)
        records.append((sec, usec, data[offset + 16:offset + 16 + caplen]))
        offset += 16 + caplen
    return linktype, records


def cut_in_frame(data: bytes, number: int) -> bytes:
    """A little-endian pcap file cut in the middle of frame `number` (1-based)."""
    offset = 24
    for _ in range(number - 1):
        offset += 16 + struct.unpack_from("<I", data, offset + 8)[0]
    return data[:offset + 16 + struct.unpack_from("<I", data, offset + 8)[0] // 2]


def pcapng(data: bytes) -> bytes:
    def block(kind: int, body: bytes) -> bytes:
        body += bytes(-len(body) % 4)
        return struct.pack("<II", kind, len(body) + 12) + body + struct.pack("<I", len(body) + 12)
    linktype, records = pcap_records(data)
    out = block(0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1))
    out += block(1, struct.pack("<HHI", linktype, 0, 262144))
    for sec, usec, frame in records:
        stamp = sec * 1_000_000 + usec
        out += block(6, struct.pack("<IIIII", 0, stamp >> 32, stamp & 0xFFFFFFFF, len(frame), len(frame)) + frame)
    return out


def random_ipsec_payloads(rng: random.Random) -> list[bytes]:
    frames = []
    for n in range(120):
        size = rng.choice([0, 1, 3, 4, 8, 27, 28, 29, 40, 100, 400, 1400])
        body = rng.randbytes(size)
        kind = n % 6
        if kind == 0:
            frames.append(ether(ipv4(I, R, 17, udp(500, 500, body))))
        elif kind == 1:
            frames.append(ether(ipv4(I, R, 17, udp(4500, 4500, bytes(4) + body))))    # non-ESP marker, then junk
        elif kind == 2:
            frames.append(ether(ipv4(R, I, 17, udp(4500, 4500, body))))              # ESP-in-UDP, random
        elif kind == 3:
            frames.append(ether(ipv4(R, I, 50, body)))                                # plain ESP, random
        else:  # a plausible IKEv2 header (right version and length) and a chain of payloads whose lengths
            # add up, each of a random type with a random body: every payload decoder sees junk
            chain, kinds = b"", [rng.choice(range(33, 55)) for _ in range(rng.randrange(1, 6))]
            for i, kind_ in enumerate(kinds):
                following = kinds[i + 1] if i + 1 < len(kinds) else 0
                chain += payload(following, rng.randbytes(rng.choice([0, 1, 3, 4, 7, 8, 12, 20, 40, 90])))
            message = ike(rng.choice([34, 35, 36, 37]), rng.choice([FLAG_I, FLAG_R, FLAG_I | FLAG_R]),
                          rng.randrange(4), kinds[0], chain)
            port = 500 if kind == 4 else 4500
            frames.append(ether(ipv4(I, R, 17, udp(port, port, (bytes(4) if port == 4500 else b"") + message))))
    return frames


def huge_lengths() -> list[bytes]:
    return [
        ether(ipv4(I, R, 17, udp(500, 500, ike(IKE_SA_INIT, FLAG_I, 0, 33, bytes(40), length=0xFFFFFFFF)))),
        ether(ipv4(I, R, 17, udp(4500, 4500, bytes(4) + ike(IKE_AUTH, FLAG_I, 1, 46, bytes(60),
                                                            length=0xFFFFFFFF)))),
        ether(ipv4(I, R, 17, udp(500, 500, ike(IKE_SA_INIT, FLAG_I, 0, 33, payload(0, bytes(20), length=65535))))),
        ether(ipv4(I, R, 17, udp(500, 500, ike(IKE_SA_INIT, FLAG_I, 0, 41, payload(0, struct.pack("!BBH", 0, 200, 24)),
                                               length=27)))),                      # shorter than its header
        ether(ipv4(I, R, 17, udp(500, 500, ike_sa_init(FLAG_I), length=65535))),   # UDP length past the frame
    ]


def chain_loops() -> list[bytes]:
    zero = payload(41, b"", length=0) + bytes(16)
    self_naming = b"".join(payload(41, b"") for _ in range(200))                  # 4-byte Notify -> Notify -> ...
    skf_zero = payload(0, struct.pack("!HH", 0, 0) + bytes(8))                     # SKF fragment 0 of 0
    sk_short = payload(35, bytes(3))                                               # SK shorter than any IV
    return [
        ether(ipv4(I, R, 17, udp(500, 500, ike(INFORMATIONAL, FLAG_I, 2, 41, zero)))),
        ether(ipv4(I, R, 17, udp(500, 500, ike(INFORMATIONAL, FLAG_I, 2, 41, self_naming)))),
        ether(ipv4(I, R, 17, udp(4500, 4500, bytes(4) + ike(IKE_AUTH, FLAG_I, 1, 53, skf_zero)))),
        ether(ipv4(I, R, 17, udp(4500, 4500, bytes(4) + ike(IKE_AUTH, FLAG_R, 1, 46, sk_short)))),
        ether(ipv4(I, R, 17, udp(500, 500, ike(IKE_SA_INIT, FLAG_I, 0, 33, payload(0, bytes(0)))))),  # empty SA
    ]


def fragments() -> list[bytes]:
    message = udp(500, 500, ike_sa_init(FLAG_I))
    first, rest = message[:200], message[200:]
    return [
        ether(ipv4(I, R, 17, first, ident=7, flags_offset=0x2000, total=20 + len(first))),    # MF, never completed
        ether(ipv4(I, R, 17, first[:96], ident=8, flags_offset=0x2000, total=116)),
        ether(ipv4(I, R, 17, first[64:], ident=8, flags_offset=8, total=20 + len(first) - 64)),  # overlaps
        ether(ipv4(I, R, 17, rest, ident=9, flags_offset=25, total=20 + len(rest))),          # a lone later one
    ]


def odd_frames() -> list[bytes]:
    ipv6_ike = (struct.pack("!IHBB16s16s", 6 << 28, 8 + len(ike_sa_init(FLAG_I)), 17, 64,
                            bytes.fromhex("fd000000000000000000000000000002"),
                            bytes.fromhex("fd000000000000000000000000000003"))
                + udp(500, 500, ike_sa_init(FLAG_I)))
    return [
        ether(ipv4(I, R, 17, udp(500, 500, b""))),                  # empty IKE datagram
        ether(ipv4(I, R, 17, b"\x01\xf4\x01")),                     # UDP header cut after 3 bytes
        ether(ipv4(I, R, 50, b"\x00\x00\x00\x01")),                 # ESP shorter than SPI + sequence
        ether(ipv4(I, R, 17, udp(4500, 4500, b"\xff"))),            # NAT keepalive
        ether(ipv4(I, R, 17, udp(4500, 4500, b"\x00\x00\x00"))),    # a non-ESP marker cut short
        ether(ipv6_ike, ethertype=0x86DD),
        ether(ipv4(I, R, 17, udp(500, 500, ike_sa_init(FLAG_I))))[:30],  # cut inside the IP header
        ether(bytes(28), ethertype=0x0806),                          # ARP, all zero
        b"\x02\x00",                                                 # shorter than an Ethernet header
    ]


def main(folder: Path = HERE) -> None:
    rng = random.Random(20240521)
    psk = PSK_TUNNEL.read_bytes()
    exchange = [ipv4(I, R, 17, udp(500, 500, ike_sa_init(FLAG_I))), ipv4(R, I, 17, udp(500, 500, ike_sa_init(FLAG_R)))]
    files = {
        "truncated.pcap": cut_in_frame(psk, 9),
        "truncated_header.pcap": psk[:10],
        "garbage_after_header.pcap": psk[:24] + rng.randbytes(700),
        "random_ipsec_payloads.pcap": pcap(random_ipsec_payloads(rng)),
        "ike_huge_length.pcap": pcap(huge_lengths()),
        "payload_chain_loop.pcap": pcap(chain_loops()),
        "fragments.pcap": pcap(fragments()),
        "odd_frames.pcap": pcap(odd_frames()),
        "linktype_user0.pcap": pcap([b"\x00\x01" + frame for frame in exchange], linktype=147),
        "linktype_raw_ip.pcap": pcap(exchange, linktype=101),
        "psk_tunnel.pcapng": pcapng(psk),
        "truncated.pcapng": pcapng(psk)[:1500],
        "not_a_pcap.txt": b"This is not a capture.\n",
    }
    for name, data in files.items():
        (folder / name).write_bytes(data)
        print(f"{name}: {len(data)} bytes")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else HERE)
