"""`overlay-interop`: the command line. Subcommands:

    run [OPTIONS] [PYTEST ARGS...]             the default interop matrix (pytest over suites/), then a summary
    images build [VENDOR...]                   build (or confirm cached) vendor images and the tools image
    doctor                                     what this host and its Docker engine can do
                                               (both take run's --vendors-dir, --no-project-vendors, --image)
    clean                                      remove containers and networks left by dead runs
    report DIR                                 (re)write DIR/matrix.html and DIR/conformance/ from DIR/matrix.json
    report merge DIR... --into OUT             join the reports of shards (--shard i/n) into one new run folder
    transcript FILE [--keys-from LOG ...]      the transcript of any capture (IPsec decoded, decrypted with keys)
    history [DIR...] [--out FILE]              one page: each cell's verdict across runs, where it changed
    expectations draft DIR                     an expectations file pinning a run's failed and skipped cells
    devices settings FILE                      write the settings files of the inventory's static devices
    event init|plan|run|board|report DIR       an interop event: participants, slots, a live board (docs/events.md)

Exit status: 2 for a usage error or bad input, 3 when the harness broke; `run` otherwise passes on pytest's
(see `run --help`).
"""
from __future__ import annotations

import argparse
import signal
import subprocess
import sys
from pathlib import Path

from harness import transcript_cli
from harness.errors import ConfigError, HarnessError
from harness.run import new_run_id
from harness.vendor import VERSION_CHOICES

PROJECT_ROOT = Path(__file__).resolve().parent.parent
USAGE, HARNESS_TROUBLE, INTERRUPTED = 2, 3, 130
# pytest's own exit statuses (pytest.ExitCode) that mean something else to a user of `run`.
PYTEST_INTERRUPTED, PYTEST_USAGE_ERROR, PYTEST_NO_TESTS = 2, 4, 5

RUN_EPILOG = """Every other argument goes to pytest unchanged (e.g. -x, -v, --lf, --tb=short, a path under suites/);
`python -m pytest suites --help` lists them.

exit status:
  0    every cell as expected (a cell expected to fail that passed is listed as fixed: update the
       expectations; with --strict it exits 1)
  1    at least one cell not as expected
  2    usage error or bad input (an option, vendor.toml, the expectations file), or no cell matched the
       selection
  3    the harness broke: a broken cell (lab, container or capture failed), or the harness failed before
       any cell ran
  130  interrupted (Ctrl-C)
"""


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (its full usage is one --help away), and an option is spelt out:
    `images build --vendors X` must not be taken for --vendors-dir (the subcommands inherit the class)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **{"allow_abbrev": False, **kwargs})

    def error(self, message):
        self.exit(USAGE, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _docker():
    import docker
    try:
        client = docker.from_env(timeout=300)
        client.ping()
        return client
    except docker.errors.DockerException as exc:
        raise HarnessError(f"no Docker engine answers ({exc}); run scripts/setup-host.sh") from None


def _registry(vendors_dir: Path):
    from harness.vendor import load_registry
    return load_registry(vendors_dir)


def add_vendor_options(parser) -> None:
    """Where the vendors come from, as `run` takes it: the project's vendors/, --vendors-dir folders added (or
    alone, --no-project-vendors), --image for a supplied image or another row."""
    parser.add_argument("--vendors-dir", metavar="DIR", action="append",
                        help="add the vendor folders in DIR (your own implementation, out of tree) to vendors/; "
                             "repeatable")
    parser.add_argument("--no-project-vendors", action="store_true",
                        help="only the --vendors-dir folders, not the project's vendors/")
    parser.add_argument("--image", metavar="VENDOR[@LABEL]=IMAGE", action="append",
                        help="VENDOR=IMAGE: a local image (tag or id) for VENDOR instead of building its folder; "
                             "VENDOR@LABEL=IMAGE: add it as the row VENDOR@LABEL, driven by VENDOR's adapter "
                             "(e.g. strongswan@dev=ci/strongswan:branch); repeatable; see docs/vendors.md")


def vendor_registry(args) -> dict:
    """Every vendor the options name, as a run would see it (harness.plugin._registry): the project's vendors/
    unless --no-project-vendors, the --vendors-dir folders, the --image rows and images (each checked present)."""
    from harness.vendor import check_images, load_registry, supply_images, vendors_folder
    folders = [] if args.no_project_vendors else [PROJECT_ROOT / "vendors"]
    folders += [vendors_folder(given) for given in args.vendors_dir or []]
    if not folders:
        raise ConfigError("--no-project-vendors", "(flag)", "leaves no vendor folder; add --vendors-dir DIR")
    found = load_registry(folders)
    if args.image:
        found = supply_images(found, args.image)
        client = _docker()
        check_images(args.image, lambda ref: _present(client, ref))
    return found


def _present(client, ref: str) -> bool:
    import docker
    try:
        client.images.get(ref)
        return True
    except docker.errors.ImageNotFound:
        return False


def _names(option: str):
    """argparse type of a comma-separated list: `--vendors ''` names nothing, which is a mistake, not "all"."""
    def check(text: str) -> str:
        if not [name for name in text.split(",") if name.strip()]:
            raise argparse.ArgumentTypeError(f"{text!r} names none; give a comma-separated list, or leave "
                                             f"{option} out for all")
        return text
    return check


def _count(text: str) -> str:
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"{text!r} is not a count (0, 1, 2, ...)")
    return text


def add_run_parser(sub) -> argparse.ArgumentParser:
    """The options of `run` a user needs, documented here and passed on to pytest as given."""
    run = sub.add_parser("run", help="run the interop matrix; other arguments go to pytest",
                         description="Run the interop matrix (pytest over suites/): one lab per case and pair of\n"
                                     "implementations, each verdict checked against the expectations.",
                         epilog=RUN_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
                         allow_abbrev=False)  # an abbreviation may be pytest's option, not ours
    run.add_argument("--vendors", metavar="A,B,...", type=_names("--vendors"),
                     help="the vendors to pair (default: every folder in vendors/)")
    run.add_argument("--protocols", metavar="P,...", type=_names("--protocols"),
                     help="the protocols to run (default: all)")
    run.add_argument("--shard", metavar="i/n", help="run only shard i of n of the cells (the same split on every "
                                                    "machine); join the shards with 'report merge'")
    run.add_argument("-k", metavar="EXPR", dest="keyword",
                     help="only the cells whose id matches EXPR, e.g. 'port_default and linux' (pytest's -k)")
    run.add_argument("-n", metavar="N", dest="numprocesses",
                     help="labs run in parallel (pytest-xdist; default: auto, one per core; 0: one at a time)")
    run.add_argument("--keep-lab", action="store_true", help="leave each pair's containers up for debugging")
    run.add_argument("--kernel", choices=("auto", "host", "vm"),
                     help="where a vendor gets the kernel a case needs: auto (default: a qemu microVM only where "
                          "this host lacks it), host (never a VM; such cells skip), vm (every vendor in a VM)")
    run.add_argument("--versions", choices=VERSION_CHOICES,
                     help="which cells pair a vendor's versions (vendor.toml [versions]): default (each vendor's "
                          "versions against each other, its newest against every vendor), all (every pair), none "
                          "(no version rows: the matrix without them)")
    run.add_argument("--expect", metavar="FILE|none",
                     help="the expectations file the verdicts are checked against (default: the project's "
                          "expectations/default.toml); none: no expectations, any failed cell exits 1")
    run.add_argument("--strict", action="store_true",
                     help="a cell expected to fail that passed (fixed) makes the run exit 1 (pytest's "
                          "--expect-strict: pytest has a --strict of its own)")
    run.add_argument("--reruns", metavar="N", type=_count,
                     help="run a failed or broken cell again in a fresh lab, up to N times; a cell whose verdict "
                          "changes between tries is flaky")
    run.add_argument("--compare", metavar="DIR|none",
                     help="mark the cells whose verdict changed since the run in DIR (default: the previous run "
                          "under reports/); none: no comparison")
    run.add_argument("--reports-dir", metavar="DIR", help="output folder (default: reports/<run id>)")
    add_vendor_options(run)
    run.add_argument("--devices", metavar="FILE", type=lambda p: str(Path(p).resolve()),  # pytest runs elsewhere
                     help="an inventory of devices under test outside the harness, paired like vendors "
                          "(docs/devices.md)")
    return run


def pytest_arguments(args) -> list[str]:
    """The run options given, as pytest options: the plugin's of the same names, values as given; --strict is
    the plugin's --expect-strict (pytest's own --strict means something else)."""
    forwarded = []
    for option, dest in (("--vendors", "vendors"), ("--protocols", "protocols"), ("--shard", "shard"),
                         ("-k", "keyword"), ("-n", "numprocesses"), ("--expect", "expect"),
                         ("--reruns", "reruns"), ("--compare", "compare"), ("--kernel", "kernel"),
                         ("--devices", "devices"), ("--versions", "versions")):
        if getattr(args, dest) is not None:
            forwarded += [option, getattr(args, dest)]
    # repeatable, each in one word (a value may start with '-'); a folder made absolute: pytest runs from the
    # project's root, not from where the user typed it
    forwarded += [f"--vendors-dir={Path(folder).resolve()}" for folder in args.vendors_dir or []]
    forwarded += [f"--image={spec}" for spec in args.image or []]
    return forwarded + [flag for flag, dest in (("--keep-lab", "keep_lab"), ("--expect-strict", "strict"),
                                                ("--no-project-vendors", "no_project_vendors"))
                        if getattr(args, dest)]


def cmd_run(args, pytest_args: list[str]) -> int:
    suites = PROJECT_ROOT / "suites"
    if not suites.is_dir():
        raise HarnessError(f"{suites}: not found; run overlay-interop from a checkout of the project")
    run_id = new_run_id()  # handed to pytest: the folder, run.json and the pages name one run
    reports = Path(args.reports_dir or PROJECT_ROOT / "reports" / run_id).resolve()
    # Pairs are independent labs: by default one xdist worker per core (the user's -n wins).
    parallel = [] if args.numprocesses is not None or any(a.startswith("--numprocesses") for a in pytest_args) \
        else ["-n", "auto"]
    junit = [] if any(a.startswith("--junitxml") for a in pytest_args) else [f"--junitxml={reports / 'junit.xml'}"]
    command = [sys.executable, "-m", "pytest", str(suites), "--rootdir", str(PROJECT_ROOT),
               "--reports-dir", str(reports), "--run-id", run_id, "-q", *parallel, *junit,
               *pytest_arguments(args), *pytest_args]
    code = _wait(subprocess.Popen(command, cwd=PROJECT_ROOT))  # its terminal summary ends with the matrix
    if (reports / "matrix.json").exists():
        print(f"\nopen:    {reports / 'matrix.html'}"
              f"\nmatrix:  {reports / 'matrix.json'}\npairs:   {reports / 'pairs'} (pcap, logs, configs per pair)"
              f"\njunit:   {reports / 'junit.xml'}"
              f"\nallure:  scripts/allure-report.sh {reports}  (Allure Report 3, needs Node.js)")
    if code == PYTEST_NO_TESTS:
        print("overlay-interop: error: no cell matched the selection (--vendors, --protocols, --shard, -k, paths)",
              file=sys.stderr)
        return USAGE
    if code == PYTEST_USAGE_ERROR:  # pytest printed the one line saying what
        return USAGE
    if code == PYTEST_INTERRUPTED or code == -signal.SIGINT:
        return INTERRUPTED
    return 128 - code if code < 0 else code  # killed by a signal: the shell's convention


def _wait(process: subprocess.Popen) -> int:
    """pytest's exit status. Ctrl-C reaches pytest too (one process group): it stops the cases and takes its
    labs down; this process waits for that rather than dying first and leaving them behind."""
    while True:
        try:
            return process.wait()
        except KeyboardInterrupt:
            continue


def cmd_images_build(args) -> int:
    from harness.images import Images
    registry = vendor_registry(args)
    unknown = [v for v in args.vendors if v not in registry]
    if unknown:
        print(f"overlay-interop: error: no such vendor: {', '.join(unknown)}; known: {', '.join(registry)}",
              file=sys.stderr)
        return USAGE
    from harness.images import TOOLS_IMAGE_DIR, ImageBuildError
    images = Images(_docker())
    wanted = {"tools": TOOLS_IMAGE_DIR}
    supplied = {}
    for name in args.vendors or registry:
        vendor = registry[name]
        own = vendor.images()  # with its companions
        if vendor.supplied_image:  # the user's own build runs: its folder's is not made (companions still are)
            supplied[name] = vendor.supplied_image
            own.pop(vendor.image_name, None)
        wanted.update(own)
    images.prepare(wanted)  # side by side; a failed build is raised below, by name
    failed = 0
    for name, ref in supplied.items():
        print(f"{name}: {ref} (supplied with --image, not built)", flush=True)
    for name, folder in wanted.items():
        try:
            print(f"{name}: {images.ensure(name, folder)}", flush=True)
        except ImageBuildError as exc:
            print(f"overlay-interop: error: {exc}", file=sys.stderr)
            failed += 1
    # The microVM kit and the VM roots of the vendors that may run as VMs (they declare host needs): what
    # --kernel auto boots where this host lacks them (docs/microvm.md).
    from harness import vm
    # One VM root per image that runs (a supplied image gets its own: it is what its row boots).
    for vendor in sorted({(v.supplied_image or v.image_name): v for name in args.vendors or registry
                          if (v := registry[name]).variant_needs or any(s.host for s in v.protocols.values())}.values(),
                         key=lambda v: v.name):
        try:
            print(f"vm-{vendor.image_name}{'' if not vendor.supplied_image else f' ({vendor.name})'}: "
                  f"{vm.vm_image(images, vendor.image(images))}", flush=True)
        except (ImageBuildError, HarnessError) as exc:
            print(f"overlay-interop: error: {exc}", file=sys.stderr)
            failed += 1
    return 1 if failed else 0


def cmd_doctor(args) -> int:
    import docker as docker_sdk
    from harness.host import declared, probe
    from harness.images import REGISTRY_BASE, Images
    client = _docker()
    version = client.version()
    print(f"docker engine {version.get('Version')} (API {version.get('ApiVersion')}) at "
          f"{client.api.base_url}; docker SDK {docker_sdk.__version__}")
    print(f"registry: {_registry_answer(REGISTRY_BASE)}")
    images = Images(client)
    print(f"base image: {images.base}")
    registry = vendor_registry(args)
    for vendor in registry.values():
        if vendor.supplied_image:
            print(f"{vendor.name}: runs the supplied image {vendor.supplied_image} (--image)")
    host = probe(client, images.tools(), declared(registry.values()))
    print(host.describe())
    print("what it means for the matrix:")
    for line in matrix_consequences(registry, host):
        print(f"  {line}")
    return 0


def _registry_answer(image: str) -> str:
    """Whether the engine's registry serves `image`'s manifest (a short, separate client: no registry at all
    must not stall the doctor)."""
    import docker
    client = docker.from_env(timeout=8)
    try:
        client.images.get_registry_data(image)
        return f"reachable ({image} found); vendor images build FROM it"
    except (docker.errors.DockerException, OSError) as exc:
        text = getattr(exc, "explanation", None) or str(exc) or type(exc).__name__
        first = " ".join(str(text).split())[:140]
        return f"not reachable ({first}); vendor images build FROM a debootstrapped base (scripts/setup-host.sh)"
    finally:
        client.close()


def matrix_consequences(registry, host) -> list[str]:
    """One line per vendor feature this host cannot provide (those cells skip, saying so), or that all can."""
    lines = []
    for vendor in registry.values():
        for protocol, support in sorted(vendor.protocols.items()):
            for feature, caps in sorted(support.host.items()):
                missing = host.missing(*sorted(caps))
                if missing:
                    lines.append(f"{vendor.name} {protocol}: cases needing {feature} skip "
                                 f"({'; '.join(host.reason(c) for c in missing)})")
    return lines or ["every declared vendor feature can run here"]


def cmd_clean(args) -> int:
    from harness.lab import reap
    removed = reap(_docker())
    print(f"removed {removed['containers']} containers and {removed['networks']} networks of dead runs")
    return 0


def cmd_report(args) -> int:
    from harness.report import write_pages
    if args.dir == "merge":
        from harness.results import merge_runs
        if not args.dirs or not args.into:
            print("overlay-interop: error: usage: overlay-interop report merge DIR... --into OUT", file=sys.stderr)
            return USAGE
        results = merge_runs(Path(args.into), [Path(d) for d in args.dirs], finish=write_pages)
        print(f"{len(results)} pair-cases from {len(args.dirs)} runs: {Path(args.into) / 'matrix.html'}")
        return 0
    if args.dirs or args.into:
        print("overlay-interop: error: usage: overlay-interop report DIR, or report merge DIR... --into OUT",
              file=sys.stderr)
        return USAGE
    for path in write_pages(Path(args.dir)):
        print(path)
    return 0


def cmd_history(args) -> int:
    from harness import history
    from harness.report import history as page
    root = PROJECT_ROOT / "reports"
    folders = [Path(d) for d in args.dirs] or history.run_folders(root)
    if not folders:
        raise ConfigError(str(root), "(runs)", "no run folder with a matrix.json; name the runs: history DIR...")
    out = Path(args.out or root / "history.html")
    if out.is_dir():
        raise ConfigError("--out", str(out), "is a folder; give the page's file name, e.g. history.html")
    runs = history.ordered(history.load(folder) for folder in folders)
    try:
        path = page.write(out, runs)
    except OSError as exc:  # e.g. a parent of --out is a file
        raise ConfigError("--out", str(out), exc.strerror or str(exc)) from None
    lines = history.timeline(runs)
    changed = sum(any(step.change for step in steps) for steps in lines.values())
    print(f"{path}: {len(runs)} run{'s' if len(runs) != 1 else ''}, {len(lines)} cells, {changed} changed verdict")
    return 0


def cmd_expectations(args) -> int:
    """Print an expectations file that pins the run in DIR as it is (harness.expectations.draft)."""
    from harness.expectations import draft
    from harness.results import read_matrix
    reports = Path(args.dir)
    if not (reports / "matrix.json").is_file():
        raise ConfigError(str(reports / "matrix.json"), "(file)", "not found; DIR is a run's reports folder")
    print(draft(read_matrix(reports)), end="")
    return 0


def cmd_devices_settings(args) -> int:
    from harness.devices import write_static_settings
    for line in write_static_settings(Path(args.file)):
        print(line)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = _Parser(prog="overlay-interop", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    add_run_parser(sub)
    images = sub.add_parser("images", help="vendor images")
    images_sub = images.add_subparsers(dest="images_command", required=True)
    build = images_sub.add_parser("build", help="build vendor images (all by default)")
    build.add_argument("vendors", nargs="*")
    add_vendor_options(build)
    doctor = sub.add_parser("doctor", help="print what this host and its Docker engine can do")
    add_vendor_options(doctor)
    sub.add_parser("clean", help="remove what dead runs left behind")
    report = sub.add_parser("report", help="(re)write a run's HTML pages from its matrix.json")
    report.add_argument("dir", metavar="DIR", help="the run's reports folder, e.g. reports/latest; or 'merge'")
    report.add_argument("dirs", nargs="*", metavar="SHARD_DIR", help="with merge: the shards' reports folders")
    report.add_argument("--into", metavar="OUT", help="with merge: a new folder for the joined run")
    transcript_cli.add_parser(sub)
    hist = sub.add_parser("history", help="one page of each cell's verdict across runs, oldest to newest")
    hist.add_argument("dirs", nargs="*", metavar="DIR", help="runs' reports folders (default: every run under reports/)")
    hist.add_argument("--out", metavar="FILE", help="the page to write (default: reports/history.html)")
    expect = sub.add_parser("expectations", help="draft an expectations file from a run")
    expect_sub = expect.add_subparsers(dest="expectations_command", required=True)
    drafted = expect_sub.add_parser("draft", help="print an expectations file pinning every failed and skipped "
                                                  "cell of the run in DIR as it is (edit it: globs, host, notes)")
    drafted.add_argument("dir", metavar="DIR", help="the run's reports folder, e.g. reports/latest")
    dev = sub.add_parser("devices", help="devices under test outside the harness (docs/devices.md)")
    dev_sub = dev.add_subparsers(dest="devices_command", required=True)
    dev_settings = dev_sub.add_parser("settings", help="write the settings file of each static device of an "
                                                       "inventory (what to configure it with once)")
    dev_settings.add_argument("file", metavar="FILE", help="the inventory (TOML)")
    from harness.event import cli as event_cli
    event_cli.add_parser(sub)
    args, rest = parser.parse_known_args(argv)
    if rest and args.command != "run":
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    try:
        if args.command == "run":
            return cmd_run(args, rest)
        if args.command == "images":
            return cmd_images_build(args)
        if args.command == "transcript":
            return transcript_cli.cmd_transcript(args)
        if args.command == "history":
            return cmd_history(args)
        if args.command == "expectations":
            return cmd_expectations(args)
        if args.command == "devices":
            return cmd_devices_settings(args)
        if args.command == "event":
            return event_cli.cmd_event(args)
        return {"doctor": cmd_doctor, "clean": cmd_clean, "report": cmd_report}[args.command](args)
    except ConfigError as exc:  # bad input: the user fixes it
        print(f"overlay-interop: error: {exc}", file=sys.stderr)
        return USAGE
    except HarnessError as exc:
        print(f"overlay-interop: error: {exc}", file=sys.stderr)
        return HARNESS_TROUBLE
    except KeyboardInterrupt:
        return INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
