"""IPsec for `overlay-interop transcript`: which frames are IPsec, and the transcript (and ladder) of a capture
a user has, decrypted with keys taken from daemon logs (--keys-from).

The command (harness.transcript_cli) finds this module by name, as it finds any protocol's `dissector`; which
datagrams are IPsec's (IKE on UDP 500 and 4500, ESP-in-UDP on 4500, ESP) the dispatch table says
(harness.protocols.dispatch):

    transcript(capture, keys_from=(), vendors={}) -> str  the decrypted transcript (harness.protocols.ipsec.transcript)
    ladder(capture, keys_from=(), vendors={}) -> str      the ladder diagram, SVG

Keys: which vendor wrote a log is not ours to know. Every vendor of the registry that speaks IPsec and ships a
`keylog.py` with `parse(log_text) -> (ike_keys, esp_keys)` (vendors/strongswan/keylog.py does) is asked for
the keys in each log; what they find is pooled.
"""
from __future__ import annotations

import importlib
from pathlib import Path
from typing import Mapping, Sequence

from harness.errors import HarnessError
from harness.protocols.dispatch import owner
from harness.protocols.ipsec.keys import EspSaKeys, IkeSaKeys

PROTOCOL = "ipsec"
KEYLOG_MODULE = "keylog"


def claims(datagram) -> bool:
    """What the dispatch table gives IPsec: IKE (UDP 500, or 4500 behind the non-ESP marker), ESP-in-UDP (4500)
    and plain ESP (IP protocol 50)."""
    return owner(datagram) == PROTOCOL


def _name(capture) -> str:
    return Path(getattr(capture, "name", capture)).name


def _parsers(vendors: Mapping) -> list[tuple[str, object]]:
    from harness.vendor import VENDOR_PACKAGE
    found = []
    for name, vendor in sorted(vendors.items()):
        if PROTOCOL not in vendor.protocols or not (vendor.folder / f"{KEYLOG_MODULE}.py").is_file():
            continue
        vendor.adapter_class()  # registers the vendor folder as package overlay_interop_vendors.<name>
        module = importlib.import_module(f"{VENDOR_PACKAGE}.{name}.{KEYLOG_MODULE}")
        if callable(getattr(module, "parse", None)):
            found.append((name, module.parse))
    return found


def load_keys(logs: Sequence[Path], vendors: Mapping) -> tuple[list[IkeSaKeys], list[EspSaKeys], list[str]]:
    """The keys the vendors' key-log parsers find in `logs`, and one line per log saying what was found.
    Raises HarnessError (one line) for a log that cannot be read, or when no vendor can parse key logs."""
    if not logs:
        return [], [], []
    parsers = _parsers(vendors)
    if not parsers:
        raise HarnessError("--keys-from: no vendor in the registry ships a keylog.py for IPsec")
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
        report.append(f"keys: {log}: {found_ike} IKE SA key set(s), {found_esp} ESP SA key set(s){where}")
    return ike, esp, report


def transcript(capture, keys_from: Sequence[Path] = (), vendors: Mapping = {}) -> str:
    """`capture`: a harness.packets.Capture already read, or a capture's path."""
    from harness.protocols.ipsec.transcript import transcript as ipsec_transcript
    ike, esp, report = load_keys(keys_from, vendors)
    return "\n".join([*report, ipsec_transcript(capture, ike, esp)])


def ladder(capture, keys_from: Sequence[Path] = (), vendors: Mapping = {}) -> str:
    from harness.protocols.ipsec.ladder import ladder as ipsec_ladder
    ike, esp, _report = load_keys(keys_from, vendors)
    return ipsec_ladder(capture, ike, esp, title=f"{PROTOCOL}: {_name(capture)}")
