"""`event board`: the live results board, a real web server process over the event folder (stdlib
ThreadingHTTPServer; every request thread opens its own connection to the store).

Three views of one page (static/board.html + board.js, which polls /api/state and redraws without a reload):
- public (no token): participants under anonymous labels only, the schedule, each cell's verdict and sign-off
  state; no implementation name, no reason (a reason names implementations), no evidence.
- participant (its token): its own cells with real names, reasons, every try and its evidence files; sign-off
  of its own cells. Other cells as the public sees them.
- organiser (the organiser's token): everything, read-only (the organiser does not sign for a participant).

The token travels in an HttpOnly, SameSite=Strict cookie set by POST /api/login (or an Authorization: Bearer
header), never in a URL, so the access log (which prints method and path, never a query string or a header)
cannot hold it. A wrong token is 401 with the same words whatever it was. Evidence a requester may not see is
404, the same as evidence that does not exist: the answer tells nothing about other participants' cells. A
file is served only when it resolves inside its try's evidence folder, itself inside the event folder, with no
symlink on the way.
"""
from __future__ import annotations

import functools
import json
import mimetypes
import os
import signal
import sys
import threading
import time
from http import HTTPStatus
from http.cookies import CookieError, SimpleCookie
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import quote, unquote, urlsplit

from harness.event.store import ORGANISER, SIGNOFF_STATES, Store, cell_state

STATIC = Path(__file__).parent / "static"
COOKIE = "oi_event_token"
MAX_BODY = 16_384
MAX_NOTE = 2000
TEXT_SUFFIXES = {".log", ".txt", ".json", ".conf", ".toml", ".csv", ".keys", ".svg"}
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
    "X-Frame-Options": "DENY",
}
PAGE_CSP = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; frame-ancestors 'none'"
EVIDENCE_CSP = "sandbox; default-src 'none'"  # an evidence file is data: nothing in it may run as the board


# --- what each view may see ----------------------------------------------------------------------------------

def evidence_files(folder: Path, evidence: str | None) -> list[str]:
    """The regular files of a try's evidence folder (relative paths; symlinks are neither listed nor followed)."""
    base = _evidence_base(folder, evidence)
    if base is None:
        return []
    found = []
    for where, dirs, files in os.walk(base, followlinks=False):
        dirs[:] = sorted(d for d in dirs if not (Path(where) / d).is_symlink())
        for name in sorted(files):
            path = Path(where) / name
            if not path.is_symlink() and path.is_file():
                found.append(path.relative_to(base).as_posix())
    return sorted(found)


def _evidence_base(folder: Path, evidence: str | None) -> Path | None:
    if not evidence:
        return None
    root = folder.resolve()
    base = (root / evidence).resolve()
    return base if base.is_relative_to(root) and base != root and base.is_dir() else None


def evidence_path(folder: Path, evidence: str | None, relative: str) -> Path | None:
    """The file `relative` (already URL-decoded, once) names in a try's evidence folder, or None when it is not
    a regular file inside that folder reached without a symlink."""
    base = _evidence_base(folder, evidence)
    if base is None or not relative or "\x00" in relative or "\\" in relative or relative.startswith("/"):
        return None
    parts = relative.split("/")
    if any(part in ("", ".", "..") for part in parts):
        return None
    step = base
    for part in parts:
        step = step / part
        if step.is_symlink():
            return None
    target = step.resolve()
    if not target.is_relative_to(base) or not target.is_file():
        return None
    return target


def state(store: Store, folder: Path, who: str | None, event_name: str, files=None) -> dict:
    """What `who` (None: the public, ORGANISER, or a participant's id) may see of the event, as the page draws
    it. `files(evidence, finished)` lists a try's evidence files (the board caches it)."""
    files = files or (lambda evidence, finished: evidence_files(folder, evidence))
    participants = store.participants()
    labels = {p: row["label"] for p, row in participants.items()}
    organiser = who == ORGANISER

    def sees(*owners: str) -> bool:
        return organiser or (who is not None and who in owners)

    running, done = store.slot_progress()
    slots = store.slots()
    waiting = [s for s in slots if s["number"] not in running | done]
    next_round = min((s["round"] for s in waiting), default=None)
    schedule = []
    for slot in slots:
        mine = sees(slot["a"], slot["b"])
        status = ("now" if slot["number"] in running else "done" if slot["number"] in done
                  else "next" if slot["round"] == next_round else "later")
        schedule.append({"slot": slot["number"], "round": slot["round"], "protocol": slot["protocol"],
                         "a": slot["a"] if mine else labels.get(slot["a"], "?"),
                         "b": slot["b"] if mine else labels.get(slot["b"], "?"),
                         "cells": slot["cells"], "estimate_s": slot["estimate_s"], "status": status, "mine": mine})
    signoffs = store.signoffs()
    tries = {}
    for row in store.tries():
        tries.setdefault(row["cell"], []).append(row)
    cells = []
    for cell in store.cells():
        history = tries.get(cell.id, [])
        latest = history[-1] if history else None
        record = {"id": cell.id, "protocol": cell.protocol, "case": cell.case,
                  "a": labels.get(cell.a_participant, "?"), "b": labels.get(cell.b_participant, "?"),
                  "verdict": latest["verdict"] if latest else "not run",
                  "state": cell_state(cell, latest["id"] if latest else None, signoffs),
                  "tries": len(history), "mine": who in (cell.a_participant, cell.b_participant)}
        if sees(cell.a_participant, cell.b_participant):
            record.update({
                "a": f"{cell.a} ({cell.a_participant})", "b": f"{cell.b} ({cell.b_participant})",
                "key": cell.key, "reason": latest["reason"] if latest else "",
                "history": [{"try": t["id"], "number": t["number"], "verdict": t["verdict"], "reason": t["reason"],
                             "finished": t["finished"],
                             "files": [{"name": f, "url": f"/api/evidence/{t['id']}/{quote(f)}"}
                                       for f in files(t["evidence"], t["finished"])]} for t in history],
                "signoffs": {p: {"state": s["state"], "note": s["note"], "current": latest is not None
                                 and s["try"] == latest["id"]}
                             for p in (cell.a_participant, cell.b_participant)
                             if (s := signoffs.get((cell.id, p))) is not None},
            })
        cells.append(record)
    view = "organiser" if organiser else "participant" if who else "public"
    me = None
    if who and not organiser:
        row = participants[who]
        me = {"id": who, "label": row["label"], "organisation": row["organisation"]}
    shown = [{"label": row["label"], **({"id": p, "organisation": row["organisation"]} if sees(p) else {})}
             for p, row in participants.items()]
    return {"event": event_name, "view": view, "me": me, "participants": shown, "schedule": schedule,
            "cells": cells, "version": list(store.data_version())}


# --- the server ----------------------------------------------------------------------------------------------

class Board(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address, folder: Path, log=None):
        self.folder = Path(folder).resolve()
        self.store = Store(self.folder)
        self.log = log or sys.stderr
        self.log_lock = threading.Lock()
        self.event_name = _event_name(self.folder)
        # every poll of every logged-in page lists its tries' files: walk a folder once per version of its try
        # (a try's row is updated, `finished` with it, when its run settles it)
        self.files = functools.lru_cache(maxsize=8192)(lambda evidence, finished: evidence_files(self.folder,
                                                                                               evidence))
        super().__init__(address, Handler)


def _event_name(folder: Path) -> str:
    from harness.tomlfile import read_toml
    try:
        name = read_toml(folder / "event.toml").get("name")
    except Exception:  # the board shows a damaged event file's name as the folder's; init reports the damage
        name = None
    return name if isinstance(name, str) and name.strip() else folder.name


class Handler(BaseHTTPRequestHandler):
    server: Board
    server_version = "overlay-interop-board"
    sys_version = ""
    protocol_version = "HTTP/1.1"

    # The access log: method, path (no query string) and status; never a header, so never a token.
    def log_request(self, code="-", size="-"):
        path = urlsplit(self.path).path if hasattr(self, "path") else "-"
        status = code.value if isinstance(code, HTTPStatus) else code
        self._log(f'{self.address_string()} "{getattr(self, "command", "-")} {path}" {status}')

    def log_error(self, format, *args):
        self._log("error: " + (format % args).split("?")[0])

    def log_message(self, format, *args):
        self._log((format % args).split("?")[0])

    def _log(self, line: str) -> None:
        with self.server.log_lock:
            self.server.log.write(f"{time.strftime('%Y-%m-%dT%H:%M:%S')} {line}\n")
            self.server.log.flush()

    # --- plumbing ----------------------------------------------------------------------------------------

    def _send(self, status: int, body: bytes, content_type: str, headers: dict | None = None) -> None:
        self.send_response(status)
        for key, value in {**SECURITY_HEADERS, "Content-Type": content_type, "Content-Length": str(len(body)),
                           **(headers or {})}.items():
            self.send_header(key, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, status: int, data, headers: dict | None = None) -> None:
        self._send(status, json.dumps(data).encode(), "application/json; charset=utf-8",
                   {"Content-Security-Policy": "default-src 'none'", **(headers or {})})

    def _error(self, status: int, message: str) -> None:
        self._json(status, {"error": message})

    def _token(self) -> str | None:
        header = self.headers.get("Authorization", "")
        if header.startswith("Bearer "):
            return header[len("Bearer "):].strip()
        try:
            cookie = SimpleCookie(self.headers.get("Cookie", ""))
        except CookieError:
            return None
        return cookie[COOKIE].value if COOKIE in cookie else None

    def _who(self) -> tuple[bool, str | None]:
        """(given, who): whether a token came with the request, and whom it opens (None: nobody)."""
        token = self._token()
        return bool(token), self.server.store.authenticate(token)

    def _body(self) -> dict | None:
        if self.headers.get("Content-Type", "").split(";")[0].strip() != "application/json":
            return None  # a form post from another site cannot send JSON without a preflight
        try:
            length = int(self.headers.get("Content-Length", "0"))
        except ValueError:
            return None
        if not 0 < length <= MAX_BODY:
            return None
        try:
            data = json.loads(self.rfile.read(length))
        except (ValueError, UnicodeDecodeError):
            return None
        return data if isinstance(data, dict) else None

    # --- routes ------------------------------------------------------------------------------------------

    def do_HEAD(self):
        self.do_GET()

    def do_GET(self):
        path = urlsplit(self.path).path
        try:
            if path in ("/", "/index.html"):
                return self._static("board.html", "text/html; charset=utf-8")
            if path in ("/board.js", "/board.css"):
                return self._static(path[1:], "text/javascript; charset=utf-8" if path.endswith(".js")
                                    else "text/css; charset=utf-8")
            if path == "/favicon.ico":  # browsers ask for it; the board has none
                return self._send(204, b"", "image/x-icon")
            if path == "/api/state":
                given, who = self._who()
                if given and who is None:
                    return self._error(401, "unknown token")
                return self._json(200, state(self.server.store, self.server.folder, who, self.server.event_name,
                                             self.server.files))
            if path.startswith("/api/evidence/"):
                return self._evidence(path[len("/api/evidence/"):])
            return self._error(404, "not found")
        finally:
            self.server.store.close()  # one connection per request thread, closed with it

    def do_POST(self):
        path = urlsplit(self.path).path
        try:
            if path == "/api/login":
                return self._login()
            if path == "/api/logout":
                return self._json(200, {"view": "public"}, {"Set-Cookie": f"{COOKIE}=; Max-Age=0; Path=/; HttpOnly; "
                                                                           f"SameSite=Strict"})
            if path == "/api/signoff":
                return self._signoff()
            return self._error(404, "not found")
        finally:
            self.server.store.close()

    def _static(self, name: str, content_type: str) -> None:
        self._send(200, (STATIC / name).read_bytes(), content_type, {"Content-Security-Policy": PAGE_CSP})

    def _login(self) -> None:
        body = self._body()
        token = body.get("token") if body else None
        who = self.server.store.authenticate(token) if isinstance(token, str) else None
        if who is None:
            return self._error(401, "unknown token")
        self._json(200, {"view": "organiser" if who == ORGANISER else "participant"},
                   {"Set-Cookie": f"{COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict"})

    def _evidence(self, rest: str) -> None:
        given, who = self._who()
        if who is None:
            return self._error(401, "unknown token" if given else "log in to see evidence")
        ident, _, relative = rest.partition("/")
        row = self.server.store.try_by_id(int(ident)) if ident.isdigit() and len(ident) < 12 else None
        cell = self.server.store.cell(row["cell"]) if row is not None else None
        allowed = cell is not None and (who == ORGANISER or who in (cell.a_participant, cell.b_participant))
        target = evidence_path(self.server.folder, row["evidence"], unquote(relative)) if allowed else None
        if target is None:  # not yours and not there look the same
            return self._error(404, "not found")
        content_type = mimetypes.guess_type(target.name)[0] or "application/octet-stream"
        textual = target.suffix in TEXT_SUFFIXES or content_type.startswith("text/")
        headers = {"Content-Security-Policy": EVIDENCE_CSP,
                   "Content-Disposition": f"{'inline' if textual else 'attachment'}; filename=\"{quote(target.name)}\""}
        self._send(200, target.read_bytes(), "text/plain; charset=utf-8" if textual else "application/octet-stream",
                   headers)

    def _signoff(self) -> None:
        given, who = self._who()
        if who is None:
            return self._error(401, "unknown token" if given else "log in to sign off")
        body = self._body()
        if body is None:
            return self._error(400, "a JSON object expected (Content-Type: application/json)")
        cell_id, word, note, seen = body.get("cell"), body.get("state"), body.get("note", ""), body.get("try")
        if not _number(cell_id) or (seen is not None and not _number(seen)) or word not in SIGNOFF_STATES \
                or not isinstance(note, str) or len(note) > MAX_NOTE:
            return self._error(400, f"cell (a number), state (one of {', '.join(SIGNOFF_STATES)}), note "
                                    f"(text, at most {MAX_NOTE} characters) and try (the try seen) expected")
        cell = self.server.store.cell(cell_id)
        if cell is None or who not in (cell.a_participant, cell.b_participant):
            return self._error(404 if who != ORGANISER or cell is None else 403,
                               "the organiser does not sign off for a participant" if who == ORGANISER and cell
                               else "not found")
        if word == "disputed" and not note.strip():
            return self._error(400, "a dispute needs a note saying what is wrong")
        try:
            latest = self.server.store.sign(cell.id, who, word, note.strip(), seen)
        except LookupError as exc:
            return self._error(409, str(exc))
        self._json(200, {"cell": cell.id, "try": latest["id"], "state": word})


def _number(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def serve(folder: Path, host: str, port: int) -> int:
    board = Board((host, port), folder)
    stop = threading.Event()

    def finish(*_):
        if not stop.is_set():
            stop.set()
            threading.Thread(target=board.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, finish)
    signal.signal(signal.SIGINT, finish)
    print(f"board of {board.folder}: http://{host}:{board.server_address[1]}/", flush=True)
    try:
        board.serve_forever(poll_interval=0.2)
    finally:
        board.server_close()
    return 0
