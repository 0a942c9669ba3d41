"""`overlay-interop transcript FILE [--keys PATH ...] [--keys-from LOG ...] [--ladder OUT.svg]`: the transcript of
any capture.

The command knows no protocol. The capture (a file, or "-" for stdin, or a FIFO) is read once by the harness's
one capture reader (harness.packets), which says where the file is damaged and gives the IP datagrams,
reassembled; the dispatch table (harness.protocols.dispatch) gives each datagram to at most one protocol, and the
capture, already read, is handed to every protocol that was given some of it. A protocol takes part by shipping
a module `harness/protocols/<name>/dissector.py` with

    transcript(capture, keys_from=(), vendors={}) -> str    the protocol's transcript of the capture
    ladder(capture, keys_from=(), vendors={}) -> str        optional: a ladder diagram, SVG
    load_keys(key_files, logs, vendors) -> keys             optional: the protocol's keys from --keys files or
                                                            folders and --keys-from logs, loaded before any output;
                                                            then transcript() and ladder() get them as `keys=`

(`capture`: a harness.packets.Capture), found by name under harness.protocols.known(), as the pytest plugin finds
each protocol's fixtures, and by a row of its own in the dispatch table.

Never a traceback: a file that is not a capture is one line on stderr and exit status 1; a key file that
cannot be read or has a line in no known format is one line naming the file and line, exit status 2; a damaged
capture is transcribed as far as it can be, its damage marked "malformed:", exit status 0.
"""
from __future__ import annotations

import importlib
import importlib.util
import os
import sys
from collections import Counter
from pathlib import Path
from types import ModuleType
from typing import Iterator

from harness import protocols
from harness.errors import ConfigError, HarnessError
from harness.packets import LINKTYPES, PCAP_MAGICS, PCAPNG_MAGIC, Capture, Datagram, NotACapture, read
from harness.protocols.dispatch import DISPATCH

DISSECTOR = "dissector"
OTHERS_SHOWN = 8

__all__ = ["PCAP_MAGICS", "PCAPNG_MAGIC", "NotACapture", "Datagram", "read_capture", "transcribe"]


def read_capture(source) -> Capture:
    """Every frame of a pcap or pcapng capture (a path, or "-" for stdin), read once. Raises NotACapture (one
    line) for anything that is not one; damage is listed in the Capture."""
    return read(source)


# --- protocols ----------------------------------------------------------------------------------------------

def dissectors() -> dict[str, ModuleType]:
    """Each protocol package's `dissector` module, by protocol name."""
    found = {}
    for name in protocols.known():
        module = f"{protocols.__name__}.{name}.{DISSECTOR}"
        if importlib.util.find_spec(module):
            found[name] = importlib.import_module(module)
    return found


def _claimed(modules: dict[str, ModuleType], capture: Capture) -> tuple[dict[str, int], Counter]:
    """Frames per protocol the dispatch table gives them to (a reassembled datagram counts each of its
    fragments), and the rest by kind, counted in capture order."""
    counts: dict[str, int] = {}
    rest: list[tuple[int, str, int]] = [(number, kind, 1) for number, kind in capture.other_frames]
    for datagram in capture.datagrams:
        owner = DISPATCH.owner(datagram)
        frames = len(datagram.numbers)
        if owner in modules:
            counts[owner] = counts.get(owner, 0) + frames
        else:
            rest.append((min(datagram.numbers), datagram.describe(), frames))
    others: Counter = Counter()
    for _number, kind, frames in sorted(rest):
        others[kind] += frames
    return counts, others


def _vendors(needed: bool):
    if not needed:
        return {}
    from harness.vendor import load_registry
    folder = Path(__file__).resolve().parent.parent / "vendors"
    if not folder.is_dir():
        raise HarnessError(f"--keys-from: {folder}: not found; key logs are read by the vendors' keylog.py")
    # One reader per folder: a variant or a version reads its logs with its folder's keylog (three strongSwan
    # versions asked would read every log three times)
    return {name: v for name, v in load_registry(folder).items() if v.label is None}


def transcribe(path: Path | str, keys_from: list[Path], ladder: Path | None = None,
               keys: list[Path] = ()) -> Iterator[str]:
    """The lines the command prints. Raises NotACapture/HarnessError/ConfigError (one line) before printing
    anything. `path`: the capture, or "-" for stdin."""
    for log in keys_from:
        if not Path(log).is_file():
            raise HarnessError(f"{log}: no such file (--keys-from)")
    for key_path in keys:
        if not Path(key_path).exists():
            raise ConfigError(str(key_path), "--keys", "no such file or folder")
    if ladder is not None and (Path(ladder).is_dir() or not Path(ladder).parent.is_dir()):
        raise ConfigError("--ladder", str(ladder), "is a folder; give the diagram's file name, e.g. ladder.svg"
                          if Path(ladder).is_dir() else "its folder does not exist")
    vendors = _vendors(bool(keys_from))
    modules = dissectors()
    loaded = {name: module.load_keys(list(keys), list(keys_from), vendors)
              for name, module in modules.items() if hasattr(module, "load_keys")}
    if keys and not loaded:
        raise ConfigError("--keys", ", ".join(map(str, keys)), "no protocol here reads key files")
    if keys and not any(len(getattr(found, kind, ())) for found in loaded.values() for kind in ("ike", "ikev1", "esp")):
        raise ConfigError("--keys", ", ".join(map(str, keys)), "holds no key at all (" + "; ".join(
            line for found in loaded.values() for line in getattr(found, "report", ())) + ")")
    capture = read_capture(path)
    links = ", ".join(f"linktype {t} ({LINKTYPES.get(t, 'unknown')})" for t in sorted(capture.linktypes))
    yield f"{capture.name}: {capture.format}, {links or 'no link type'}, {len(capture.frames)} frame(s)"
    for damage in capture.damage:
        yield f"malformed: {damage}"
    undecodable = sorted(t for t in capture.linktypes if t not in LINKTYPES)
    if undecodable:
        yield f"malformed: linktype {', '.join(map(str, undecodable))}: no decoder for this link layer"
    counts, others = _claimed(modules, capture)
    for name, module in modules.items():
        if not counts.get(name):
            continue
        yield ""
        yield f"== {name}: {counts[name]} frame(s)"
        try:
            yield module.transcript(capture, keys_from, vendors, **_keys_of(loaded, name))
        except HarnessError:
            raise
        except Exception as exc:  # a decoder bug must not cost the user the rest of the output
            yield f"malformed: the {name} decoder gave up on this capture ({type(exc).__name__}: {exc})"
        if ladder is not None and hasattr(module, "ladder"):
            out = ladder if len(counts) == 1 else ladder.with_suffix(f".{name}{ladder.suffix}")
            try:
                out.write_text(module.ladder(capture, keys_from, vendors, **_keys_of(loaded, name)))
                yield f"ladder diagram: {out}"
            except OSError as exc:
                raise HarnessError(f"{out}: cannot write the ladder diagram ({exc.strerror or exc})") from None
            except Exception as exc:
                yield f"malformed: the {name} ladder gave up on this capture ({type(exc).__name__}: {exc})"
    if not counts:
        yield ""
        yield f"no frame of a known protocol ({', '.join(modules) or 'none'})"
    if others:
        shown = ", ".join(f"{n} {kind}" for kind, n in others.most_common(OTHERS_SHOWN))
        more = f", and {len(others) - OTHERS_SHOWN} more kinds" if len(others) > OTHERS_SHOWN else ""
        yield ""
        yield f"not decoded: {sum(others.values())} frame(s): {shown}{more}"


def _keys_of(loaded: dict, name: str) -> dict:
    """What a protocol that loads keys up front is handed back; nothing for one that does not."""
    return {"keys": loaded[name]} if name in loaded else {}


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser("transcript", help="print the transcript of a capture (pcap or pcapng)",
                                   description="Print what a capture (pcap or pcapng) shows, protocol by protocol: "
                                               "IPsec decoded, and decrypted with keys from key files or daemon "
                                               "logs. A damaged capture is read as far as it goes, its damage "
                                               "marked 'malformed:'. The capture may be a FIFO, or '-' for "
                                               "standard input. Exit status: 0 transcribed, 1 not a capture, "
                                               "2 a bad key file or option.")
    parser.add_argument("pcap", type=Path, help="the capture; - for standard input")
    parser.add_argument("--keys", type=Path, action="append", default=[], metavar="PATH",
                        help="a key file, or a folder of them: Wireshark's ikev2_decryption_table, "
                             "ikev1_decryption_table and esp_sa, or tcpdump's -E secrets file (a pair's keys/ "
                             "folder works as it is); may be given more than once")
    parser.add_argument("--keys-from", type=Path, action="append", default=[], metavar="LOG",
                        help="a daemon log with exported session keys (strongSwan: ike/chd log level 4); "
                             "may be given more than once")
    parser.add_argument("--ladder", type=Path, metavar="OUT.svg", help="also write a ladder diagram (SVG)")


def cmd_transcript(args) -> int:
    try:
        lines = transcribe(args.pcap, args.keys_from, args.ladder, args.keys)
        for line in lines:
            print(line)
        sys.stdout.flush()
    except ConfigError as exc:   # bad input the user fixes: a key file's line, an option
        print(f"overlay-interop: error: {exc}", file=sys.stderr)
        return 2
    except HarnessError as exc:
        print(f"overlay-interop: error: {exc}", file=sys.stderr)
        return 1
    except BrokenPipeError:  # `... | head`: the reader has all it wants
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except Exception as exc:  # a bug of ours: still one line, naming the file
        print(f"overlay-interop: error: {args.pcap}: cannot transcribe it ({type(exc).__name__}: {exc})",
              file=sys.stderr)
        return 1
    return 0
