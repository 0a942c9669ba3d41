"""`overlay-interop transcript FILE [--keys PATH ...] [--keys-from LOG ...] [--ladder OUT.svg]`: the transcript of
any capture.

The command knows no protocol. It reads the capture's framing itself (pcap or pcapng), saying where the file
is damaged, sorts each frame by what its IP header says (protocol number, UDP/TCP ports), and hands the file
to every protocol that claims some of its frames. A protocol takes part by shipping a module
`harness/protocols/<name>/dissector.py` with

    claims(datagram: Datagram) -> bool                      is this frame ours? (e.g. UDP 1701 for L2TP)
    transcript(path, keys_from=(), vendors={}) -> str       the protocol's transcript of the capture
    ladder(path, keys_from=(), vendors={}) -> str           optional: a ladder diagram, SVG
    load_keys(key_files, logs, vendors) -> keys             optional: the protocol's keys from --keys files or
                                                            folders and --keys-from logs, loaded before any output;
                                                            then transcript() and ladder() get them as `keys=`

found by name under harness.protocols.known(), as the pytest plugin finds each protocol's fixtures.

Never a traceback: a file that is not a capture is one line on stderr and exit status 1; a key file that
cannot be read or has a line in no known format is one line naming the file and line, exit status 2; a damaged
capture is transcribed as far as it can be, its damage marked "malformed:", exit status 0.
"""
from __future__ import annotations

import importlib
import importlib.util
import logging
import os
import struct
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Iterator

from harness import protocols
from harness.errors import ConfigError, HarnessError

PCAP_MAGICS = {  # magic -> (byte order, nanosecond timestamps)
    b"\xa1\xb2\xc3\xd4": (">", False), b"\xd4\xc3\xb2\xa1": ("<", False),
    b"\xa1\xb2\x3c\x4d": (">", True), b"\x4d\x3c\xb2\xa1": ("<", True),
}
PCAPNG_MAGIC = b"\x0a\x0d\x0d\x0a"
PCAPNG_BYTE_ORDER = 0x1A2B3C4D
MAX_RECORD = 16 * 1024 * 1024   # no link layer has frames this big: a record claiming more is garbage
LINKTYPES = {0: "BSD loopback", 1: "Ethernet", 12: "raw IP", 101: "raw IP", 113: "Linux cooked",
             228: "raw IPv4", 229: "raw IPv6", 276: "Linux cooked v2"}
IP_PROTOCOLS = {1: "ICMP", 6: "TCP", 17: "UDP", 47: "GRE", 50: "ESP", 51: "AH", 58: "ICMPv6", 112: "VRRP",
                115: "L2TP", 132: "SCTP"}
PORTED = (6, 17, 132, 136)      # TCP, UDP, SCTP, UDP-Lite: the first four bytes are the ports
DISSECTOR = "dissector"
OTHERS_SHOWN = 8


class NotACapture(HarnessError):
    pass


# --- the capture's framing --------------------------------------------------------------------------------

@dataclass(frozen=True)
class Frame:
    number: int          # 1-based, in file order
    linktype: int
    data: bytes
    truncated: bool = False


@dataclass
class Capture:
    path: Path
    format: str                                      # "pcap" or "pcapng"
    linktypes: set[int] = field(default_factory=set)
    frames: list[Frame] = field(default_factory=list)
    damage: list[str] = field(default_factory=list)  # where the file's framing breaks, in words


def read_capture(path: Path) -> Capture:
    """Every frame of a pcap or pcapng file. Raises NotACapture (one line) for anything that is not one."""
    try:
        if path.is_dir():
            raise NotACapture(f"{path}: is a folder, not a capture")
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        raise NotACapture(f"{path}: no such file") from None
    except OSError as exc:
        raise NotACapture(f"{path}: cannot read it ({exc.strerror or exc})") from None
    magic = data[:4]
    if magic in PCAP_MAGICS:
        return _read_pcap(path, data)
    if magic == PCAPNG_MAGIC:
        return _read_pcapng(path, data)
    what = "an empty file" if not data else "not a pcap or pcapng capture"
    raise NotACapture(f"{path}: {what}")


def _read_pcap(path: Path, data: bytes) -> Capture:
    endian, _nano = PCAP_MAGICS[data[:4]]
    capture = Capture(path, "pcap")
    if len(data) < 24:
        capture.damage.append(f"the file header is cut short ({len(data)} of 24 bytes)")
        return capture
    _major, _minor, _zone, _sigfigs, _snaplen, linktype = struct.unpack_from(endian + "HHiIII", data, 4)
    linktype &= 0x0FFFFFFF   # the upper bits carry FCS information
    capture.linktypes.add(linktype)
    offset, number = 24, 0
    while offset < len(data):
        number += 1
        if len(data) - offset < 16:
            capture.damage.append(f"{len(data) - offset} byte(s) after frame {number - 1}: a record header cut short")
            break
        _sec, _usec, caplen, _wirelen = struct.unpack_from(endian + "IIII", data, offset)
        if caplen > MAX_RECORD:
            capture.damage.append(f"record {number} at byte {offset} claims {caplen} bytes: not a record; "
                                  f"the remaining {len(data) - offset} bytes are unreadable")
            break
        body = data[offset + 16:offset + 16 + caplen]
        truncated = len(body) < caplen
        if truncated:
            capture.damage.append(f"frame {number} is cut short ({len(body)} of {caplen} bytes)")
        capture.frames.append(Frame(number, linktype, body, truncated))
        offset += 16 + caplen
    return capture


def _read_pcapng(path: Path, data: bytes) -> Capture:
    capture = Capture(path, "pcapng")
    endian = "<"
    interfaces: list[int] = []
    offset, number = 0, 0
    while offset < len(data):
        if len(data) - offset < 12:
            capture.damage.append(f"{len(data) - offset} byte(s) at the end: a block cut short")
            break
        block_type = data[offset:offset + 4]
        if block_type == PCAPNG_MAGIC:  # a section header: its byte-order magic sets the endianness
            if len(data) - offset < 12 + 4:
                capture.damage.append("a section header cut short")
                break
            order = data[offset + 8:offset + 12]
            endian = "<" if struct.unpack("<I", order)[0] == PCAPNG_BYTE_ORDER else ">"
            interfaces = []
        kind, length = struct.unpack_from(endian + "II", data, offset)
        if length < 12 or length % 4 or offset + length > len(data):
            capture.damage.append(f"block at byte {offset} claims {length} bytes with {len(data) - offset} left: "
                                  f"the rest is unreadable")
            break
        body = data[offset + 8:offset + length - 4]
        if kind == 1 and len(body) >= 8:                             # interface description
            interfaces.append(struct.unpack_from(endian + "H", body)[0])
            capture.linktypes.add(interfaces[-1])
        elif kind in (6, 2) and len(body) >= 20:                     # enhanced / obsolete packet
            if kind == 6:
                interface, _high, _low, caplen, _wirelen = struct.unpack_from(endian + "IIIII", body)
            else:
                interface, _drops, _high, _low, caplen, _wirelen = struct.unpack_from(endian + "HHIIII", body)
            number += 1
            frame = body[20:20 + caplen]
            if interface >= len(interfaces):
                capture.damage.append(f"frame {number} names interface {interface}, which is not described")
            elif len(frame) < caplen:
                capture.damage.append(f"frame {number} is cut short ({len(frame)} of {caplen} bytes)")
            else:
                capture.frames.append(Frame(number, interfaces[interface], frame))
        elif kind == 3 and len(body) >= 4:                           # simple packet
            number += 1
            if interfaces:
                length = struct.unpack_from(endian + "I", body)[0]
                capture.frames.append(Frame(number, interfaces[0], body[4:4 + length]))
            else:
                capture.damage.append(f"frame {number} comes before any interface is described")
        offset += length
    return capture


# --- what each frame is -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Datagram:
    """What the core makes of one frame: enough for a protocol to say "mine"."""
    kind: str                    # "IPv4", "IPv6", or the frame's outermost layer when it carries no IP ("ARP")
    ip_proto: int | None = None
    sport: int | None = None
    dport: int | None = None
    later_fragment: bool = False  # an IP fragment after the first: its ports are in another frame
    fragment_of: tuple | None = None  # for any IP fragment: which datagram it belongs to

    def describe(self) -> str:
        if self.ip_proto is None:
            return self.kind
        if self.later_fragment:
            return f"{self.kind} fragment"
        name = IP_PROTOCOLS.get(self.ip_proto, f"IP protocol {self.ip_proto}")
        if self.sport is not None:
            return f"{name} port {min(self.sport, self.dport)}"
        return f"{name} (header cut short)" if self.ip_proto in PORTED else name


def _scapy():
    """scapy, quiet (its warnings would read as errors), with the link and IP layers registered."""
    logging.getLogger("scapy").setLevel(logging.ERROR)
    import scapy.layers.inet  # noqa: F401
    import scapy.layers.inet6  # noqa: F401
    import scapy.layers.l2  # noqa: F401
    from scapy.config import conf
    return conf


def datagram(frame: Frame) -> Datagram:
    """Never raises: a frame nothing can be made of is kind "undecodable"."""
    conf = _scapy()
    from scapy.layers.inet import IP
    from scapy.layers.inet6 import IPv6, IPv6ExtHdrFragment
    link = conf.l2types.num2layer.get(frame.linktype)
    if link is None:
        return Datagram(f"linktype {frame.linktype}")
    try:
        packet = link(frame.data)
    except Exception:
        return Datagram("undecodable")
    try:
        for layer in packet.iterpayloads():
            if isinstance(layer, IP):
                whole = (layer.src, layer.dst, layer.id, layer.proto) if layer.frag or layer.flags.MF else None
                return _transport("IPv4", layer.proto, layer.payload, later=layer.frag > 0, whole=whole)
            if isinstance(layer, IPv6):
                header = layer
                while header.nh in (0, 43, 60) and header.payload is not None and hasattr(header.payload, "nh"):
                    header = header.payload
                fragment = header.payload
                if isinstance(fragment, IPv6ExtHdrFragment):
                    return _transport("IPv6", fragment.nh, fragment.payload, later=fragment.offset > 0,
                                      whole=(layer.src, layer.dst, fragment.id, fragment.nh))
                return _transport("IPv6", header.nh, header.payload, later=False)
        names = [layer.name for layer in packet.iterpayloads() if layer.name not in ("Raw", "Padding")]
        if len(names) > 1:
            return Datagram(names[1])
        return Datagram(f"{names[0]} frame with an unrecognised payload" if names else "undecodable")
    except Exception:
        return Datagram("undecodable")


def _transport(kind: str, proto: int, payload, *, later: bool, whole: tuple | None = None) -> Datagram:
    if later:
        return Datagram(kind, proto, later_fragment=True, fragment_of=whole)
    raw = bytes(getattr(payload, "original", None) or b"")
    if proto in PORTED and len(raw) >= 4:
        sport, dport = struct.unpack_from("!HH", raw)
        return Datagram(kind, proto, sport, dport, fragment_of=whole)
    return Datagram(kind, proto, fragment_of=whole)


# --- protocols ----------------------------------------------------------------------------------------------

def dissectors() -> dict[str, ModuleType]:
    """Each protocol package's `dissector` module, by protocol name."""
    found = {}
    for name in protocols.known():
        module = f"{protocols.__name__}.{name}.{DISSECTOR}"
        if importlib.util.find_spec(module):
            found[name] = importlib.import_module(module)
    return found


def _claimed(modules: dict[str, ModuleType], datagrams: list[Datagram]) -> tuple[dict[str, int], Counter]:
    """Frames per protocol that claims them, and the rest by kind. A later IP fragment goes to whoever
    claimed the first fragment of its datagram (it has no ports of its own)."""
    counts: dict[str, int] = {}
    others: Counter = Counter()
    first_fragments: dict[tuple, list[str]] = {}
    for d in datagrams:
        if d.later_fragment:
            owners = first_fragments.get(d.fragment_of, [])
        else:
            owners = [name for name, module in modules.items() if _safe_claims(module, d)]
            if d.fragment_of is not None:
                first_fragments[d.fragment_of] = owners
        for name in owners:
            counts[name] = counts.get(name, 0) + 1
        if not owners:
            others[d.describe()] += 1
    return counts, others


def _safe_claims(module: ModuleType, d: Datagram) -> bool:
    try:
        return bool(module.claims(d))
    except Exception:
        return False


def _vendors(needed: bool):
    if not needed:
        return {}
    from harness.vendor import load_registry
    folder = Path(__file__).resolve().parent.parent / "vendors"
    if not folder.is_dir():
        raise HarnessError(f"--keys-from: {folder}: not found; key logs are read by the vendors' keylog.py")
    return load_registry(folder)


def transcribe(path: Path, keys_from: list[Path], ladder: Path | None = None,
               keys: list[Path] = ()) -> Iterator[str]:
    """The lines the command prints. Raises NotACapture/HarnessError/ConfigError (one line) before printing
    anything."""
    capture = read_capture(path)
    for log in keys_from:
        if not Path(log).is_file():
            raise HarnessError(f"{log}: no such file (--keys-from)")
    for key_path in keys:
        if not Path(key_path).exists():
            raise ConfigError(str(key_path), "--keys", "no such file or folder")
    vendors = _vendors(bool(keys_from))
    modules = dissectors()
    loaded = {name: module.load_keys(list(keys), list(keys_from), vendors)
              for name, module in modules.items() if hasattr(module, "load_keys")}
    if keys and not loaded:
        raise ConfigError("--keys", ", ".join(map(str, keys)), "no protocol here reads key files")
    links = ", ".join(f"linktype {t} ({LINKTYPES.get(t, 'unknown')})" for t in sorted(capture.linktypes))
    yield f"{path}: {capture.format}, {links or 'no link type'}, {len(capture.frames)} frame(s)"
    for damage in capture.damage:
        yield f"malformed: {damage}"
    undecodable = sorted(t for t in capture.linktypes if t not in _scapy().l2types.num2layer)
    if undecodable:
        yield f"malformed: linktype {', '.join(map(str, undecodable))}: no decoder for this link layer"
    counts, others = _claimed(modules, [datagram(f) for f in capture.frames])
    for name, module in modules.items():
        if not counts.get(name):
            continue
        yield ""
        yield f"== {name}: {counts[name]} frame(s)"
        try:
            yield module.transcript(path, keys_from, vendors, **_keys_of(loaded, name))
        except HarnessError:
            raise
        except Exception as exc:  # a decoder bug must not cost the user the rest of the output
            yield f"malformed: the {name} decoder gave up on this capture ({type(exc).__name__}: {exc})"
        if ladder is not None and hasattr(module, "ladder"):
            out = ladder if len(counts) == 1 else ladder.with_suffix(f".{name}{ladder.suffix}")
            try:
                out.write_text(module.ladder(path, keys_from, vendors, **_keys_of(loaded, name)))
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
                                               "marked 'malformed:'. Exit status: 0 transcribed, 1 not a capture, "
                                               "2 a bad key file or option.")
    parser.add_argument("pcap", type=Path, help="the capture")
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
