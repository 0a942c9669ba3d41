"""The event's state in SQLite (DIR/event.sqlite): participants and their token hashes, the plan's slots, every
try of every cell, and the participants' sign-offs.

The runner (`event run`, one process per slot, and its pytest plugin harness.event.live) and the board (a
threaded web server) write at the same time. SQLite in WAL mode lets readers go on while one writer writes;
every write is one short `BEGIN IMMEDIATE` transaction (the write lock taken up front, so a read-then-write such
as "the next try number of this cell" cannot interleave with another writer's), and busy_timeout makes a second
writer wait for the lock instead of failing. Each thread and process opens its own connection (sqlite3
connections must not be shared across threads).

Tokens: `secrets.token_urlsafe(32)`, 256 random bits, shown once and stored as SHA-256. A slow salted hash
(scrypt, PBKDF2) exists to make guessing a low-entropy password expensive; a 256-bit random token cannot be
guessed however fast the hash is, so a plain hash loses nothing, and it keeps every request's check cheap.
The check compares against every stored hash with hmac.compare_digest and no early exit.
"""
from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import sqlite3
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from harness.errors import ConfigError

DB_FILE = "event.sqlite"
SCHEMA_VERSION = 1
BUSY_TIMEOUT_MS = 30_000
ORGANISER = "organiser"  # the organiser's id in the token check: no participant may take it (not a safe id? it is)
SIGNOFF_STATES = ("verified", "disputed", "re-test requested")
INCOMPLETE = (2, 130)  # the exit status of a slot's run that did not run its cells: bad input, interrupted
TO_BE_VERIFIED = "to be verified"

SCHEMA = """
CREATE TABLE schema_version (version INTEGER NOT NULL);
CREATE TABLE participants (
    id TEXT PRIMARY KEY, organisation TEXT NOT NULL, contact TEXT NOT NULL, label TEXT NOT NULL UNIQUE,
    token_hash BLOB NOT NULL);
CREATE TABLE organiser (one INTEGER PRIMARY KEY CHECK (one = 1), token_hash BLOB NOT NULL);
CREATE TABLE entries (
    name TEXT PRIMARY KEY, participant TEXT NOT NULL REFERENCES participants(id), kind TEXT NOT NULL);
CREATE TABLE slots (
    number INTEGER PRIMARY KEY, protocol TEXT NOT NULL, a TEXT NOT NULL, b TEXT NOT NULL, round INTEGER NOT NULL,
    cells INTEGER NOT NULL, estimate_s REAL NOT NULL);
CREATE TABLE runs (
    id TEXT PRIMARY KEY, slot INTEGER, started REAL NOT NULL, finished REAL, exit_code INTEGER,
    owner TEXT NOT NULL);
CREATE TABLE cells (
    id INTEGER PRIMARY KEY, key TEXT NOT NULL UNIQUE, protocol TEXT NOT NULL, "case" TEXT NOT NULL,
    a TEXT NOT NULL, b TEXT NOT NULL, a_participant TEXT NOT NULL, b_participant TEXT NOT NULL);
CREATE TABLE tries (
    id INTEGER PRIMARY KEY, cell INTEGER NOT NULL REFERENCES cells(id), number INTEGER NOT NULL,
    run TEXT NOT NULL, slot INTEGER, verdict TEXT NOT NULL, reason TEXT NOT NULL, evidence TEXT,
    duration_s REAL, started REAL, finished REAL NOT NULL,
    UNIQUE (cell, number), UNIQUE (cell, run));
CREATE TABLE signoffs (
    id INTEGER PRIMARY KEY, cell INTEGER NOT NULL REFERENCES cells(id), try INTEGER NOT NULL REFERENCES tries(id),
    participant TEXT NOT NULL, state TEXT NOT NULL, note TEXT NOT NULL, time REAL NOT NULL);
CREATE INDEX tries_by_cell ON tries (cell, number);
CREATE INDEX signoffs_by_cell ON signoffs (cell, participant, id);
"""


def token_hash(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8")).digest()


def new_token() -> str:
    return secrets.token_urlsafe(32)


@dataclass(frozen=True)
class Cell:
    id: int
    key: str
    protocol: str
    case: str
    a: str
    b: str
    a_participant: str
    b_participant: str


class Store:
    def __init__(self, folder: Path):
        self.path = Path(folder) / DB_FILE
        self._local = threading.local()

    # --- connections ---------------------------------------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None)
        db.row_factory = sqlite3.Row
        db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        db.execute("PRAGMA journal_mode = WAL")
        db.execute("PRAGMA foreign_keys = ON")
        return db

    @property
    def db(self) -> sqlite3.Connection:
        db = getattr(self._local, "db", None)
        if db is None:
            if not self.path.exists():
                raise ConfigError(str(self.path), "(file)", "not found; run `overlay-interop event init DIR` first")
            try:
                db = self._connect()
            except sqlite3.DatabaseError:
                raise ConfigError(str(self.path), "schema_version", "not an event database") from None
            self._check_version(db)
            self._local.db = db
        return db

    @contextmanager
    def write(self):
        """One write transaction, the write lock taken at its start."""
        db = self.db
        db.execute("BEGIN IMMEDIATE")
        try:
            yield db
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")

    def close(self) -> None:
        db = getattr(self._local, "db", None)
        if db is not None:
            db.close()
            self._local.db = None

    def create(self) -> bool:
        """Make the database when it is not there yet; False when it was."""
        if self.path.exists():
            return False
        db = self._connect()
        try:  # one transaction: a reader never sees half a schema, or a schema without its version
            db.executescript(f"BEGIN IMMEDIATE; {SCHEMA} INSERT INTO schema_version VALUES ({SCHEMA_VERSION}); COMMIT;")
        finally:
            db.close()
        return True

    def _check_version(self, db) -> None:
        try:
            version = db.execute("SELECT version FROM schema_version").fetchone()[0]
        except (sqlite3.DatabaseError, TypeError):
            db.close()
            raise ConfigError(str(self.path), "schema_version", "not an event database") from None
        if version != SCHEMA_VERSION:
            db.close()
            raise ConfigError(str(self.path), "schema_version", f"{version}; this overlay-interop reads version "
                                                                f"{SCHEMA_VERSION}")

    # --- participants and tokens ---------------------------------------------------------------------------

    def participants(self) -> dict[str, sqlite3.Row]:
        return {r["id"]: r for r in self.db.execute("SELECT * FROM participants ORDER BY label")}

    def sync_participants(self, participants, kinds: dict[str, str], where: str = "participants.toml"
                          ) -> dict[str, str]:
        """Bring the table in line with participants.toml: new participants get a label and a token (returned,
        {id: token}, to be shown once), existing ones keep theirs, removed ones without tries go."""
        tokens = {}
        with self.write() as db:
            known = {r["id"] for r in db.execute("SELECT id FROM participants")}
            for gone in known - set(participants):
                if db.execute("SELECT 1 FROM cells WHERE a_participant = ? OR b_participant = ?",
                              (gone, gone)).fetchone():
                    raise ConfigError(where, f"participant {gone}", "has results in this event and cannot be "
                                                                    "removed (keep its table)")
                db.execute("DELETE FROM entries WHERE participant = ?", (gone,))
                db.execute("DELETE FROM participants WHERE id = ?", (gone,))
            used = {r["label"] for r in db.execute("SELECT label FROM participants")}
            fresh = [p for p in participants.values() if p.id not in known]
            free = [label for label in _labels(len(used) + len(fresh)) if label not in used]
            secrets.SystemRandom().shuffle(free)  # file order must not tell who hides behind a label
            for participant in participants.values():
                if participant.id in known:
                    db.execute("UPDATE participants SET organisation = ?, contact = ? WHERE id = ?",
                               (participant.organisation, participant.contact, participant.id))
                else:
                    tokens[participant.id] = new_token()
                    db.execute("INSERT INTO participants VALUES (?, ?, ?, ?, ?)",
                               (participant.id, participant.organisation, participant.contact, free.pop(),
                                token_hash(tokens[participant.id])))
            db.execute("DELETE FROM entries")
            for participant in participants.values():
                for entry in participant.entries:
                    db.execute("INSERT INTO entries VALUES (?, ?, ?)", (entry, participant.id, kinds[entry]))
            if db.execute("SELECT 1 FROM organiser").fetchone() is None:
                tokens[ORGANISER] = new_token()
                db.execute("INSERT INTO organiser VALUES (1, ?)", (token_hash(tokens[ORGANISER]),))
        return tokens

    def renew_token(self, who: str) -> str:
        token = new_token()
        with self.write() as db:
            if who == ORGANISER:
                db.execute("UPDATE organiser SET token_hash = ?", (token_hash(token),))
            elif not db.execute("UPDATE participants SET token_hash = ? WHERE id = ?",
                                (token_hash(token), who)).rowcount:
                raise ConfigError("--new-token", who, "no such participant")
        return token

    def authenticate(self, token: str | None) -> str | None:
        """ORGANISER, a participant's id, or None. Every hash is compared, in constant time each."""
        if not token:
            return None
        given = token_hash(token)
        found = None
        rows = [(ORGANISER, r["token_hash"]) for r in self.db.execute("SELECT token_hash FROM organiser")]
        rows += [(r["id"], r["token_hash"]) for r in self.db.execute("SELECT id, token_hash FROM participants")]
        for who, stored in rows:
            if hmac.compare_digest(given, stored):
                found = who
        return found

    def entries(self) -> dict[str, str]:
        return {r["name"]: r["participant"] for r in self.db.execute("SELECT name, participant FROM entries")}

    # --- the plan ------------------------------------------------------------------------------------------

    def save_plan(self, slots) -> None:
        with self.write() as db:
            db.execute("DELETE FROM slots")
            db.executemany("INSERT INTO slots VALUES (?, ?, ?, ?, ?, ?, ?)",
                           [(s.number, s.protocol, s.a, s.b, s.round, s.cells, s.estimate_s) for s in slots])

    def slots(self) -> list[sqlite3.Row]:
        return list(self.db.execute("SELECT * FROM slots ORDER BY number"))

    def case_seconds(self) -> dict[tuple[str, str], float]:
        """The mean measured duration of each (protocol, case) over this event's tries that ran."""
        return {(r["protocol"], r["case"]): r["mean"] for r in self.db.execute(
            'SELECT c.protocol, c."case", AVG(t.duration_s) AS mean FROM tries t JOIN cells c ON c.id = t.cell '
            "WHERE t.duration_s > 0 AND t.verdict IN ('passed', 'failed') GROUP BY c.protocol, c.\"case\"")}

    # --- runs and tries ------------------------------------------------------------------------------------

    def start_run(self, run: str, slot: int | None) -> None:
        from harness.run import owner_of
        with self.write() as db:
            db.execute("INSERT INTO runs VALUES (?, ?, ?, NULL, NULL, ?)", (run, slot, time.time(),
                                                                           owner_of(os.getpid())))

    def finish_run(self, run: str, exit_code: int) -> None:
        with self.write() as db:
            db.execute("UPDATE runs SET finished = ?, exit_code = ? WHERE id = ?", (time.time(), exit_code, run))

    def runs(self) -> list[sqlite3.Row]:
        return list(self.db.execute("SELECT * FROM runs ORDER BY started"))

    def slot_progress(self) -> tuple[set[int], set[int]]:
        """(running, done): the slots a live `event run` is running, and those a run finished. A run that was
        interrupted (^C) or stopped on bad input, or whose process died (SIGKILL, a reboot), did neither: its
        slot is still to run."""
        from harness.run import owner_alive
        running, done = set(), set()
        for run in self.runs():
            if run["finished"] is None:
                if owner_alive(run["owner"]) is not False:
                    running.add(run["slot"])
            elif run["exit_code"] not in INCOMPLETE:
                done.add(run["slot"])
        return running, done - running

    def record_try(self, run: str, slot: int | None, key: str, cell: tuple[str, str, str, str],
                   owners: tuple[str, str], verdict: str, reason: str, evidence: str | None,
                   duration_s: float | None) -> int:
        """The try of `cell` in `run`: a new try (numbered after the cell's earlier ones, which stay), or, when
        the run already recorded one (the live plugin, then the final matrix), that try updated. Its number."""
        protocol, case, a, b = cell
        with self.write() as db:
            db.execute('INSERT OR IGNORE INTO cells (key, protocol, "case", a, b, a_participant, b_participant) '
                       "VALUES (?, ?, ?, ?, ?, ?, ?)", (key, protocol, case, a, b, *owners))
            cell_id = db.execute("SELECT id FROM cells WHERE key = ?", (key,)).fetchone()[0]
            known = db.execute("SELECT number FROM tries WHERE cell = ? AND run = ?", (cell_id, run)).fetchone()
            if known:
                db.execute("UPDATE tries SET verdict = ?, reason = ?, evidence = ?, duration_s = ?, finished = ? "
                           "WHERE cell = ? AND run = ?",
                           (verdict, reason, evidence, duration_s, time.time(), cell_id, run))
                return known[0]
            number = db.execute("SELECT COALESCE(MAX(number), 0) + 1 FROM tries WHERE cell = ?",
                                (cell_id,)).fetchone()[0]
            now = time.time()
            db.execute("INSERT INTO tries (cell, number, run, slot, verdict, reason, evidence, duration_s, started, "
                       "finished) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                       (cell_id, number, run, slot, verdict, reason, evidence, duration_s,
                        now - (duration_s or 0), now))
            return number

    def cells(self) -> list[Cell]:
        return [Cell(r["id"], r["key"], r["protocol"], r["case"], r["a"], r["b"], r["a_participant"],
                     r["b_participant"]) for r in self.db.execute("SELECT * FROM cells ORDER BY key")]

    def cell(self, cell_id: int) -> Cell | None:
        return next((c for c in self.cells() if c.id == cell_id), None)

    def tries(self, cell_id: int | None = None) -> list[sqlite3.Row]:
        if cell_id is None:
            return list(self.db.execute("SELECT * FROM tries ORDER BY cell, number"))
        return list(self.db.execute("SELECT * FROM tries WHERE cell = ? ORDER BY number", (cell_id,)))

    def try_by_id(self, try_id: int) -> sqlite3.Row | None:
        return self.db.execute("SELECT * FROM tries WHERE id = ?", (try_id,)).fetchone()

    # --- sign-off ------------------------------------------------------------------------------------------

    def sign(self, cell_id: int, participant: str, state: str, note: str, seen: int | None = None) -> sqlite3.Row:
        """A participant of the cell confirms, disputes or asks for a re-test of the cell's latest try; `seen`,
        the try the participant looked at: a newer one that landed meanwhile is not signed unseen."""
        if state not in SIGNOFF_STATES:
            raise ValueError(f"state: one of {', '.join(SIGNOFF_STATES)}")
        with self.write() as db:
            latest = db.execute("SELECT id FROM tries WHERE cell = ? ORDER BY number DESC LIMIT 1",
                                (cell_id,)).fetchone()
            if latest is None:
                raise LookupError("the cell has no try to sign off")
            if seen is not None and seen != latest[0]:
                raise LookupError("a newer try of this cell has landed: look at it, then sign it off")
            db.execute("INSERT INTO signoffs (cell, try, participant, state, note, time) VALUES (?, ?, ?, ?, ?, ?)",
                       (cell_id, latest[0], participant, state, note, time.time()))
        return latest

    def signoffs(self) -> dict[tuple[int, str], sqlite3.Row]:
        """Each participant's latest word on each cell: (cell id, participant) -> row."""
        return {(r["cell"], r["participant"]): r for r in self.db.execute("SELECT * FROM signoffs ORDER BY id")}

    def data_version(self) -> tuple:
        """Changes when anything the board shows changed (any process's commit)."""
        return tuple(self.db.execute(
            "SELECT (SELECT COUNT(*) FROM tries), (SELECT MAX(finished) FROM tries), (SELECT COUNT(*) FROM signoffs),"
            " (SELECT COUNT(*) FROM runs), (SELECT COUNT(finished) FROM runs), (SELECT COUNT(*) FROM slots)"
        ).fetchone())


def cell_state(cell: Cell, latest_try: int | None, signoffs: dict[tuple[int, str], sqlite3.Row]) -> str:
    """The sign-off state of a cell's latest try: disputed or re-test requested when either participant said
    so, verified when both confirmed, else to be verified (a new try asks both again)."""
    words = [signoffs.get((cell.id, p)) for p in (cell.a_participant, cell.b_participant)]
    states = [w["state"] for w in words if w is not None and w["try"] == latest_try]
    for state in ("disputed", "re-test requested"):
        if state in states:
            return state
    return "verified" if len(states) == 2 and all(s == "verified" for s in states) else TO_BE_VERIFIED


def _labels(count: int) -> list[str]:
    """'Participant A' ... 'Participant Z', 'Participant AA' ...: enough for `count`."""
    def name(n: int) -> str:
        text = ""
        n += 1
        while n:
            n, rest = divmod(n - 1, 26)
            text = chr(ord("A") + rest) + text
        return text
    return [f"Participant {name(i)}" for i in range(count)]
