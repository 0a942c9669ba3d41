"""The harness's own decoders on arbitrary and damaged bytes (hypothesis): each decodes, or says "malformed"
the way its contract says -- a result marked malformed, a malformed count, or the one exception its caller
catches -- and never raises anything else.

Inputs are random bytes, and the messages, payload chains, frames and files of the checked-in captures
damaged: bytes spliced in or overwritten, the rest cut off, length fields set to any value. Each decoder is
called below the capture readers' per-frame safety net (`except Exception: malformed += 1`), since that net
would otherwise be what keeps a decoder bug from raising. Examples are derandomized, so a run is the same
everywhere; the whole module takes under 20 seconds."""
from __future__ import annotations

import io
import socket
import struct
import xml.etree.ElementTree as ET
from dataclasses import replace
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes, hmac
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support import DATA, ROOT, load
from harness import transcript_cli
from harness.packets import Datagram, Datagrams
from harness.protocols import dispatch
from harness.protocols.ipsec import crypto, ike
from harness.protocols.ipsec import dissector as ipsec_dissector
from harness.protocols.ipsec import wire as ipsec_wire
from harness.protocols.ipsec.keys import EspSaKeys, IkeSaKeys, IkeV1SaKeys
from harness.protocols.ipsec.ladder import ladder_events as ipsec_ladder_events, message_notes
from harness.protocols.ipsec.transcript import EspPacket, _Reader as IpsecReader, decrypt_ike, open_esp
from harness.protocols.vxlan import dissector as vxlan_dissector
from harness.protocols.vxlan import wire as vxlan_wire
from harness.protocols.vxlan.ladder import ladder_events as vxlan_ladder_events
from harness.report.ladder import render

keylog = load("strongswan_keylog", ROOT / "vendors" / "strongswan" / "keylog.py")
make = load("malformed_make", DATA / "malformed" / "make.py")

fuzz = settings(deadline=None, derandomize=True, database=None, max_examples=300,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

I, R = "198.18.0.2", "198.18.0.3"
I6, R6 = "fd00::2", "fd00::3"
IPSEC_PORTS = (500, 4500)
NON_ESP_MARKER = bytes(4)
OVERLAY_PORTS = (4789, 8472, 6081)
IKE_CAPTURES = ("ipsec_synthetic", "strongswan_psk_tunnel", "strongswan_gcm_rekey", "strongswan_fragmentation",
                "strongswan_wrong_psk")


# --- seeds: what the checked-in captures hold ------------------------------------------------------------

def _ike_keys(case: str) -> list[IkeSaKeys]:
    keys = []
    for side in ("initiator", "responder"):
        log = DATA / f"{case}.{side}.log"
        if log.is_file():
            keys += keylog.parse(log.read_text())[0]
    return keys


def _ike_seeds():
    """Every IKE message on the wire (IKEv2 and IKEv1); the encrypted ones with the keys that open them; every
    payload chain, in the clear and opened."""
    messages, sealed, sealed_v1, chains = {}, {}, {}, {}
    captures = [(DATA / f"{case}.pcap", _ike_keys(case)) for case in IKE_CAPTURES]
    captures += [(DATA / "ike" / name, IKE_KEYS) for name in ike_captures.CAPTURES]
    for path, keys in captures:
        wire = ipsec_wire.Wire.from_pcap(path)
        for decrypted in decrypt_ike(wire, keys):
            data = decrypted.message.data
            messages[data] = None
            chains[(data[16], data[28:])] = None
            if isinstance(decrypted.keys, IkeSaKeys):
                sealed[data] = decrypted.keys
                opened = crypto.decrypt_sk(data, decrypted.keys)
                chains[(opened.first_payload, opened.chain)] = None
            elif isinstance(decrypted.keys, IkeV1SaKeys):
                sealed_v1[data] = None
                chains[(data[16], bytes(decrypted.payloads and ike.Isakmp(payloads=list(decrypted.payloads)))[28:])] = None
    return list(messages), list(sealed.items()), list(sealed_v1), list(chains)


ike_captures = load("make_ike_pcaps", DATA / "ike" / "make_ike_pcaps.py")
IKE_KEYS = [IkeV1SaKeys(cookie, key) for cookie, key in ike_captures.IKEV1_KEYS.items()] + [
    IkeSaKeys(sa["ispi"], sa["rspi"], "ENCR_AES_CBC_128", "AUTH_HMAC_SHA2_256_128", sa["sk_ei"], sa["sk_er"],
              sa["sk_ai"], sa["sk_ar"]) for sa in (ike_captures.SA_A, ike_captures.SA_B)]
IKE_MESSAGES, SEALED_MESSAGES, SEALED_V1_MESSAGES, PAYLOAD_CHAINS = _ike_seeds()


def _frames() -> list[bytes]:
    """The Ethernet frames of every checked-in capture, read with the transcript command's own framing."""
    frames = {}
    for path in sorted([*DATA.glob("*.pcap"), *DATA.glob("*/*.pcap")]):
        for frame in transcript_cli.read_capture(path).frames:
            if frame.linktype == 1 and frame.data[12:14] in (b"\x08\x00", b"\x86\xdd"):
                frames[frame.data] = None
    return list(frames)


FRAMES = _frames()


def _udp_segment(frame: bytes) -> bytes | None:
    """The UDP segment of an unfragmented Ethernet/IPv4 or IPv6 frame."""
    if len(frame) < 62:
        return None
    if frame[12:14] == b"\x08\x00" and frame[23] == 17 and not struct.unpack_from("!H", frame, 20)[0] & 0x3FFF:
        return frame[14 + (frame[14] & 0x0F) * 4:]
    if frame[12:14] == b"\x86\xdd" and frame[20] == 17:
        return frame[54:]
    return None


OVERLAY_SEGMENTS = [s for s in map(_udp_segment, FRAMES)
                    if s is not None and len(s) >= 8 and set(struct.unpack_from("!HH", s)) & set(OVERLAY_PORTS)]
INNER_FRAMES = list({s[16:]: None for s in OVERLAY_SEGMENTS if len(s) > 16})
ICMP_ERRORS = [f[34:] for f in FRAMES if f[12:14] == b"\x08\x00" and len(f) > 42 and f[23] == 1 and f[34] in (3, 11)]
CAPTURE_FILES = [p.read_bytes() for p in sorted([*DATA.glob("*.pcap"), *DATA.glob("*/*.pcap"),
                                                 *DATA.glob("*/*.pcapng")]) if p.stat().st_size <= 6000]


def test_the_seeds_are_there():
    """An empty seed list would quietly turn the damaged-input properties into random-bytes ones."""
    assert len(IKE_MESSAGES) > 20 and len(SEALED_MESSAGES) > 20 and len(PAYLOAD_CHAINS) > 20
    assert any(m[16] == 53 for m, _keys in SEALED_MESSAGES)   # an SKF fragment, from strongswan_fragmentation
    assert len(SEALED_V1_MESSAGES) > 15 and any(m[17] == 0x10 and not m[19] & 1 for m in IKE_MESSAGES)  # IKEv1
    assert len(FRAMES) > 50 and len(OVERLAY_SEGMENTS) > 20 and len(INNER_FRAMES) > 5 and ICMP_ERRORS
    assert len(CAPTURE_FILES) > 15


# --- damage ----------------------------------------------------------------------------------------------

def ike_length_fields(data: bytes) -> list[tuple[int, int, str]]:
    """(offset, size, byte order) of the message length and of each payload length in the clear chain."""
    return [(24, 4, "big"), *chain_length_fields(data, data[16] if len(data) > 16 else 0, 28)]


def chain_length_fields(data: bytes, first: int, offset: int = 0) -> list[tuple[int, int, str]]:
    fields, kind = [], first
    while kind and offset + 4 <= len(data):
        fields.append((offset + 2, 2, "big"))
        if kind == 53:                                        # SKF: fragment number and total
            fields += [(offset + 4, 2, "big"), (offset + 6, 2, "big")]
        kind, length = data[offset], struct.unpack_from("!H", data, offset + 2)[0]
        if length < 4:
            break
        offset += length
    return fields


def frame_length_fields(frame: bytes) -> list[tuple[int, int, str]]:
    """IPv4: header length, total length, flags and fragment offset, UDP length. IPv6: payload length,
    next header, UDP length."""
    if frame[12:14] == b"\x86\xdd":
        return [(18, 2, "big"), (20, 1, "big"), (58, 2, "big")]
    udp = 14 + (frame[14] & 0x0F) * 4 if len(frame) > 14 else 34
    return [(14, 1, "big"), (16, 2, "big"), (20, 2, "big"), (udp + 4, 2, "big")]


def segment_length_fields(segment: bytes) -> list[tuple[int, int, str]]:
    """UDP length; Geneve's option length and its first option's length."""
    return [(4, 2, "big"), (8, 1, "big"), (19, 1, "big")]


def capture_length_fields(data: bytes) -> list[tuple[int, int, str]]:
    """pcap: each record's captured length. pcapng: each block's length (both copies) and an enhanced
    packet block's captured length."""
    fields = []
    if data[:4] in transcript_cli.PCAP_MAGICS:
        order = "big" if transcript_cli.PCAP_MAGICS[data[:4]][0] == ">" else "little"
        offset = 24
        while offset + 16 <= len(data):
            fields.append((offset + 8, 4, order))
            offset += 16 + int.from_bytes(data[offset + 8:offset + 12], order)
    elif data[:4] == transcript_cli.PCAPNG_MAGIC:
        offset = 0
        while offset + 12 <= len(data):
            kind, length = struct.unpack_from("<II", data, offset)
            fields += [(offset + 4, 4, "little"), (offset + length - 4, 4, "little")]
            if kind == 6:
                fields.append((offset + 20, 4, "little"))
            if length < 12:
                break
            offset += length
    return fields


@st.composite
def damaged(draw, seeds, length_fields=lambda data: []):
    """A seed, damaged one to four times: bytes spliced in, bytes overwritten, the rest cut off, or a length
    field (one the format has, or two or four bytes anywhere) set to a small, a nearby, the largest or any
    value."""
    data = bytearray(draw(st.sampled_from(seeds)))
    for _ in range(draw(st.integers(1, 4))):
        how = draw(st.sampled_from(("splice", "overwrite", "cut", "length", "length")))
        at = draw(st.integers(0, len(data)))
        if how == "splice":
            data[at:at] = draw(st.binary(min_size=1, max_size=16))
        elif how == "overwrite":
            chunk = draw(st.binary(min_size=1, max_size=8))
            data[at:at + len(chunk)] = chunk
        elif how == "cut":
            del data[at:]
        else:
            known = [f for f in length_fields(bytes(data)) if 0 <= f[0] and f[0] + f[1] <= len(data)]
            if known and draw(st.booleans()):
                offset, size, order = draw(st.sampled_from(known))
            else:
                offset, size, order = at, draw(st.sampled_from((2, 4))), "big"
                if offset + size > len(data):
                    continue
            top = (1 << 8 * size) - 1
            now = int.from_bytes(data[offset:offset + size], order)
            value = draw(st.one_of(st.integers(0, 16), st.integers(max(0, now - 8), min(top, now + 8)),
                                   st.just(top), st.integers(0, top)))
            data[offset:offset + size] = value.to_bytes(size, order)
    return bytes(data)


def sometimes_junk(strategy, max_size: int = 200):
    return st.one_of(st.binary(max_size=max_size), strategy, strategy)


@pytest.fixture(scope="module")
def scratch(tmp_path_factory) -> Path:
    """A file to write each example's capture to (hypothesis runs every example in one test call)."""
    return tmp_path_factory.mktemp("fuzz") / "capture"


# --- IPsec: IKE messages ---------------------------------------------------------------------------------

@settings(fuzz, max_examples=1000)
@given(sometimes_junk(damaged(IKE_MESSAGES, ike_length_fields)))
def test_ike_message_decoder_decodes_or_raises_malformed(data):
    """_decode_ike's contract: an IkeMessage (its `problem` saying what could not be read), or _Malformed for fewer
    bytes than a header, which the capture reader counts."""
    try:
        message = ipsec_wire._decode_ike(data, time=0.0, src=I, dst=R, sport=500, dport=500)
    except ipsec_wire._Malformed:
        assert len(data) < ipsec_wire.IKE_HEADER.size
        return
    assert len(message.data) <= len(data)
    assert message.problem is None or message.problem.strip(), message.problem
    message.describe()
    message.names, message.notifies, message.errors, message.sa, message.vendor_ids


def ipsec_body(port: int):
    """What follows the UDP header at an IKE port: IKE (behind the non-ESP marker at 4500), ESP, junk."""
    ike = damaged(IKE_MESSAGES, ike_length_fields)
    if port == 4500:
        ike = st.one_of(ike.map(lambda m: NON_ESP_MARKER + m), st.binary(min_size=8, max_size=80))   # or ESP
    return sometimes_junk(ike, 80)


@st.composite
def ipsec_datagram(draw):
    """(IP protocol, payload) as the capture reader hands a datagram over: UDP to 500 or 4500, its length
    field sometimes wrong, or plain ESP."""
    if draw(st.integers(0, 4)) == 0:
        return 50, draw(st.binary(max_size=40))
    port = draw(st.sampled_from(IPSEC_PORTS))
    body = draw(ipsec_body(port))
    length = draw(st.one_of(st.just(8 + len(body)), st.just(8 + len(body)), st.integers(0, 0xFFFF)))
    return 17, struct.pack("!HHHH", draw(st.integers(1, 0xFFFF)), port, length, 0) + body


def is_keepalive(segment: bytes) -> bool:
    """A well-framed UDP datagram to 4500 carrying the one byte 0xff (RFC 3948 2.3)."""
    length = struct.unpack_from("!H", segment, 4)[0]
    return segment[2:4] == b"\x11\x94" and 8 <= length <= len(segment) and segment[8:length] == b"\xff"


@settings(fuzz, max_examples=400)
@given(st.lists(ipsec_datagram(), min_size=1, max_size=6))
def test_every_ipsec_datagram_is_an_ike_message_an_esp_packet_or_malformed(datagrams):
    """Below Wire.from_pcap's per-frame safety net: no datagram raises, and each one is accounted for (a
    NAT keepalive is neither IKE nor ESP, so not counted)."""
    transcript = ipsec_wire._Transcript()
    for number, (protocol, payload) in enumerate(datagrams):
        transcript._add_datagram(float(number), I, R, protocol, payload)
    keepalives = sum(protocol == 17 and is_keepalive(payload) for protocol, payload in datagrams)
    wire = transcript.wire()
    whole = sum(m.problem is None for m in wire.messages)   # a damaged message is shown, and counted as malformed
    seen = whole + sum(f.packets for f in wire.flows) + wire.malformed + keepalives
    assert seen == len(datagrams), wire.describe()
    wire.describe()


@settings(fuzz, max_examples=60)
@given(st.lists(st.tuples(st.sampled_from([(500, b""), (4500, NON_ESP_MARKER), (4500, b"")]),
                          st.binary(min_size=1, max_size=120) | damaged(IKE_MESSAGES, ike_length_fields)),
                min_size=1, max_size=12))
def test_every_ipsec_frame_of_a_capture_is_accounted_for(scratch, segments):
    """The same through the capture reader: well-framed Ethernet/IPv4/UDP frames with any payload."""
    frames = [make.ether(make.ipv4(I, R, 17, make.udp(port, port, marker + body)))
              for (port, marker), body in segments]
    keepalives = sum(port == 4500 and marker + body == ipsec_wire.NAT_KEEPALIVE   # RFC 3948 2.3: on 4500
                     for (port, marker), body in segments)
    scratch.write_bytes(make.pcap(frames))
    wire = ipsec_wire.Wire.from_pcap(scratch)
    whole = sum(m.problem is None for m in wire.messages)
    assert whole + sum(f.packets for f in wire.flows) + wire.malformed + keepalives == len(frames)


# --- IPsec: payloads, decryption -------------------------------------------------------------------------

@st.composite
def payload_chain(draw):
    """(first payload type, chain): a chain of the captures, damaged, or random bytes after any type."""
    if draw(st.booleans()):
        first, chain = draw(st.sampled_from(PAYLOAD_CHAINS))
        mutated = draw(damaged([chain], lambda data: chain_length_fields(data, first)))
        return draw(st.one_of(st.just(first), st.integers(0, 255))), mutated
    return draw(st.integers(0, 255)), draw(st.binary(max_size=120))


@settings(fuzz, max_examples=1200)
@given(payload_chain())
def test_payload_chain_decoder_never_raises(chain):
    """decode_chain's contract, either version: never raises; a chain that breaks off keeps what came before it
    and says why."""
    first, data = chain
    for version in (ike.IKEV2, ike.IKEV1):
        payloads, problem = ike.decode_chain(first, data, version)
        assert problem is None or problem.strip(), problem
        for payload in payloads:
            payload.describe()


@settings(fuzz, max_examples=500)
@given(st.sampled_from(SEALED_MESSAGES).flatmap(
    lambda sealed: st.tuples(damaged([sealed[0]], ike_length_fields), st.just(sealed[1]))))
def test_sk_payload_opens_or_says_why(sealed):
    """decrypt_sk's contract: never raises; a wrong key or a flipped byte is its `problem`."""
    data, keys = sealed
    opened = crypto.decrypt_sk(data, keys)
    assert opened.ok or opened.problem, opened


TEST_KEYS = IkeSaKeys(ispi=bytes.fromhex("1111111111111111"), rspi=bytes.fromhex("2222222222222222"),
                      encryption="ENCR_AES_CBC_128", integrity="AUTH_HMAC_SHA2_256_128", sk_ei=bytes(range(16)),
                      sk_er=bytes(range(16, 32)), sk_ai=bytes(range(32)), sk_ar=bytes(range(32, 64)))


def seal(first: int, chain: bytes, exchange: int = 35, message_id: int = 1) -> bytes:
    """An IKE message whose SK payload TEST_KEYS verify and open to `chain`: damage inside the ciphertext
    reaches the payload decoders instead of stopping at the ICV."""
    padding = -(len(chain) + 1) % 16
    iv = bytes(16)
    encryptor = Cipher(algorithms.AES(TEST_KEYS.sk_ei), modes.CBC(iv)).encryptor()
    ciphertext = encryptor.update(chain + bytes(padding) + bytes([padding])) + encryptor.finalize()
    sk_length = 4 + 16 + len(ciphertext) + 16
    header = struct.pack("!8s8sBBBBII", TEST_KEYS.ispi, TEST_KEYS.rspi, 46, 0x20, exchange, 0x08, message_id,
                         28 + sk_length)
    unsigned = header + struct.pack("!BBH", first, 0, sk_length) + iv + ciphertext
    mac = hmac.HMAC(TEST_KEYS.sk_ai, hashes.SHA256())
    mac.update(unsigned)
    return unsigned + mac.finalize()[:16]


@settings(fuzz, max_examples=300)
@given(st.lists(st.tuples(payload_chain(), st.sampled_from([34, 35, 36, 37, 43, 99])), min_size=1, max_size=4))
def test_opened_payloads_reach_every_decoder_and_the_ladder(chains):
    """Damaged chains inside a verified SK payload: decrypt_ike opens each, and the transcript and the
    ladder diagram describe whatever came out."""
    messages = [ipsec_wire._decode_ike(seal(first, chain, exchange, n), time=float(n), src=I, dst=R, sport=4500,
                                       dport=4500) for n, ((first, chain), exchange) in enumerate(chains)]
    decrypted = decrypt_ike(messages, [TEST_KEYS])
    assert all(m.keys is not None for m in decrypted), decrypted.describe()   # the fuzz got past the ICV
    decrypted.describe()
    for message in decrypted:
        message_notes(message)
    ET.fromstring(render(*ipsec_ladder_events(decrypted, ipsec_wire.Wire(messages))))


@settings(fuzz, max_examples=300)
@given(st.lists(damaged(SEALED_V1_MESSAGES, ike_length_fields), min_size=1, max_size=6))
def test_ikev1_messages_open_or_say_why(messages):
    """IKEv1 opening (crypto.decrypt_v1 along the transcript's IV chain), on damaged encrypted messages after the
    clear phase 1 of their SA: never raises; each message opens, or says why (a wrong IV shows as payloads that do
    not read)."""
    clear = [m for m in IKE_MESSAGES if m[17] == 0x10 and not m[19] & 1]
    wire = [ipsec_wire._decode_ike(data, time=float(n), src=I, dst=R, sport=500, dport=500)
            for n, data in enumerate(clear + messages) if len(data) >= ipsec_wire.IKE_HEADER.size]
    for message in decrypt_ike(wire, IKE_KEYS)[len(clear):]:   # a message cut below a header is the reader's
        assert message.problem is None or message.problem.strip(), message
        message.describe()
        message_notes(message)


ESP_KEYS = EspSaKeys(0x0000ABCD, I, R, "ENCR_NULL", "AUTH_HMAC_SHA2_256_128", b"", bytes(range(32)))


def seal_esp(plaintext: bytes) -> bytes:
    """An ESP packet ESP_KEYS verify: NULL encryption, so the plaintext (payload, padding, pad length, next
    header) is exactly the bytes given, and any of them reach scapy's ESP and inner-packet decoding."""
    unsigned = struct.pack("!II", ESP_KEYS.spi, 1) + plaintext
    mac = hmac.HMAC(ESP_KEYS.auth_key, hashes.SHA256())
    mac.update(unsigned)
    return unsigned + mac.finalize()[:16]


@st.composite
def esp_plaintext(draw):
    """What ESP carries: an IP packet of the captures (damaged) or junk, then an RFC 4303 trailer or junk."""
    inner = draw(sometimes_junk(damaged([f[14:] for f in FRAMES[:40]]), 80))
    pad_length, next_header = draw(st.integers(0, 255)), draw(st.sampled_from([4, 41, 1, 6, 17, 59, 255]))
    trailer = draw(st.one_of(st.binary(max_size=4),   # RFC 4303 2.4: padding 1, 2, 3, ..., its length, next header
                             st.just(bytes(range(1, min(pad_length, 8) + 1)) + bytes([pad_length, next_header]))))
    return inner + trailer


@settings(fuzz, max_examples=400)
@given(st.one_of(esp_plaintext().map(seal_esp), st.binary(max_size=100)), st.sampled_from([(I, R), (I6, R6)]))
def test_esp_decrypts_or_says_why(esp, addresses):
    """decrypt_esp's contract: never raises; a packet scapy cannot take apart is its `problem`."""
    keys = replace(ESP_KEYS, src=addresses[0], dst=addresses[1])
    opened = crypto.decrypt_esp(esp, keys.src, keys.dst, keys)
    assert opened.packet is not None or opened.problem
    spi, seq = struct.unpack_from("!II", esp.ljust(8, b"\0"))
    for inner in open_esp([EspPacket(0.0, keys.src, keys.dst, spi, seq, esp)], [keys]):
        inner.describe()


# --- VXLAN and Geneve ------------------------------------------------------------------------------------

@settings(fuzz, max_examples=300)
@given(sometimes_junk(damaged([s[8:] for s in OVERLAY_SEGMENTS]), 40))
def test_vxlan_header_decoder_decodes_or_raises_malformed(data):
    """decode_vxlan's contract: a header from any 8 bytes, _Malformed on fewer (the reader marks the frame)."""
    try:
        header = vxlan_wire.decode_vxlan(data)
    except vxlan_wire._Malformed:
        assert len(data) < vxlan_wire.VXLAN_HEADER.size
        return
    header.describe()


@settings(fuzz, max_examples=800)
@given(sometimes_junk(damaged([s[8:] for s in OVERLAY_SEGMENTS], lambda d: [(0, 1, "big"), (11, 1, "big")]), 60))
def test_geneve_header_decoder_decodes_or_raises_malformed(data):
    """decode_geneve's contract: the header and where the inner frame starts, or _Malformed (_Partial when
    the fixed part was read but not the options)."""
    try:
        header, end = vxlan_wire.decode_geneve(data)
    except vxlan_wire._Partial as partial:
        partial.header.describe()
        return
    except vxlan_wire._Malformed:
        return
    assert end <= len(data)
    header.describe()


@settings(fuzz, max_examples=800)
@given(sometimes_junk(damaged(INNER_FRAMES, frame_length_fields), 120),
       st.sampled_from([vxlan_wire.ETHERNET_BRIDGING, 0x0800, 0x86DD, 0x0806, 0]))
def test_inner_frame_decoder_never_raises(data, protocol):
    """decode_inner's contract: never raises; a frame cut short or undecodable says why."""
    if protocol in (0x0800, 0x86DD):
        data = data[14:]   # Geneve may carry IP with no Ethernet header
    inner, problem = vxlan_wire.decode_inner(data, protocol)
    assert problem is None or isinstance(problem, str)
    inner.describe()


@st.composite
def overlay_segment(draw):
    """A UDP segment to an overlay port: one of the captures', damaged, or a header of a random kind with
    random bytes after it."""
    if draw(st.booleans()):
        return draw(damaged(OVERLAY_SEGMENTS, segment_length_fields))
    port = draw(st.sampled_from(OVERLAY_PORTS))
    body = draw(st.binary(max_size=80))
    length = draw(st.one_of(st.just(8 + len(body)), st.integers(0, 0xFFFF)))
    return struct.pack("!HHHH", draw(st.integers(1024, 0xFFFF)), port, length, 0) + body


@settings(fuzz, max_examples=300)
@given(st.lists(overlay_segment(), min_size=1, max_size=6), st.sampled_from([(I, R), (I6, R6)]))
def test_every_overlay_datagram_is_a_frame_decoded_or_marked_malformed(segments, addresses):
    """Below Wire.from_pcap's per-frame safety net: each datagram to an overlay port is one frame, its
    inner frame decoded or the frame marked malformed; the transcript and the ladder describe them all."""
    segments = [s for s in segments if len(s) >= 4 and set(struct.unpack_from("!HH", s)) & set(OVERLAY_PORTS)
                and dispatch.owner(Datagram(1, 0.0, 4, I, R, 17, s, 20 + len(s))) == "vxlan"]  # not 1701 -> 4789
    reader = vxlan_wire._Reader()
    for number, segment in enumerate(segments, 1):
        reader._add_udp(number, float(number), *addresses, segment, ip_id=number, df=True)
    wire = reader.wire()
    assert len(wire.frames()) == len(segments), wire.describe()
    assert all(f.inner is not None or f.malformed for f in wire.frames()), wire.describe()
    wire.describe()
    ET.fromstring(render(*vxlan_ladder_events(wire)))


@st.composite
def icmp_error(draw):
    """An ICMP error quoting an overlay datagram: the captures', damaged, or one quoting a damaged segment."""
    if draw(st.booleans()):
        return 4, draw(damaged(ICMP_ERRORS, lambda d: [(8, 1, "big"), (10, 2, "big"), (32, 2, "big")]))
    version = draw(st.sampled_from((4, 6)))
    segment = draw(overlay_segment())[:draw(st.integers(0, 40))]
    if version == 4:
        quoted = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(segment), 0, 0, 64, 17, 0, socket.inet_aton(I),
                             socket.inet_aton(R))
    else:
        quoted = struct.pack("!IHBB16s16s", 6 << 28, len(segment), 17, 64, socket.inet_pton(socket.AF_INET6, I6),
                             socket.inet_pton(socket.AF_INET6, R6))
    kind = draw(st.sampled_from(vxlan_wire.ICMP_ERROR_TYPES[version]))
    return version, bytes([kind, draw(st.integers(0, 255))]) + bytes(6) + quoted + segment


@settings(fuzz, max_examples=400)
@given(icmp_error())
def test_icmp_errors_quoting_overlay_datagrams_never_raise(error):
    version, icmp = error
    reader = vxlan_wire._Reader()
    reader._add_icmp_error(1, 0.0, R, I, version, icmp)
    for e in reader.wire().icmp_errors():
        e.describe()


# --- whole frames and files ------------------------------------------------------------------------------

@st.composite
def ethernet_frame(draw):
    """An Ethernet frame: one of the captures', damaged (fragment offsets and flags included), or an IPv4
    fragment of a datagram to an IPsec or overlay port."""
    if draw(st.integers(0, 3)):
        return draw(damaged(FRAMES, frame_length_fields))
    port = draw(st.sampled_from(IPSEC_PORTS + OVERLAY_PORTS))
    datagram = make.udp(port, port, draw(st.binary(max_size=60)))
    start = draw(st.integers(0, len(datagram) // 8)) * 8
    piece = datagram[start:start + draw(st.integers(0, 64))]
    more = start + len(piece) < len(datagram)
    return make.ether(make.ipv4(I, R, 17, piece, ident=draw(st.integers(0, 3)),
                                flags_offset=(0x2000 if more else 0) | start // 8))


@settings(fuzz, max_examples=150)
@given(st.lists(ethernet_frame(), min_size=1, max_size=8))
def test_frames_through_both_capture_readers_never_raise(frames):
    """Below both readers' per-datagram safety net: link and IP layers and IP reassembly (harness.packets),
    then the IPsec and overlay decoders; then each protocol's transcript and ladder of what was read."""
    ipsec, overlay = IpsecReader(), vxlan_wire._Reader()
    for datagram in Datagrams(io.BytesIO(make.pcap(frames))):
        ipsec.add(datagram)
        overlay.add(datagram)
    wire = ipsec.wire()
    decrypted = decrypt_ike(wire, [TEST_KEYS])
    decrypted.describe()
    inner = open_esp(ipsec.esp_packets, [ESP_KEYS])
    ET.fromstring(render(*ipsec_ladder_events(decrypted, wire, inner)))
    overlay.wire().describe()
    ET.fromstring(render(*vxlan_ladder_events(overlay.wire())))


MAGICS = [*transcript_cli.PCAP_MAGICS, transcript_cli.PCAPNG_MAGIC]


@settings(fuzz, max_examples=150)
@given(st.one_of(st.binary(max_size=200), st.sampled_from(MAGICS).flatmap(lambda m: st.binary(max_size=200).map(
    lambda rest: m + rest)), damaged(CAPTURE_FILES, capture_length_fields), damaged(CAPTURE_FILES,
                                                                                     capture_length_fields)))
def test_any_file_is_read_as_a_capture_or_refused_in_one_line(scratch, data):
    """read_capture's contract: a Capture (damage listed), or NotACapture; its datagrams are then sorted by the
    dispatch table, which never raises. Both protocols' readers, transcripts and ladders never raise on a file."""
    scratch.write_bytes(data)
    try:
        capture = transcript_cli.read_capture(scratch)
    except transcript_cli.NotACapture:
        assert data[:4] not in MAGICS
    else:
        for datagram in capture.datagrams:
            datagram.describe()
            dispatch.claim(datagram)
    for dissector in (ipsec_dissector, vxlan_dissector):
        dissector.transcript(scratch)
        ET.fromstring(dissector.ladder(scratch))
