"""Writes ipsec_synthetic.pcap: one IKEv2 negotiation with NAT-T as the wire would show it, plus the damaged
packets a reader must survive. Deterministic (fixed times, SPIs, MACs, nonces), so re-running it
reproduces the checked-in file byte for byte.

    python tests/data/make_ipsec_pcaps.py

What is in it (I = 198.18.0.2, R = 198.18.0.3, a third peer P = 198.18.0.4):
   0  I->R 500   IKE_SA_INIT #0 request   SA KE(19) Nonce N(NAT_DETECTION_SOURCE_IP) N(NAT_DETECTION_DESTINATION_IP)
   1  R->I 500   IKE_SA_INIT #0 response  N(INVALID_KE_PAYLOAD) data=0x000e (wants group 14)
   2  I->R 500   IKE_SA_INIT #0 request   SA KE(14) Nonce N(NAT_...SOURCE_IP) N(NAT_...DESTINATION_IP)
   3  R->I 500   IKE_SA_INIT #0 response  SA KE(14) Nonce N(NAT_...SOURCE_IP) N(NAT_...DESTINATION_IP)
   4  I->R 4500  non-ESP marker + IKE_AUTH #1 request  SK
   5  R->I 4500  non-ESP marker + IKE_AUTH #1 response SK
   6- I->R 4500  ESP-in-UDP spi 0xc0000001 seq 1..3, interleaved with R->I spi 0xc0000002 seq 1..2
  11  I->R 4500  NAT keepalive (0xff)
  12  P->R       plain ESP (IP protocol 50) spi 0xc0000003 seq 7
  13  I->R 4500  a 3-byte UDP payload (truncated: neither IKE nor ESP)          -> malformed
  14  I->R 500   INFORMATIONAL #2 whose Notify claims 200 bytes in a 40-byte message -> malformed
"""
from __future__ import annotations

from pathlib import Path

from scapy.contrib.ikev2 import (IKEv2, IKEv2_Encrypted, IKEv2_KE, IKEv2_Nonce, IKEv2_Notify, IKEv2_Proposal,
                                 IKEv2_SA, IKEv2_Transform)
from scapy.layers.inet import IP, UDP
from scapy.layers.ipsec import ESP, NON_ESP
from scapy.layers.l2 import Ether
from scapy.packet import Raw
from scapy.utils import wrpcap

HERE = Path(__file__).resolve().parent
SYNTHETIC = HERE / "ipsec_synthetic.pcap"

T0 = 1_700_000_000.0
INITIATOR, RESPONDER, PLAIN_PEER = "198.18.0.2", "198.18.0.3", "198.18.0.4"
MACS = {INITIATOR: "02:00:00:00:00:02", RESPONDER: "02:00:00:00:00:03", PLAIN_PEER: "02:00:00:00:00:04"}

FIRST_ISPI = bytes.fromhex("1111111111111111")
ISPI = bytes.fromhex("2222222222222222")
RSPI = bytes.fromhex("3333333333333333")
NO_SPI = bytes(8)
ESP_OUT, ESP_BACK, ESP_PLAIN = 0xC0000001, 0xC0000002, 0xC0000003

INITIATOR_FLAG, RESPONDER_FLAG = "Initiator", "Response"  # I on the initiator's requests, R on the responder's answers
IKE_SA_INIT, IKE_AUTH, INFORMATIONAL = 34, 35, 37
NAT_SOURCE, NAT_DESTINATION, INVALID_KE, INITIAL_CONTACT = 16388, 16389, 17, 16384
IDI, IDR = 35, 36


def ipv4(src: str, dst: str, **fields):
    return Ether(src=MACS[src], dst=MACS[dst]) / IP(src=src, dst=dst, id=0, **fields)


def ike_sa(group: int):
    transforms = (IKEv2_Transform(transform_type="Encryption", transform_id=20, length=12, key_length=0x800E0100)
                  / IKEv2_Transform(transform_type="PRF", transform_id=5)
                  / IKEv2_Transform(transform_type="GroupDesc", transform_id=group))
    return IKEv2_SA(prop=IKEv2_Proposal(proposal=1, proto="IKE", trans_nb=3, trans=transforms))


def sa_init_offer(ispi: bytes, rspi: bytes, flags: str, group: int, key_bytes: int):
    return (IKEv2(init_SPI=ispi, resp_SPI=rspi, exch_type=IKE_SA_INIT, flags=flags, id=0)
            / ike_sa(group)
            / IKEv2_KE(group=group, ke=bytes([0x4B]) * key_bytes)
            / IKEv2_Nonce(nonce=bytes([0x4E]) * 32)
            / IKEv2_Notify(type=NAT_SOURCE, notify=bytes([0x53]) * 20)
            / IKEv2_Notify(type=NAT_DESTINATION, notify=bytes([0x44]) * 20))


def packets():
    yield ipv4(INITIATOR, RESPONDER) / UDP(sport=500, dport=500) / sa_init_offer(
        FIRST_ISPI, NO_SPI, INITIATOR_FLAG, group=19, key_bytes=64)
    yield ipv4(RESPONDER, INITIATOR) / UDP(sport=500, dport=500) / (
        IKEv2(init_SPI=FIRST_ISPI, resp_SPI=NO_SPI, exch_type=IKE_SA_INIT, flags=RESPONDER_FLAG, id=0)
        / IKEv2_Notify(type=INVALID_KE, notify=(14).to_bytes(2, "big")))
    yield ipv4(INITIATOR, RESPONDER) / UDP(sport=500, dport=500) / sa_init_offer(
        ISPI, NO_SPI, INITIATOR_FLAG, group=14, key_bytes=256)
    yield ipv4(RESPONDER, INITIATOR) / UDP(sport=500, dport=500) / sa_init_offer(
        ISPI, RSPI, RESPONDER_FLAG, group=14, key_bytes=256)
    yield ipv4(INITIATOR, RESPONDER) / UDP(sport=4500, dport=4500) / NON_ESP() / (
        IKEv2(init_SPI=ISPI, resp_SPI=RSPI, exch_type=IKE_AUTH, flags=INITIATOR_FLAG, id=1)
        / IKEv2_Encrypted(next_payload=IDI, load=bytes([0xE1]) * 96))
    yield ipv4(RESPONDER, INITIATOR) / UDP(sport=4500, dport=4500) / NON_ESP() / (
        IKEv2(init_SPI=ISPI, resp_SPI=RSPI, exch_type=IKE_AUTH, flags=RESPONDER_FLAG, id=1)
        / IKEv2_Encrypted(next_payload=IDR, load=bytes([0xE2]) * 80))
    for spi, seq in [(ESP_OUT, 1), (ESP_BACK, 1), (ESP_OUT, 2), (ESP_OUT, 3), (ESP_BACK, 2)]:
        src, dst = (INITIATOR, RESPONDER) if spi == ESP_OUT else (RESPONDER, INITIATOR)
        yield ipv4(src, dst) / UDP(sport=4500, dport=4500) / ESP(spi=spi, seq=seq, data=bytes([seq]) * 48)
    yield ipv4(INITIATOR, RESPONDER) / UDP(sport=4500, dport=4500) / Raw(b"\xff")
    yield ipv4(PLAIN_PEER, RESPONDER, proto=50) / ESP(spi=ESP_PLAIN, seq=7, data=bytes(48))
    yield ipv4(INITIATOR, RESPONDER) / UDP(sport=4500, dport=4500) / Raw(b"\x12\x34\x56")
    yield ipv4(INITIATOR, RESPONDER) / UDP(sport=500, dport=500) / (
        IKEv2(init_SPI=ISPI, resp_SPI=RSPI, exch_type=INFORMATIONAL, flags=INITIATOR_FLAG, id=2)
        / IKEv2_Notify(type=INITIAL_CONTACT, length=200, notify=b"\x00\x00\x00\x00"))


def write_synthetic(path: Path = SYNTHETIC) -> int:
    frames = []
    for number, packet in enumerate(packets()):
        packet.time = T0 + number / 10
        frames.append(packet)
    wrpcap(str(path), frames, linktype=1)
    return len(frames)


def main() -> None:
    print(f"wrote {write_synthetic()} frames to {SYNTHETIC}")


if __name__ == "__main__":
    main()
