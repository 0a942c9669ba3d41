"""The transcript text and Wireshark's key files, on the real strongSwan captures and the AES-GCM vectors.
The tshark tests read the key files exactly as a person would (WIRESHARK_CONFIG_DIR=<keys> tshark ...)."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from support import load, without_spis
from harness.protocols.ipsec.keyfiles import tshark_command, write_key_files
from harness.protocols.ipsec.keys import EspSaKeys, IkeSaKeys
from harness.protocols.ipsec.transcript import ESP_NO_KEYS, NO_KEYS, bind_ike_keys, transcript
from harness.protocols.ipsec.wire import Wire

DATA = Path(__file__).parent / "data"
ROOT = Path(__file__).parent.parent
PSK, WRONG_PSK, GCM_REKEY = "strongswan_psk_tunnel", "strongswan_wrong_psk", "strongswan_gcm_rekey"


keylog = load("strongswan_keylog", ROOT / "vendors" / "strongswan" / "keylog.py")
vectors = load("gcm_vectors", DATA / "gcm_vectors.py")


def both_logs(case: str) -> tuple[list[IkeSaKeys], list[EspSaKeys]]:
    """What a pair exports: both daemons' keys (each SA twice)."""
    ike, esp = keylog.parse((DATA / f"{case}.initiator.log").read_text())
    ike2, esp2 = keylog.parse((DATA / f"{case}.responder.log").read_text())
    return ike + ike2, esp + esp2


def indented(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.startswith("    ")]


def test_psk_transcript_shows_the_decrypted_exchange_and_pings():
    text = transcript(DATA / f"{PSK}.pcap", *both_logs(PSK))
    lines = without_spis(text).splitlines()
    auth_request = next(i for i, line in enumerate(lines) if "IKE_AUTH mid=1 request(I) Encrypted" in line)
    assert lines[auth_request + 1:auth_request + 8] == [
        "    IDi FQDN initiator.lab", "    N(INITIAL_CONTACT)", "    IDr FQDN responder.lab", "    AUTH shared-key",
        "    SA ESP: ENCR_AES_CBC_128 AUTH_HMAC_SHA2_256_128 NO_ESN spi=0xa457cdb7",
        "    TSi 198.19.1.0-198.19.1.255", "    TSr 198.19.2.0-198.19.2.255"], text
    assert "    SA IKE: ENCR_AES_CBC_128 AUTH_HMAC_SHA2_256_128 PRF_HMAC_SHA2_256 MODP_2048" in lines
    assert "ESP spi=0xe0e82121 198.18.1.2 -> 198.18.1.3 in UDP packets=3 seq=1..3" in lines
    requests = [i for i, line in enumerate(lines) if line.endswith(" ESP spi=0xe0e82121 seq=" + line[-1])]
    assert [re.sub(r"id=\d+", "id=N", lines[i + 1]) for i in requests] == [
        f"    ICMP echo-request 198.19.1.1 > 198.19.2.1 id=N seq={n}" for n in (1, 2, 3)]
    assert sum("ICMP echo-reply 198.19.2.1 > 198.19.1.1" in line for line in lines) == 3
    assert NO_KEYS not in text and "undecryptable" not in text


def test_wrong_psk_transcript_shows_authentication_failed_under_the_response():
    text = transcript(DATA / f"{WRONG_PSK}.pcap", *both_logs(WRONG_PSK))
    lines = text.splitlines()
    response = next(i for i, line in enumerate(lines) if "IKE_AUTH mid=1 response(R)" in line)
    assert lines[response + 1] == "    N(AUTHENTICATION_FAILED)", text
    assert lines[-1] == "no ESP on the wire"


def test_transcript_without_keys_says_so_for_ike_and_esp():
    text = transcript(DATA / f"{PSK}.pcap")
    assert indented(text).count(NO_KEYS) == 2
    assert ESP_NO_KEYS in text.splitlines() and text.count(" ESP spi=") == 6
    assert "IDi" not in text


def test_transcript_of_a_wire_lists_flows_only():
    text = transcript(Wire.from_pcap(DATA / f"{PSK}.pcap"), *both_logs(PSK))
    assert "    IDi FQDN initiator.lab" in text.splitlines()
    assert "ICMP" not in text and "needs the capture file" in text


def test_gcm_rekey_transcript_opens_everything():
    text = transcript(DATA / f"{GCM_REKEY}.pcap", *both_logs(GCM_REKEY))
    assert NO_KEYS not in text and "undecryptable" not in text
    assert text.count("    Delete IKE") == 3 and text.count("ICMP echo-") == 32
    assert "    SA IKE: ENCR_AES_GCM_16_256 PRF_HMAC_SHA2_384 MODP_2048 spi=0x" in text


def test_an_opened_message_with_nothing_inside_says_so():
    text = transcript(DATA / f"{GCM_REKEY}.pcap", *both_logs(GCM_REKEY))
    lines = text.splitlines()
    empty = [lines[i - 1] for i, line in enumerate(lines) if line == "    (empty)"]
    assert empty and all(" INFORMATIONAL mid=" in line for line in empty), text


# --- key files --------------------------------------------------------------------------------------------

HEX = "[0-9a-f]+"
IKE_LINE = re.compile(rf'^{HEX},{HEX},{HEX},{HEX},"[^"]+",(?:{HEX})?,(?:{HEX})?,"[^"]+"$')
ADDRESS = "[0-9a-f.:]+"
ESP_LINE = re.compile(rf'^"IPv[46]","{ADDRESS}","{ADDRESS}","0x[0-9a-f]{{8}}","[^"]+","0x{HEX}","[^"]+","(0x{HEX})?"$')


def test_key_files_have_wiresharks_line_format(tmp_path):
    ike, esp = both_logs(PSK)
    paths = write_key_files(tmp_path, ike, esp)
    assert [p.relative_to(tmp_path).as_posix() for p in paths] == [
        "keys/ikev2_decryption_table", "keys/esp_sa", "keys/preferences"]
    (ike_line,) = paths[0].read_text().splitlines()   # the SA both sides exported, once
    assert IKE_LINE.match(ike_line), ike_line
    assert ike_line.startswith("bdb62db5e395c002,585ecff26300f80f,fbec8a7c338722909bf5d8673346aa61,")
    assert ike_line.split(",")[4] == '"AES-CBC-128 [RFC3602]"' and ike_line.endswith(',"HMAC_SHA2_256_128 [RFC4868]"')
    esp_lines = paths[1].read_text().splitlines()
    assert len(esp_lines) == 2 and all(ESP_LINE.match(line) for line in esp_lines), esp_lines
    assert '"IPv4","198.18.1.2","198.18.1.3","0xe0e82121","AES-CBC [RFC3602]","0x6802b66fc39863b843b0b6dee8ad2536",' \
           '"HMAC-SHA-256-128 [RFC4868]","0xc3c5115a' in paths[1].read_text()
    assert "esp.enable_encryption_decode: TRUE" in paths[2].read_text()


def test_key_files_leave_out_what_wireshark_cannot_use(tmp_path):
    ike, esp = both_logs(GCM_REKEY)
    chacha = EspSaKeys(1, "198.18.0.2", "198.18.0.3", "ENCR_CHACHA20_POLY1305", None, bytes(36), b"")
    table, sas, _ = write_key_files(tmp_path, ike, esp + [chacha])
    lines = table.read_text().splitlines()
    assert lines[0].split(",")[4:] == ['"AES-GCM-256 with 16 octet ICV [RFC5282]"', "", "", '"NONE [RFC4306]"']
    assert lines[1:] == ["# left out: IKE SA keys whose SPIs are unknown"] * 2
    bound = write_key_files(tmp_path / "bound", bind_ike_keys(DATA / f"{GCM_REKEY}.pcap", ike), esp)[0]
    assert len(bound.read_text().splitlines()) == 3 and "#" not in bound.read_text()
    assert sas.read_text().splitlines()[-1] == "# left out: Wireshark has no name for ENCR_CHACHA20_POLY1305"
    assert sum('"AES-GCM with 16 octet ICV [RFC4106]"' in line and line.endswith(',"NULL",""')
               for line in sas.read_text().splitlines()) == 8


def test_tshark_command_points_wireshark_at_the_key_folder():
    command = tshark_command(Path("/r/pairs/a b/capture.pcap"), Path("/r/pairs/a b/keys"))
    assert command == "WIRESHARK_CONFIG_DIR='/r/pairs/a b/keys' tshark -r '/r/pairs/a b/capture.pcap' -V " \
                      "-Y 'isakmp or esp'"


# --- tshark reads the key files ---------------------------------------------------------------------------

needs_tshark = pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark not installed")


def tshark(pcap: Path, config: Path) -> str:
    """tshark -V with `config` as its whole configuration directory (an empty one: no keys)."""
    result = subprocess.run(["tshark", "-r", str(pcap), "-V"], capture_output=True, text=True, timeout=60,
                            env={**os.environ, "WIRESHARK_CONFIG_DIR": str(config)})
    assert result.returncode == 0, result.stderr
    assert "Error loading table" not in result.stderr, result.stderr
    return result.stdout


@needs_tshark
def test_tshark_decrypts_the_psk_capture_with_the_key_files(tmp_path):
    pcap = DATA / f"{PSK}.pcap"
    (tmp_path / "empty").mkdir()
    without = tshark(pcap, tmp_path / "empty")
    assert "initiator.lab" not in without and "Echo (ping)" not in without   # the control: nothing in the clear
    write_key_files(tmp_path, *both_logs(PSK))
    decrypted = tshark(pcap, tmp_path / "keys")
    assert "Identification Data:initiator.lab" in decrypted
    assert "Identification Data:responder.lab" in decrypted
    assert decrypted.count("<HMAC_SHA2_256_128 [RFC4868]>[correct]") == 2
    assert decrypted.count("<HMAC-SHA-256-128 [RFC4868]> [correct]") == 6
    assert decrypted.count("Type: 8 (Echo (ping) request)") == 3 and decrypted.count("Type: 0 (Echo (ping) reply)") == 3


@needs_tshark
def test_tshark_decrypts_aes_gcm_and_fragments_with_the_key_files(tmp_path):
    pcap = tmp_path / "gcm.pcap"
    vectors.write_pcap(pcap)
    ike = IkeSaKeys(vectors.ISPI, vectors.RSPI, "ENCR_AES_GCM_16_256", None, vectors.SK_EI, vectors.SK_ER, b"", b"")
    esp = EspSaKeys(vectors.ESP_SPI, vectors.INITIATOR, vectors.RESPONDER, "ENCR_AES_GCM_16_256", None,
                    vectors.ESP_KEY, b"")
    write_key_files(tmp_path, [ike], [esp])
    decrypted = tshark(pcap, tmp_path / "keys")
    assert "Identification Data:gcm-initiator.lab" in decrypted
    assert "Notify Message Type: AUTHENTICATION_FAILED (24)" in decrypted
    assert "Delete SPI: c0000012" in decrypted and "Notify Message Type: REKEY_SA (16393)" in decrypted  # from SKF
    assert decrypted.count("(16 bytes)[correct]") == 4   # IKE: two SK, two SKF
    assert "<AES-GCM [RFC4106]> [correct]" in decrypted and "Type: 8 (Echo (ping) request)" in decrypted


@needs_tshark
def test_tshark_decrypts_the_real_gcm_rekey_capture_once_keys_are_bound(tmp_path):
    pcap = DATA / f"{GCM_REKEY}.pcap"
    ike, esp = both_logs(GCM_REKEY)
    write_key_files(tmp_path, bind_ike_keys(pcap, ike), esp)
    decrypted = tshark(pcap, tmp_path / "keys")
    assert decrypted.count("Integrity Checksum Data") == 30
    assert decrypted.count("(16 bytes)[correct]") == 30
    assert decrypted.count("<AES-GCM [RFC4106]> [correct]") == 32


@needs_tshark
def test_tshark_reassembles_the_real_ike_fragments_with_the_key_files(tmp_path):
    pcap = DATA / "strongswan_fragmentation.pcap"
    write_key_files(tmp_path, *both_logs("strongswan_fragmentation"))
    decrypted = tshark(pcap, tmp_path / "keys")
    assert "Identification Data:initiator.lab" in decrypted and "Identification Data:responder.lab" in decrypted
    assert decrypted.count("<HMAC_SHA2_256_128 [RFC4868]>[correct]") == 4   # four SKF fragments
    assert "OID: 1.2.840.113549.1.1.12 (sha384WithRSAEncryption)" in decrypted


def test_strongswan_exports_its_ikev1_sa_and_the_remote_access_exchanges_open():
    """vpnc against strongSwan (IKEv1 Aggressive Mode, XAUTH, Mode Config, Quick Mode): charon's "encryption key
    Ka" and the cookies of its natd_chunk make one IKEv1 SA's keys, and they open every encrypted message."""
    from harness.protocols.ipsec.keys import IkeV1SaKeys
    from harness.protocols.ipsec.transcript import decrypt_ike
    ike, esp = keylog.parse((DATA / "vpnc_remote_access.responder.log").read_text())
    wire = Wire.from_pcap(DATA / "vpnc_remote_access.pcap")
    assert [type(k) for k in ike] == [IkeV1SaKeys] and ike[0].icookie == wire.ike("Aggressive Mode")[0].ispi
    opened = decrypt_ike(wire, ike)
    encrypted = [m for m in opened if m.message.encrypted]
    assert len(encrypted) >= 10 and all(m.decrypted for m in encrypted), opened.describe()
    text = transcript(DATA / "vpnc_remote_access.pcap", ike, esp)
    assert "XAUTH_USER_NAME=interop-user" in text and "INTERNAL_IP4_ADDRESS=198.19.1.1" in text
    assert "ICMP echo-request 198.19.1.1 > 198.19.2.1" in text
