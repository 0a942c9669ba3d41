"""The IKE description (harness.protocols.ipsec.ike) against tshark, field by field, frame by frame, on captures built
with it (tests/data/ike/make_ike_pcaps.py): IKEv1 Main Mode, Aggressive Mode with XAUTH and Mode Config, Quick Mode,
Informational (DPD, Delete, a clear NO-PROPOSAL-CHOSEN), NAT-T on 4500 behind the non-ESP marker, RFC 3947 and
draft NAT-D/NAT-OA; IKEv2 with COOKIE, INVALID_KE_PAYLOAD, RFC 9370 additional key exchanges (ML-KEM) in RFC 9242
IKE_INTERMEDIATE, RFC 7383 fragments, IKE_AUTH with CERT and CP, CREATE_CHILD_SA and INFORMATIONAL.

tshark is given the keys in its own tables (ikev1_decryption_table, ikev2_decryption_table) and opens every
encrypted message itself, so the payloads compared include the encrypted ones: this is also the check that the
IKEv1 IV chain (RFC 2409 Appendix B) and the SK/SKF opening are right -- sealed in the generator, opened by tshark and
by the harness independently."""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from support import DATA, load
from harness.protocols.ipsec import ike
from harness.protocols.ipsec.keyfiles import write_key_files
from harness.protocols.ipsec.keys import IkeSaKeys, IkeV1SaKeys
from harness.protocols.ipsec.transcript import NO_KEYS, decrypt_ike

IKE_DATA = DATA / "ike"
make = load("make_ike_pcaps", IKE_DATA / "make_ike_pcaps.py")
needs_tshark = pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark not installed")

KEYS = [IkeV1SaKeys(cookie, key) for cookie, key in make.IKEV1_KEYS.items()] + [
    IkeSaKeys(sa["ispi"], sa["rspi"], "ENCR_AES_CBC_128", "AUTH_HMAC_SHA2_256_128", sa["sk_ei"], sa["sk_er"],
              sa["sk_ai"], sa["sk_ar"]) for sa in (make.SA_A, make.SA_B)]


def test_checked_in_captures_are_what_the_generator_writes(tmp_path):
    assert make.write_all(tmp_path) == {"ikev1_main_mode.pcap": 15, "ikev1_aggressive_xauth.pcap": 12,
                                        "ikev2_intermediate.pcap": 19}
    for name in make.CAPTURES:
        assert (tmp_path / name).read_bytes() == (IKE_DATA / name).read_bytes(), name


# --- what the harness reads, in tshark's terms ------------------------------------------------------------------

def nodes(payloads) -> list:
    """Payloads and the substructures tshark lists as payloads too (proposals, transforms), depth first."""
    out = []
    for payload in payloads:
        out.append(payload)
        if isinstance(payload, ike.SecurityAssociation):
            for proposal in payload.proposals:
                out.append(proposal)
                out += list(proposal.transforms)
    return out


def type_of(node) -> int:
    if isinstance(node, ike.Proposal):
        return 2
    if isinstance(node, (ike.Transform, ike.V1Transform)):
        return 3
    return node.type_number


def next_of(node) -> int:
    return node.more if isinstance(node, (ike.Proposal, ike.Transform, ike.V1Transform)) else node.next_payload


def of(found, cls) -> list:
    return [n for n in found if isinstance(n, cls)]


def attributes(found, cls) -> list:
    return [a for t in of(found, (ike.Transform, ike.V1Transform)) for a in t.attributes if isinstance(a, cls)]


V2_IDS = {1: "encr", 2: "prf", 3: "integ", 4: "dh", 5: "esn"}


def fields(message) -> dict[str, list[str]]:
    """One decrypted message as tshark's -T fields would list it."""
    wire = message.message
    header = wire.decoded
    clear = [p for p in wire.payloads if not isinstance(p, (ike.Encrypted, ike.EncryptedFragment))]
    found = nodes(wire.payloads) + nodes(message.payloads[len(clear):])
    v2_transforms = of(found, ike.Transform)
    notifies = of(found, ike.NOTIFY_CLASSES)
    cfg_attributes = [a for c in of(found, (ike.ModeConfig, ike.Configuration)) for a in c.attributes]

    def notify_data(name: str, field: str) -> list[str]:
        return [str(getattr(n, field)) for n in notifies if n.type == name]

    out = {
        "isakmp.ispi": [wire.ispi.hex()], "isakmp.rspi": [wire.rspi.hex()],
        "isakmp.exchangetype": [str(wire.exchange.number)], "isakmp.messageid": [f"0x{wire.message_id:08x}"],
        "isakmp.flags": [f"0x{wire.flags:02x}"], "isakmp.version": [f"0x{header.major << 4 | header.minor:02x}"],
        "isakmp.length": [str(header.length)],
        "isakmp.nextpayload": [str(header.next_payload)] + [str(next_of(n)) for n in found],
        "isakmp.typepayload": [str(type_of(n)) for n in found],
        "isakmp.payloadlength": [str(n.length) for n in found],
        "isakmp.notify.msgtype": [str(n.type.number) for n in notifies],
        "isakmp.notify.protoid": [str(n.protocol.number) for n in notifies],
        "isakmp.sa.doi": [str(s.doi.number) for s in of(found, ike.V1SecurityAssociation)],
        "isakmp.prop.number": [str(p.number) for p in of(found, ike.Proposal)],
        "isakmp.prop.protoid": [str(p.protocol.number) for p in of(found, ike.Proposal)],
        "isakmp.spi": [n.spi.hex() for n in found if isinstance(n, (ike.Proposal, *ike.NOTIFY_CLASSES)) and n.spi],
        "isakmp.trans.id": [str(t.id.number) for t in of(found, ike.V1Transform)],
        "isakmp.ike.attr.type": [str(a.type.number) for a in attributes(found, ike.IkeAttribute)],
        "isakmp.ipsec.attr.type": [str(a.type.number) for a in attributes(found, ike.IpsecAttribute)],
        "isakmp.ipsec.attr.encap_mode": [str(a.value.number) for a in attributes(found, ike.IpsecAttribute)
                                         if a.type == "Encapsulation Mode"],
        "isakmp.tf.type": [str(t.type.number) for t in v2_transforms],
        **{f"isakmp.tf.id.{name}": [str(t.id.number) for t in v2_transforms if t.type == number]
           for number, name in V2_IDS.items()},
        "isakmp.tf.id": [str(t.id.number) for t in v2_transforms if ike.ADDKE1 <= t.type.number <= ike.ADDKE7],
        "isakmp.ike2.attr.key_length": [str(t.key_length) for t in v2_transforms if t.key_length is not None],
        "isakmp.key_exchange.dh_group": [str(k.group.number) for k in of(found, ike.KeyExchange)],
        "isakmp.id.type": [str(i.id_type.number) for i in of(found, (ike.IDi, ike.V1Identification, ike.NatOa))],
        "isakmp.id.data.fqdn": [i.value for i in of(found, (ike.IDi, ike.V1Identification)) if i.id_type in
                                ("FQDN", "ID_FQDN")],
        "isakmp.delete.spi": [spi.hex() for d in of(found, ike.Delete) for spi in d.spis],
        "isakmp.vid_bytes": [v.vid.hex() for v in of(found, ike.VendorId)],
        "isakmp.cfg.type": [str(c.cfg_type.number) for c in of(found, (ike.ModeConfig, ike.Configuration))],
        "isakmp.cfg.attr.type": [str(a.type.number) for a in cfg_attributes],
        "isakmp.cfg.attr.internal_ip4_address": [str(a.value) for a in cfg_attributes
                                                 if a.type == "INTERNAL_IP4_ADDRESS" and a.value],
        "isakmp.cfg.attr.xauth.user_name": [str(a.value) for a in cfg_attributes
                                            if a.type == "XAUTH_USER_NAME" and a.value],
        "isakmp.cfg.attr.xauth.user_password": [str(a.value) for a in cfg_attributes
                                                if a.type == "XAUTH_USER_PASSWORD" and a.value],
        "isakmp.notify.data.dpd.are_you_there": notify_data("R-U-THERE", "sequence"),
        "isakmp.notify.data.dpd.are_you_there_ack": notify_data("R-U-THERE-ACK", "sequence"),
        "isakmp.notify.data.accepted_dh_group": [str(n.group.number) for n in notifies
                                                 if n.type == "INVALID_KE_PAYLOAD"],
        "isakmp.notify.data.signature_hash_algorithms": [str(h.number) for n in notifies if n.hashes for h in n.hashes],
        "isakmp.frag.number": [str(f.fragment_number) for f in of(found, ike.EncryptedFragment)],
        "isakmp.frag.total": [str(f.total_fragments) for f in of(found, ike.EncryptedFragment)],
        "isakmp.ts.start_ipv4": [s.start for t in of(found, ike.TSi) for s in t.selectors],
        "isakmp.ts.end_ipv4": [s.end for t in of(found, ike.TSi) for s in t.selectors],
        "isakmp.ike.nat_hash": [n.hash.hex() for n in of(found, ike.NatD)],
        "isakmp.ike.nat_original_address_ipv4": [n.address for n in of(found, ike.NatOa)],
        "isakmp.auth.method": [str(a.method.number) for a in of(found, ike.Authentication)],
        "isakmp.cert.encoding": [str(c.encoding.number) for c in of(found, ike.Certificate)],
    }
    return out





def ours(capture: str) -> list[dict[str, list[str]]]:
    messages = decrypt_ike(IKE_DATA / capture, KEYS)
    assert not [m.problem for m in messages if m.problem], messages.describe()
    return [fields(m) for m in messages]


def tshark(capture: str, names: list[str], config: Path) -> list[dict[str, list[str]]]:
    command = ["tshark", "-r", str(IKE_DATA / capture), "-Y", "isakmp", "-T", "fields", "-E", "occurrence=a",
               "-E", "aggregator=,", "-E", "separator=/t", *(arg for name in names for arg in ("-e", name))]
    result = subprocess.run(command, capture_output=True, text=True, timeout=60,
                            env={**os.environ, "WIRESHARK_CONFIG_DIR": str(config)})
    assert result.returncode == 0, result.stderr
    assert "Error loading table" not in result.stderr, result.stderr
    rows = []
    for line in result.stdout.splitlines():
        values = line.split("\t")
        rows.append({name: value.split(",") if value else [] for name, value in zip(names, values)})
    return rows


def key_tables(folder: Path) -> Path:
    """Wireshark's two IKE key tables, as the harness writes them for a pair (keyfiles.write_key_files): tshark
    reading them is also the check of the files."""
    written = write_key_files(folder, KEYS, [])
    assert [p.name for p in written] == ["ikev2_decryption_table", "esp_sa", "ikev1_decryption_table", "preferences"]
    assert (folder / "keys" / "ikev1_decryption_table").read_text() == "".join(
        f"{cookie.hex()},{key.hex()}\n" for cookie, key in make.IKEV1_KEYS.items())
    return folder / "keys"


@needs_tshark
@pytest.mark.parametrize("capture", make.CAPTURES)
def test_tshark_agrees_field_by_field(capture, tmp_path):
    mine = ours(capture)
    names = list(mine[0])
    theirs = tshark(capture, names, key_tables(tmp_path))
    assert len(theirs) == len(mine)
    differences = [f"frame {n} {name}: tshark {theirs[n - 1][name]} harness {row[name]}"
                   for n, row in enumerate(mine, 1) for name in names if row[name] != theirs[n - 1][name]]
    assert not differences, "\n".join(differences)
    # the comparison is not vacuous: every field is there in some frame of the three captures together
    assert sum(bool(row[name]) for row in mine for name in names) > 10 * len(mine)


@needs_tshark
def test_every_field_compared_shows_up_in_some_capture():
    shown = {name for capture in make.CAPTURES for row in ours(capture) for name, value in row.items() if value}
    assert shown == set(ours(make.CAPTURES[0])[0]), sorted(set(ours(make.CAPTURES[0])[0]) - shown)


@needs_tshark
def test_without_keys_neither_opens_anything(tmp_path):
    (tmp_path / "empty").mkdir()
    for capture in make.CAPTURES:
        messages = decrypt_ike(IKE_DATA / capture)
        sealed = [n for n, m in enumerate(messages, 1) if m.message.encrypted]
        assert sealed and all(messages[n - 1].problem == NO_KEYS for n in sealed)
        theirs = tshark(capture, ["isakmp.typepayload"], tmp_path / "empty")
        for n in sealed:   # tshark too shows nothing inside: at most the SK/SKF payload itself
            assert set(theirs[n - 1]["isakmp.typepayload"]) <= {"46", "53"}, (capture, n)
