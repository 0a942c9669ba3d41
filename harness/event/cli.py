"""`overlay-interop event ...`: init, plan, run, board, report, bundle (docs/events.md)."""
from __future__ import annotations

import shutil
from pathlib import Path

from harness.errors import ConfigError

ROOT = Path(__file__).resolve().parent.parent.parent


def add_parser(sub) -> None:
    event = sub.add_parser("event", help="an interop event: participants, a pair-slot plan, a live board "
                                         "(docs/events.md)")
    event_sub = event.add_subparsers(dest="event_command", required=True)
    init = event_sub.add_parser("init", help="write the event's templates, or (re)read them: new participants get "
                                             "their token, printed once")
    init.add_argument("dir", metavar="DIR")
    init.add_argument("--participants", metavar="FILE", help="take this participants.toml (copied into DIR)")
    init.add_argument("--new-token", metavar="ID", help="a new token for participant ID (or 'organiser'), when the "
                                                        "old one was lost: the old one stops working")
    plan = event_sub.add_parser("plan", help="the pair slots, rounds, estimated time and partner coverage")
    plan.add_argument("dir", metavar="DIR")
    plan.add_argument("--runs", metavar="REPORTS", default=str(ROOT / "reports"),
                      help="where earlier runs are, for case durations this event has not measured yet "
                           "(default: the project's reports/)")
    run = event_sub.add_parser("run", help="run slots (default: every slot not run yet), each cell a new try")
    run.add_argument("dir", metavar="DIR")
    which = run.add_mutually_exclusive_group()
    which.add_argument("--slot", metavar="N", type=int, help="the slot numbered N in the plan")
    which.add_argument("--pair", metavar="A,B", help="the slots of participants A and B")
    run.add_argument("-n", metavar="N", dest="numprocesses",
                     help="labs in parallel within a slot (default: one per core; 0 with a device)")
    report = event_sub.add_parser("report", help="the public report: per feature, and a problem table naming no "
                                                 "participant (DIR/report.html, DIR/report.json)")
    report.add_argument("dir", metavar="DIR")
    bundle = event_sub.add_parser("bundle", help="a zip of one participant's evidence and its conformance page")
    bundle.add_argument("dir", metavar="DIR")
    bundle.add_argument("participant", metavar="PARTICIPANT", help="the participant's id")
    bundle.add_argument("--out", metavar="FILE", help="the zip to write (default: DIR/bundles/PARTICIPANT.zip)")
    board = event_sub.add_parser("board", help="serve the live board (public, participant and organiser views)")
    board.add_argument("dir", metavar="DIR")
    board.add_argument("--port", type=int, required=True)
    board.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1; the board "
                                                           "speaks plain HTTP: put TLS in front of it on a network)")


def _registry(event):
    from harness.vendor import load_registry
    registry = load_registry(ROOT / "vendors")
    if event is not None and event.inventory is not None:
        from harness.devices import registry_entries
        registry = {**registry, **registry_entries(event.inventory, registry)}
    return registry


def load_event(folder: Path):
    from harness.event import config
    from harness.vendor import load_registry
    return config.load(folder, ROOT, set(load_registry(ROOT / "vendors")))


def cmd_init(args) -> int:
    from harness.event import config
    from harness.event.store import ORGANISER, Store
    folder = Path(args.dir)
    if folder.exists() and not folder.is_dir():
        raise ConfigError(str(folder), "(folder)", "is a file; name a folder for the event")
    folder.mkdir(parents=True, exist_ok=True)
    store = Store(folder)
    if args.new_token:
        token = store.renew_token(args.new_token)
        print(f"new token for {args.new_token} (shown once; the old one no longer opens the board):\n"
              f"token {args.new_token}: {token}")
        return 0
    if args.participants:
        given = Path(args.participants)
        if not given.is_file():
            raise ConfigError(str(given), "(file)", "not found (--participants names a participants.toml)")
        if given.resolve() != (folder / config.PARTICIPANTS_FILE).resolve():
            shutil.copyfile(given, folder / config.PARTICIPANTS_FILE)
    written = []
    for name, text in ((config.EVENT_FILE, config.EVENT_TEMPLATE), (config.PARTICIPANTS_FILE,
                                                                     config.PARTICIPANTS_TEMPLATE)):
        if not (folder / name).exists():
            (folder / name).write_text(text)
            written.append(folder / name)
    if written:
        print("wrote " + " and ".join(str(p) for p in written) + f": edit, then run `overlay-interop event init "
                                                                    f"{folder}` again to register the participants")
        return 0
    event = load_event(folder)
    registry = _registry(event)
    kinds = {e: ("device" if e not in registry or getattr(registry[e], "device", None) else "vendor")
             for p in event.participants.values() for e in p.entries}
    created = store.create()
    tokens = store.sync_participants(event.participants, kinds, str(folder / config.PARTICIPANTS_FILE))
    labels = {r["id"]: r["label"] for r in store.participants().values()}
    print(f"{'created' if created else 'updated'} {store.path}: {len(event.participants)} participants")
    for ident in event.participants:
        print(f"  {ident:<20} {labels[ident]}")
    if tokens:
        print("tokens (shown this once, stored only as a hash; hand each to its participant):")
        for who, token in tokens.items():
            print(f"token {who}: {token}")
    else:
        print(f"no new participant: tokens unchanged (a lost one: event init {folder} --new-token ID|{ORGANISER})")
    return 0


def cmd_plan(args) -> int:
    from harness.event.plan import describe, make_plan, measured_in_runs
    from harness.event.store import Store
    event = load_event(Path(args.dir))
    store = Store(event.folder)
    _check_registered(store, event)
    # this event's own tries first: they ran on this event's host, under its load
    measured = {**measured_in_runs(Path(args.runs)), **store.case_seconds()}
    plan = make_plan(event, _registry(event), measured)
    store.save_plan(plan.slots)
    for line in describe(plan, event.config.default_case_seconds):
        print(line)
    return 0


def _check_registered(store, event) -> None:
    registered = set(store.participants())
    missing = sorted(set(event.participants) - registered)
    if missing:
        raise ConfigError(str(event.folder / "participants.toml"), f"participant {missing[0]}",
                          f"not registered yet: run `overlay-interop event init {event.folder}` (it makes its token)")


def cmd_run(args) -> int:
    from harness.event.plan import slot_cells
    from harness.event.runner import chosen_slots, run_slot
    from harness.event.store import INCOMPLETE, Store
    event = load_event(Path(args.dir))
    store = Store(event.folder)
    _check_registered(store, event)
    registry = _registry(event)
    slots = chosen_slots(store, args.slot, args.pair)
    if not slots:
        print("every slot of the plan has run; name one to run it again: --slot N or --pair A,B")
        return 0
    trouble = 0
    for slot in slots:
        cells = slot_cells(event, registry, slot["protocol"], slot["a"], slot["b"])
        if not cells:
            print(f"slot {slot['number']}: no cell left (the participants changed since the plan: run event plan)")
            continue
        code, wrote = run_slot(event, store, _SlotView(slot), cells, ROOT, args.numprocesses)
        if code in INCOMPLETE:  # a usage error repeats in every slot; ^C means stop
            return code
        trouble = trouble or not wrote  # a failed or broken cell is a result; a run without a matrix is not
    return 3 if trouble else 0


class _SlotView:
    def __init__(self, row):
        self.number, self.protocol, self.a, self.b = row["number"], row["protocol"], row["a"], row["b"]


def cmd_board(args) -> int:
    from harness.event.board import serve
    from harness.event.store import Store
    folder = Path(args.dir)
    Store(folder).db  # a missing or foreign database: one line, before the server starts
    return serve(folder, args.host, args.port)


def cmd_report(args) -> int:
    from harness.event.report import write_report
    from harness.event.store import Store
    event = load_event(Path(args.dir))
    for path in write_report(event, Store(event.folder)):
        print(path)
    return 0


def cmd_bundle(args) -> int:
    from harness.event.report import write_bundle
    from harness.event.store import Store
    event = load_event(Path(args.dir))
    print(write_bundle(event, Store(event.folder), args.participant, args.out))
    return 0


def cmd_event(args) -> int:
    return {"init": cmd_init, "plan": cmd_plan, "run": cmd_run, "board": cmd_board, "report": cmd_report,
            "bundle": cmd_bundle}[args.event_command](args)
