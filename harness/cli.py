"""`overlay-interop`: the command line. Subcommands:

    run [--reports-dir DIR] [PYTEST ARGS...]   the default interop matrix (pytest over suites/), then a summary
    images build [VENDOR...]                   build (or confirm cached) vendor images and the tools image
    doctor                                     what this host and its Docker engine can do
    clean                                      remove containers and networks left by dead runs
    report DIR                                 (re)write DIR/matrix.html and DIR/conformance/ from DIR/matrix.json
    report merge DIR... --into OUT             join the reports of shards (--shard i/n) into one run
    transcript FILE [--keys-from LOG ...]      the transcript of any capture (IPsec decoded, decrypted with keys)
    history [DIR...] [--out FILE]              one page: each cell's verdict across runs, where it changed
"""
from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

from harness import transcript_cli
from harness.errors import ConfigError, HarnessError
from harness.run import new_run_id

PROJECT_ROOT = Path(__file__).resolve().parent.parent


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


def cmd_run(args, pytest_args: list[str]) -> int:
    suites = PROJECT_ROOT / "suites"
    if not suites.is_dir():
        raise HarnessError(f"{suites}: not found; run overlay-interop from a checkout of the project")
    reports = Path(args.reports_dir or PROJECT_ROOT / "reports" / new_run_id()).resolve()
    # Pairs are independent labs: by default one xdist worker per core (the user's -n wins).
    parallel = [] if any(a == "-n" or a.startswith(("-n", "--numprocesses")) for a in pytest_args) else ["-n", "auto"]
    junit = [] if any(a.startswith("--junitxml") for a in pytest_args) else [f"--junitxml={reports / 'junit.xml'}"]
    command = [sys.executable, "-m", "pytest", str(suites), "--rootdir", str(PROJECT_ROOT),
               "--reports-dir", str(reports), "-q", *parallel, *junit, *pytest_args]
    code = subprocess.call(command, cwd=PROJECT_ROOT)  # its terminal summary ends with the matrix
    if (reports / "matrix.json").exists():
        print(f"\nopen:    {reports / 'matrix.html'}"
              f"\nmatrix:  {reports / 'matrix.json'}\npairs:   {reports / 'pairs'} (pcap, logs, configs per pair)"
              f"\njunit:   {reports / 'junit.xml'}"
              f"\nallure:  scripts/allure-report.sh {reports}  (Allure Report 3, needs Node.js)")
    return code


def cmd_images_build(args) -> int:
    from harness.images import Images
    registry = _registry(PROJECT_ROOT / "vendors")
    unknown = [v for v in args.vendors if v not in registry]
    if unknown:
        print(f"overlay-interop: error: no such vendor: {', '.join(unknown)}; known: {', '.join(registry)}",
              file=sys.stderr)
        return 2
    images = Images(_docker())
    print(f"tools: {images.tools()}")
    for name in args.vendors or registry:
        print(f"{name}: {images.ensure(name, registry[name].folder)}", flush=True)
    return 0


def cmd_doctor(args) -> int:
    import docker as docker_sdk
    from harness.host import probe
    from harness.images import REGISTRY_BASE, Images
    client = _docker()
    version = client.version()
    print(f"docker engine {version.get('Version')} (API {version.get('ApiVersion')}) at "
          f"{client.api.base_url}; docker SDK {docker_sdk.__version__}")
    print(f"registry: {_registry_answer(REGISTRY_BASE)}")
    images = Images(client)
    print(f"base image: {images.base}")
    host = probe(client, images.tools())
    print(host.describe())
    print("what it means for the matrix:")
    for line in matrix_consequences(_registry(Path(args.vendors_dir)), host):
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
            return 2
        results = merge_runs(Path(args.into), [Path(d) for d in args.dirs])
        print(f"{len(results)} pair-cases from {len(args.dirs)} runs")
        args.dir = args.into
    reports = Path(args.dir)
    if not (reports / "matrix.json").is_file():
        raise HarnessError(f"{reports / 'matrix.json'}: not found; DIR is a run's reports folder")
    for path in write_pages(reports):
        print(path)
    return 0


def cmd_history(args) -> int:
    from harness import history
    from harness.report import history as page
    try:
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
    except ConfigError as exc:  # bad input: a usage error
        print(f"overlay-interop: error: {exc}", file=sys.stderr)
        return 2
    lines = history.timeline(runs)
    changed = sum(any(step.change for step in steps) for steps in lines.values())
    print(f"{path}: {len(runs)} run{'s' if len(runs) != 1 else ''}, {len(lines)} cells, {changed} changed verdict")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="overlay-interop", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run the default interop matrix; extra arguments go to pytest")
    run.add_argument("--reports-dir", help="output folder (default: reports/<run id>)")
    images = sub.add_parser("images", help="vendor images")
    images_sub = images.add_subparsers(dest="images_command", required=True)
    build = images_sub.add_parser("build", help="build vendor images (all by default)")
    build.add_argument("vendors", nargs="*")
    doctor = sub.add_parser("doctor", help="print what this host and its Docker engine can do")
    doctor.add_argument("--vendors-dir", default=str(PROJECT_ROOT / "vendors"))
    sub.add_parser("clean", help="remove what dead runs left behind")
    report = sub.add_parser("report", help="(re)write a run's HTML pages from its matrix.json")
    report.add_argument("dir", metavar="DIR", help="the run's reports folder, e.g. reports/latest; or 'merge'")
    report.add_argument("dirs", nargs="*", metavar="SHARD_DIR", help="with merge: the shards' reports folders")
    report.add_argument("--into", metavar="OUT", help="with merge: the folder of the joined run")
    transcript_cli.add_parser(sub)
    hist = sub.add_parser("history", help="one page of each cell's verdict across runs, oldest to newest")
    hist.add_argument("dirs", nargs="*", metavar="DIR", help="runs' reports folders (default: every run under reports/)")
    hist.add_argument("--out", metavar="FILE", help="the page to write (default: reports/history.html)")
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
        return {"doctor": cmd_doctor, "clean": cmd_clean, "report": cmd_report}[args.command](args)
    except HarnessError as exc:
        print(f"overlay-interop: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
