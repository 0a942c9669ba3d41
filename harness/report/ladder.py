"""Ladder diagrams (message sequence charts) as plain SVG: the picture an engineer draws on a whiteboard.

Knows no protocol. A protocol package turns what it read from a capture into generic events and calls
`render`:

    svg = render([Lifeline("initiator strongswan", "198.18.1.2"), Lifeline("responder libreswan", "198.18.1.3")],
                 [Arrow(0.0, 0, 1, "IKE_SA_INIT #0 request", ["SA IKE: ENCR_AES_CBC_128 ..."]),
                  Arrow(0.004, 1, 0, "IKE_AUTH #1 response", [Note("N(AUTHENTICATION_FAILED)", error=True)],
                        error=True, dashed=True),
                  Band(0.020, 0, 1, "ESP spi 0xe0e82121: 3 packets", ["3x ICMP echo-request ..."], end_time=0.4),
                  Remark("2 malformed packets skipped", error=True)],
                 title="ipsec / psk_tunnel / strongswan -> libreswan")

Lifelines are columns (src/dst are their indices, or the Lifeline objects themselves); time runs down, with
the seconds since the first event (or since `start`, the capture's first frame, so the times read as in the
transcript and Wireshark) in the left column, and under it an arrow's frame number when it has one. Width is
fixed, height grows with the events, text wraps and is never smaller than 12px. The output is one
self-contained XML document: presentation attributes only (no CSS, scripts or external fonts), every text
escaped, characters XML cannot carry shown as \\xNN.
"""
from __future__ import annotations

import math
import re
import unicodedata
from dataclasses import dataclass
from typing import Iterable, Sequence, Union

WIDTH = 900
MARGIN = 16
TIME_COLUMN = 92            # the time labels end here
HEADER_BOX = 210            # width of a lifeline's name box (narrower when lifelines are close)
CHAR_WIDTH = 0.61           # of the font size: DejaVu Sans Mono and its stand-ins are 0.60em wide
FONT = "DejaVu Sans Mono, Menlo, Consolas, Liberation Mono, monospace"
TITLE_SIZE, LABEL_SIZE, NOTE_SIZE, TIME_SIZE = 16, 13, 12, 12
LINE = 16                   # baseline to baseline for note lines
GAP_S = 1.5                 # a quiet stretch longer than this gets a visible break
MAX_NOTE_CHARS = 600        # one note, before wrapping; the rest is cut with an ellipsis
MIN_TEXT = 440              # px of room for an event's text, however close its lifelines
MAX_LINES = 14              # wrapped note lines under one arrow or band
MAX_EVENTS = 400            # arrows, bands and remarks in one chart

INK, DIM, ERROR, LIFELINE = "#1f2937", "#6b7280", "#c62828", "#9ca3af"
BAND_FILL, BAND_STROKE = "#e8f5e9", "#2e7d32"
ERROR_FILL = "#fdecea"
HEADER_FILL, HEADER_STROKE = "#eef2f7", "#475569"


@dataclass(frozen=True)
class Lifeline:
    name: str
    address: str = ""


@dataclass(frozen=True)
class Note:
    """One line of detail under an arrow or inside a band; red when `error`, grey when `dim`."""
    text: str
    error: bool = False
    dim: bool = False


def _notes(notes) -> tuple[Note, ...]:
    return tuple(n if isinstance(n, Note) else Note(str(n)) for n in (notes or ()))


@dataclass(frozen=True)
class Arrow:
    """One message from lifeline `src` to `dst`; `error` draws it (and its label) red, `dashed` marks a reply;
    `number`: the frame that carried it, as Wireshark numbers frames."""
    time: float
    src: Union[int, Lifeline]
    dst: Union[int, Lifeline]
    label: str
    notes: Sequence[Union[str, Note]] = ()
    error: bool = False
    dashed: bool = False
    number: int | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "notes", _notes(self.notes))


@dataclass(frozen=True)
class Band:
    """A summary of many packets between two lifelines over a stretch of time (a data-plane flow)."""
    time: float
    src: Union[int, Lifeline]
    dst: Union[int, Lifeline]
    label: str
    notes: Sequence[Union[str, Note]] = ()
    end_time: float | None = None
    error: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "notes", _notes(self.notes))


@dataclass(frozen=True)
class Remark:
    """A line across the chart: "nothing on the wire", "3 malformed packets skipped". Without a time it
    goes after the last event."""
    text: str
    time: float | None = None
    error: bool = False


Event = Union[Arrow, Band, Remark]


# --- text ---------------------------------------------------------------------------------------------------

_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff\ufffe\uffff]")


def clean(text: str) -> str:
    """Characters XML 1.0 cannot carry (controls, lone surrogates) as \\xNN; tabs and newlines as spaces."""
    text = _NOT_XML.sub(lambda m: f"\\x{ord(m.group()):02x}" if ord(m.group()) < 256
                        else f"\\u{ord(m.group()):04x}", str(text))
    return text.replace("\t", " ").replace("\r", " ").replace("\n", " ")


def _xml(text: str) -> str:
    return (clean(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
            .replace('"', "&quot;").replace("'", "&#39;"))


def _columns(text: str) -> int:
    """Width in monospace cells: East Asian wide characters take two, combining marks none."""
    width = 0
    for ch in text:
        if unicodedata.combining(ch):
            continue
        width += 2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1
    return width


def _take(text: str, columns: int) -> str:
    """The longest prefix of `text` that fits `columns` cells (at least one character)."""
    out, width = "", 0
    for ch in text:
        width += _columns(ch)
        if width > columns and out:
            break
        out += ch
    return out


def _cut(text: str, columns: int) -> str:
    return text if _columns(text) <= columns else _take(text, columns - 1) + "…"


def wrap(text: str, columns: int) -> list[str]:
    """Greedy word wrap to `columns` cells; words longer than a line are broken (hex, base64)."""
    columns = max(columns, 8)
    text = clean(text).strip()
    if len(text) > MAX_NOTE_CHARS:
        text = text[:MAX_NOTE_CHARS - 1] + "…"
    lines: list[str] = []
    current = ""
    for word in text.split():
        while _columns(word) > columns:
            if current:
                lines.append(current)
                current = ""
            head = _take(word, columns)
            lines.append(head)
            word = word[len(head):]
        if not word:
            continue
        if current and _columns(current) + 1 + _columns(word) > columns:
            lines.append(current)
            current = word
        else:
            current = f"{current} {word}" if current else word
    if current or not lines:
        lines.append(current)
    return lines


def _chars(width: float, size: int) -> int:
    return max(8, int(width // (size * CHAR_WIDTH)))


# --- layout -------------------------------------------------------------------------------------------------

@dataclass
class _Svg:
    parts: list[str]

    def add(self, element: str) -> None:
        self.parts.append(element)

    def text(self, x: float, y: float, text: str, *, size: int = NOTE_SIZE, fill: str = INK, anchor: str = "start",
             bold: bool = False, italic: bool = False, halo: bool = False) -> None:
        """`halo`: a white outline under the glyphs, so text crossing a lifeline stays legible."""
        extra = (' font-weight="bold"' if bold else "") + (' font-style="italic"' if italic else "")
        if halo:
            extra += ' stroke="#ffffff" stroke-width="4" stroke-linejoin="round" paint-order="stroke"'
        self.add(f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size}" fill="{fill}" text-anchor="{anchor}"{extra}>'
                 f'{_xml(text)}</text>')


def _fmt_time(seconds: float | None) -> str:
    return f"{seconds:.3f}" if seconds is not None and math.isfinite(seconds) else ""


def _since(time: float | None, t0: float) -> float | None:
    return None if time is None else time - t0


def _index(lifelines: Sequence[Lifeline], ref) -> int:
    if isinstance(ref, Lifeline):
        return list(lifelines).index(ref)
    if isinstance(ref, bool) or not isinstance(ref, int) or not 0 <= ref < len(lifelines):
        raise ValueError(f"no lifeline {ref!r} among {len(lifelines)}")
    return ref


def _positions(count: int) -> tuple[list[float], float]:
    """x of each lifeline and the width of its name box."""
    left_edge, right_edge = TIME_COLUMN + 14, WIDTH - MARGIN
    if count == 1:
        return [(left_edge + right_edge) / 2], HEADER_BOX
    spacing = (right_edge - left_edge - HEADER_BOX) / (count - 1)
    box = min(HEADER_BOX, spacing - 12)
    left = left_edge + box / 2
    right = right_edge - box / 2
    step = (right - left) / (count - 1)
    return [left + i * step for i in range(count)], box


def _span(xs: list[float], a: int, b: int) -> tuple[float, float]:
    """The horizontal room for an event's text: between its two lifelines, widened to the right (or, at the
    right edge, to the left) to at least MIN_TEXT px; it may then cross a third lifeline."""
    left_edge, right_edge = TIME_COLUMN + 14, WIDTH - MARGIN
    lo, hi = sorted((xs[a], xs[b]))
    if a == b:  # a message to itself: the text goes beside the loop, on the roomier side
        return (lo + 52, right_edge) if right_edge - lo > lo - left_edge else (left_edge, lo - 52)
    lo, hi = lo + 12, hi - 12
    if hi - lo < MIN_TEXT:
        hi = min(right_edge, lo + MIN_TEXT)
        lo = max(left_edge, min(lo, hi - MIN_TEXT))
    return lo, hi


def _lines(notes: tuple[Note, ...], columns: int) -> list[Note]:
    out: list[Note] = []
    for note in notes:
        out += [Note(line, note.error, note.dim) for line in wrap(note.text, columns)]
    if len(out) > MAX_LINES:
        hidden = len(out) - (MAX_LINES - 1)
        out = out[:MAX_LINES - 1] + [Note(f"… {hidden} more line(s)", dim=True)]
    return out


def _note_fill(note: Note, default: str = INK) -> str:
    return ERROR if note.error else DIM if note.dim else default


def render(lifelines: Sequence[Lifeline], events: Iterable[Event], title: str = "", start: float | None = None) -> str:
    """The chart as an SVG document (a string). Events are drawn in time order (ties keep their order); times
    count from `start` when given, else from the first event."""
    lifelines = list(lifelines)
    if not lifelines:
        lifelines = [Lifeline("(nobody)")]
    events = list(events)
    for event in events:
        if isinstance(event, (Arrow, Band)):
            _index(lifelines, event.src), _index(lifelines, event.dst)
    timed = [e.time for e in events if e.time is not None and math.isfinite(e.time)]
    t0 = start if start is not None and math.isfinite(start) else min(timed) if timed else 0.0
    ordered = sorted(events, key=lambda e: (e.time is None or not math.isfinite(e.time),
                                            e.time if e.time is not None and math.isfinite(e.time) else 0.0))
    if len(ordered) > MAX_EVENTS:  # a flood: the picture stops, saying how much it leaves out
        left_out = len(ordered) - (MAX_EVENTS - 1)
        ordered = ordered[:MAX_EVENTS - 1] + [Remark(f"… and {left_out} more event(s), not drawn", error=True)]
    xs, box = _positions(len(lifelines))

    body = _Svg([])
    y = MARGIN
    if title:
        for line in wrap(title, _chars(WIDTH - 2 * MARGIN, TITLE_SIZE)):
            body.text(MARGIN, y + TITLE_SIZE, line, size=TITLE_SIZE, bold=True)
            y += TITLE_SIZE + 6
        y += 8

    # Name boxes: the name (up to two lines) and the address.
    header_top = y
    name_columns = _chars(box - 12, LABEL_SIZE)
    names = [wrap(l.name, name_columns)[:2] for l in lifelines]
    rows = max(len(n) for n in names)
    header_height = 12 + rows * (LABEL_SIZE + 4) + (NOTE_SIZE + 6 if any(l.address for l in lifelines) else 0)
    header = _Svg([])
    for x, lifeline, name in zip(xs, lifelines, names):
        header.add(f'<g class="lifeline"><rect x="{x - box / 2:.1f}" y="{header_top:.1f}" width="{box:.1f}" '
                   f'height="{header_height}" rx="6" fill="{HEADER_FILL}" stroke="{HEADER_STROKE}" '
                   f'stroke-width="1.5"/>')
        ty = header_top + 6
        for line in name:
            ty += LABEL_SIZE + 4
            header.text(x, ty - 2, line, size=LABEL_SIZE, anchor="middle", bold=True)
        if lifeline.address:
            ty += NOTE_SIZE + 6
            address = _cut(clean(lifeline.address), _chars(box - 12, NOTE_SIZE))
            header.text(x, ty - 2, address, anchor="middle", fill=DIM)
        header.add("</g>")
    y = header_top + header_height
    body.text(TIME_COLUMN - 6, y - 4, "time (s)", size=TIME_SIZE, anchor="end", fill=DIM)
    y += 18

    chart = _Svg([])
    previous: float | None = None
    for event in ordered:
        time = event.time if event.time is not None and math.isfinite(event.time) else None
        if time is not None and previous is not None and time - previous > GAP_S:
            chart.add(f'<g class="gap"><line x1="{MARGIN}" y1="{y + 6:.1f}" x2="{WIDTH - MARGIN}" y2="{y + 6:.1f}" '
                      f'stroke="{LIFELINE}" stroke-width="1" stroke-dasharray="2 4"/>')
            chart.text(TIME_COLUMN - 6, y + 18, f"+{time - previous:.1f} s", size=TIME_SIZE, anchor="end",
                       fill=DIM, italic=True)
            chart.add("</g>")
            y += 26
        if time is not None:
            previous = max(previous or time, time)
        if isinstance(event, Arrow):
            y = _arrow(chart, event, lifelines, xs, y, t0)
        elif isinstance(event, Band):
            y = _band(chart, event, lifelines, xs, y, t0)
        else:
            y = _remark(chart, event, y, t0)
    if not ordered:
        y = _remark(chart, Remark("(no events)"), y, t0)
    bottom = y + 4

    lines = _Svg([])
    for x in xs:
        lines.add(f'<line class="lifeline-line" x1="{x:.1f}" y1="{header_top + header_height:.1f}" x2="{x:.1f}" '
                  f'y2="{bottom:.1f}" stroke="{LIFELINE}" stroke-width="1.5" stroke-dasharray="6 4"/>')
    height = int(bottom + MARGIN)
    head = (f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" '
            f'viewBox="0 0 {WIDTH} {height}" font-family="{FONT}" font-size="{NOTE_SIZE}">')
    parts = [head, f"<title>{_xml(title or 'ladder diagram')}</title>",
             f'<rect x="0" y="0" width="{WIDTH}" height="{height}" fill="#ffffff"/>',
             *lines.parts, *body.parts, *header.parts, *chart.parts, "</svg>"]
    return "\n".join(parts) + "\n"


def _arrow(svg: _Svg, event: Arrow, lifelines, xs, y: float, t0: float) -> float:
    a, b = _index(lifelines, event.src), _index(lifelines, event.dst)
    lo, hi = _span(xs, a, b)
    colour = ERROR if event.error else INK
    labels = wrap(event.label, _chars(hi - lo, LABEL_SIZE))[:3]
    notes = _lines(event.notes, _chars(hi - lo - 4, NOTE_SIZE))
    svg.add('<g class="arrow">')
    # Over the arrow's middle when the label fits there, else over the middle of the text's room.
    middle = (xs[a] + xs[b]) / 2
    half = max(_columns(line) for line in labels) * LABEL_SIZE * CHAR_WIDTH / 2
    if a == b or middle - half < lo or middle + half > hi:
        middle = (lo + hi) / 2
    ty = y
    for line in labels:
        ty += LABEL_SIZE + 3
        svg.text(middle, ty, line, size=LABEL_SIZE, fill=colour, anchor="middle", bold=True, halo=True)
    line_y = ty + 9
    dash = ' stroke-dasharray="7 4"' if event.dashed else ""
    x1, x2 = xs[a], xs[b]
    if a == b:  # a loop beside the lifeline
        out = 40 if lo > x1 else -40
        svg.add(f'<path d="M {x1:.1f} {line_y - 6:.1f} h {out} v 14 h {-out + (8 if out > 0 else -8)}" fill="none" '
                f'stroke="{colour}" stroke-width="2"{dash}/>')
        tip, direction = x1, (-1 if out > 0 else 1)
        head_y = line_y + 8
    else:
        direction = 1 if x2 > x1 else -1
        tip, head_y = x2 - direction * 2, line_y
        svg.add(f'<line x1="{x1:.1f}" y1="{line_y:.1f}" x2="{tip - direction * 10:.1f}" y2="{line_y:.1f}" '
                f'stroke="{colour}" stroke-width="2"{dash}/>')
    svg.add(f'<polygon points="{tip:.1f},{head_y:.1f} {tip - direction * 12:.1f},{head_y - 5:.1f} '
            f'{tip - direction * 12:.1f},{head_y + 5:.1f}" fill="{colour}"/>')
    svg.text(TIME_COLUMN - 6, line_y + 4, _fmt_time(_since(event.time, t0)), size=TIME_SIZE, anchor="end", fill=DIM)
    if event.number is not None:
        svg.text(TIME_COLUMN - 6, line_y + 4 + LINE, f"#{event.number}", size=TIME_SIZE, anchor="end", fill=DIM)
    ty = line_y + (8 if a != b else 14)
    for note in notes:
        ty += LINE
        svg.text(lo + 4, ty, note.text, fill=_note_fill(note), bold=note.error, halo=True)
    svg.add("</g>")
    return ty + 14


def _band(svg: _Svg, event: Band, lifelines, xs, y: float, t0: float) -> float:
    a, b = _index(lifelines, event.src), _index(lifelines, event.dst)
    lo, hi = _span(xs, a, b)
    if a != b:
        lo, hi = min(lo, min(xs[a], xs[b]) + 6), max(hi, max(xs[a], xs[b]) - 6)
    stroke = ERROR if event.error else BAND_STROKE
    fill = ERROR_FILL if event.error else BAND_FILL
    labels = wrap(event.label, _chars(hi - lo - 16, LABEL_SIZE))[:3]
    notes = _lines(event.notes, _chars(hi - lo - 20, NOTE_SIZE))
    height = 12 + len(labels) * (LABEL_SIZE + 3) + 16 + len(notes) * LINE + 10
    top = y + 2
    svg.add(f'<g class="band"><rect x="{lo:.1f}" y="{top:.1f}" width="{hi - lo:.1f}" height="{height:.1f}" rx="8" '
            f'fill="{fill}" stroke="{stroke}" stroke-width="1.5" fill-opacity="0.9"/>')
    ty = top + 6
    for line in labels:
        ty += LABEL_SIZE + 3
        svg.text((lo + hi) / 2, ty, line, size=LABEL_SIZE, fill=stroke, anchor="middle", bold=True)
    arrow_y = ty + 10
    x1, x2 = xs[a], xs[b]
    if a != b:
        direction = 1 if x2 > x1 else -1
        svg.add(f'<line x1="{x1:.1f}" y1="{arrow_y:.1f}" x2="{x2 - direction * 12:.1f}" y2="{arrow_y:.1f}" '
                f'stroke="{stroke}" stroke-width="5" stroke-linecap="round"/>')
        svg.add(f'<polygon points="{x2:.1f},{arrow_y:.1f} {x2 - direction * 16:.1f},{arrow_y - 8:.1f} '
                f'{x2 - direction * 16:.1f},{arrow_y + 8:.1f}" fill="{stroke}"/>')
    svg.text(TIME_COLUMN - 6, arrow_y + 4, _fmt_time(_since(event.time, t0)), size=TIME_SIZE, anchor="end", fill=DIM)
    if event.end_time is not None and math.isfinite(event.end_time) and event.end_time > event.time:
        svg.text(TIME_COLUMN - 6, arrow_y + 4 + LINE, f"…{_fmt_time(event.end_time - t0)}", size=TIME_SIZE,
                 anchor="end", fill=DIM)
    ty = arrow_y + 6
    for note in notes:
        ty += LINE
        svg.text(lo + 10, ty, note.text, fill=_note_fill(note), bold=note.error)
    svg.add("</g>")
    return top + height + 14


def _remark(svg: _Svg, event: Remark, y: float, t0: float) -> float:
    lines = wrap(event.text, _chars(WIDTH - TIME_COLUMN - 14 - MARGIN, NOTE_SIZE))[:MAX_LINES]
    svg.add('<g class="remark">')
    ty = y
    for i, line in enumerate(lines):
        ty += LINE
        svg.text(TIME_COLUMN + 14, ty, line, fill=ERROR if event.error else DIM, italic=True, halo=True)
        if i == 0 and event.time is not None and math.isfinite(event.time):
            svg.text(TIME_COLUMN - 6, ty, _fmt_time(event.time - t0), size=TIME_SIZE, anchor="end", fill=DIM)
    svg.add("</g>")
    return ty + 14
