"""IPsec for `overlay-interop transcript`: which frames are IPsec, and the transcript (and ladder) of a capture
a user has, decrypted with keys from key files (--keys) and daemon logs (--keys-from).

The command (harness.transcript_cli) finds this module by name, as it finds any protocol's `dissector`; which
datagrams are IPsec's (IKE on UDP 500 and 4500, ESP-in-UDP on 4500, ESP) the dispatch table says
(harness.protocols.dispatch):

    load_keys(key_files, logs, vendors) -> KeySet               the keys of --keys and --keys-from, before any output
    transcript(capture, keys_from=(), vendors={}, keys=None) -> str  the decrypted transcript
                                                                (harness.protocols.ipsec.transcript)
    ladder(capture, keys_from=(), vendors={}, keys=None) -> str      the ladder diagram, SVG

Keys: key files (--keys: Wireshark's and tcpdump's, keyfiles.py) and daemon logs (--keys-from). Which vendor
wrote a log is not ours to know: every vendor of the registry whose vendor.toml declares an IPsec key-log
parser (`[protocols.ipsec] keylog = "keylog:parse"`, a function `parse(log_text) -> (ike_keys, esp_keys)`) is
asked for the keys in each log; what they find is pooled. The command loads them once, before it prints
anything (load_keys), so a bad key file is one error and no half transcript.
"""
from __future__ import annotations

from pathlib import Path
from typing import Mapping, Sequence

from harness.errors import HarnessError
from harness.protocols.dispatch import owner
from harness.protocols.ipsec.keyfiles import KeySet, key_format, read_key_files
from harness.protocols.ipsec.keys import EspSaKeys, IkeSaKeys

PROTOCOL = "ipsec"


def claims(datagram) -> bool:
    """What the dispatch table gives IPsec: IKE (UDP 500, or 4500 behind the non-ESP marker), ESP-in-UDP (4500)
    and plain ESP (IP protocol 50)."""
    return owner(datagram) == PROTOCOL


def _name(capture) -> str:
    return Path(getattr(capture, "name", capture)).name


def _parsers(vendors: Mapping) -> list[tuple[str, object]]:
    """(vendor, its key-log parser) for each vendor that declares one for IPsec."""
    found = []
    for name, vendor in sorted(vendors.items()):
        parse = vendor.keylog(PROTOCOL)
        if parse is not None:
            found.append((name, parse))
    return found


def load_keys(key_files: Sequence[Path] = (), logs: Sequence[Path] = (), vendors: Mapping = {}) -> KeySet:
    """Every key the key files and the logs give, with one line per file saying what. Raises ConfigError for a
    key file that cannot be read or a line in no known format (keyfiles.read_key_files), HarnessError for a
    log that cannot be read or when no vendor declares a key-log parser."""
    found = read_key_files(key_files)
    ike, esp, report = _log_keys(logs, vendors)
    found.ike += ike
    found.esp += esp
    found.report += report
    return found


def _log_keys(logs: Sequence[Path], vendors: Mapping) -> tuple[list[IkeSaKeys], list[EspSaKeys], list[str]]:
    if not logs:
        return [], [], []
    parsers = _parsers(vendors)
    if not parsers:
        raise HarnessError("--keys-from: no vendor in the registry declares an IPsec key-log parser "
                           "(vendor.toml: [protocols.ipsec] keylog = \"<module>:<function>\")")
    ike: list[IkeSaKeys] = []
    esp: list[EspSaKeys] = []
    report = []
    for log in logs:
        try:
            text = Path(log).read_text(errors="replace")
        except OSError as exc:
            raise HarnessError(f"{log}: cannot read it ({exc.strerror or exc})") from None
        found_ike, found_esp, by = 0, 0, []
        for name, parse in parsers:
            try:
                i, e = parse(text)
            except Exception as exc:  # a vendor parser on a log it was never meant to read
                report.append(f"keys: {log}: the {name} key-log parser failed ({type(exc).__name__}: {exc})")
                continue
            if i or e:
                by.append(name)
            found_ike, found_esp = found_ike + len(i), found_esp + len(e)
            ike += i
            esp += e
        where = f" (read by {', '.join(by)})" if by else ""
        hint = ""
        if not by and key_format(text):   # a key file given as a log: say where it goes
            hint = f" (it is a {key_format(text)} file: give it with --keys)"
        report.append(f"keys: {log}: {found_ike} IKE SA key set(s), {found_esp} ESP SA key set(s){where}{hint}")
    return ike, esp, report


def transcript(capture, keys_from: Sequence[Path] = (), vendors: Mapping = {}, keys: KeySet | None = None) -> str:
    """`capture`: a harness.packets.Capture already read, or a capture's path. With the keys load_keys gave
    (`keys`), or else with those of the logs `keys_from`; IKEv1 keys (an ikev1_decryption_table) open IKEv1."""
    from harness.protocols.ipsec.transcript import transcript as ipsec_transcript
    keys = keys if keys is not None else load_keys((), keys_from, vendors)
    return "\n".join([*keys.report, ipsec_transcript(capture, [*keys.ike, *keys.ikev1], keys.esp)])


def ladder(capture, keys_from: Sequence[Path] = (), vendors: Mapping = {}, keys: KeySet | None = None) -> str:
    from harness.protocols.ipsec.ladder import ladder as ipsec_ladder
    keys = keys if keys is not None else load_keys((), keys_from, vendors)
    return ipsec_ladder(capture, [*keys.ike, *keys.ikev1], keys.esp, title=f"{PROTOCOL}: {_name(capture)}")
