"""The pytest plugin (entry point `pytest11`): options, the run's identity, pair parametrisation,
the per-pair lab fixture with its artifacts, allure labels and attachments, and matrix.json.

A suite module says which protocol it tests (`pytestmark = pytest.mark.protocol("ipsec")`) and asks for a
protocol fixture built on `vendor_pair`; this plugin turns that into one test per ordered vendor pair.
"""
from __future__ import annotations

import argparse
import importlib.util
import logging
import os
import time
from collections.abc import Iterator
from pathlib import Path

import allure
import docker
import pytest
from _pytest.runner import runtestprotocol

from harness import devices, history, protocols
from harness.errors import CaptureError, ConfigError, HarnessError
from harness import expectations
from harness.expectations import VM_CONDITION, Expectations, cell_key, host_answers
from harness.host import HostCapabilities, declared, probe
from harness.images import TOOLS_IMAGE_DIR, Images
from harness.lab import Lab, reap
from harness.pairlab import PROBES, PairLab, VendorPair, cells
from harness.report import write_pages
from harness.results import (CELL_LABEL, RANK, CaseResult, describe_case, expectation_summary, flaky_summary,
                             in_shard, mark_flaky, pair_dir, parse_shard, phase_durations, phase_verdict,
                             summary_table, write_matrix, write_run_facts)
from harness.run import Run, check_run_id, new_run_id, owner_of
from harness.vendor import (HARNESS_PEER, SUPPLIED, VERSION_CHOICES, Vendor, check_images, load_registry, narrow,
                            supply_images, vendors_folder)

log = logging.getLogger(__name__)
KERNEL_CHOICES = ("auto", "host", "vm")
DOCKER_TIMEOUT_S = 300  # HTTP timeout of the SDK; every wait of ours has its own, shorter, timeout


def pytest_addoption(parser):
    group = parser.getgroup("overlay-interop")
    group.addoption("--vendors", default=None, help="comma-separated vendors to pair (default: all in vendors/)")
    group.addoption("--protocols", default=None, help="comma-separated protocols to run (default: all)")
    group.addoption("--reports-dir", default=None,
                    help="where pcaps, logs, matrix.json and allure-results go (default: reports/<run id>)")
    group.addoption("--keep-lab", action="store_true", help="leave each pair's containers up for debugging")
    group.addoption("--vendors-dir", action="append", default=None, metavar="DIR",
                    help="a folder of vendor folders to add to the project's vendors/ (repeatable; a vendor name "
                         "in two folders is an error)")
    group.addoption("--no-project-vendors", action="store_true",
                    help="leave the project's vendors/ out: only the --vendors-dir folders (e.g. a changed copy of "
                         "a shipped vendor under its own name)")
    group.addoption("--image", action="append", default=None, metavar="VENDOR[@LABEL]=IMAGE",
                    help="VENDOR=IMAGE: run a local image (tag or id) for VENDOR instead of building its folder; "
                         "VENDOR@LABEL=IMAGE: add the row VENDOR@LABEL, the same adapter on IMAGE (repeatable)")
    group.addoption("--devices", default=None, metavar="FILE",
                    help="an inventory (TOML) of devices under test outside the harness: each pairs like a vendor, "
                         "on its own host interface (docs/devices.md)")
    group.addoption("--expect", default="default", metavar="FILE|none",
                    help="the expectations file the verdicts are judged against (default: the project's "
                         "expectations/default.toml; 'none': no expectations, every cell is expected to pass)")
    group.addoption("--expect-strict", action="store_true",
                    help="a cell expected to fail that passed (fixed) makes the run not as expected (exit 1)")
    group.addoption("--reruns", default=0, type=int, metavar="N",
                    help="run a failed or broken cell again, in a fresh lab, up to N times (a cell that fails "
                         "exactly as expected is not rerun); a cell whose verdict changes is recorded as flaky")
    group.addoption("--shard", default=None, metavar="i/n",
                    help="run only shard i of n of the pair-cases (stable across runs and machines); join the "
                         "shards' reports with 'overlay-interop report merge'")
    group.addoption("--compare", default=None, metavar="DIR|none",
                    help="mark the cells whose verdict changed since the run in DIR (default: the previous run "
                         "beside this one under reports/); 'none': compare with nothing")
    group.addoption("--versions", default="default", choices=VERSION_CHOICES,
                    help="which cells pair a vendor's versions (vendor.toml [versions]): default (each vendor's "
                         "versions against each other, its newest against every vendor), all (every pair), none "
                         "(no version rows)")
    group.addoption("--kernel", default="auto", choices=KERNEL_CHOICES,
                    help="where a vendor's node gets the kernel a case needs: auto (a qemu microVM only where this "
                         "host lacks a capability the vendor declares for the case), host (never a VM: such cells "
                         "skip), vm (every vendor node in a VM, to test that path on a capable host)")
    # `overlay-interop run` names the reports folder before pytest starts: it hands its run id over, so the
    # folder, run.json and the pages carry one id.
    group.addoption("--run-id", default=None, help=argparse.SUPPRESS)


def _csv(value: str | None) -> list[str]:
    return [v.strip() for v in (value or "").split(",") if v.strip()]


def _check_lists(config) -> None:
    """An option given with no names (`--vendors ''`) is a mistake, not "all": leaving it out means all."""
    for option in ("vendors", "protocols"):
        value = config.getoption(option)
        if value is not None and not _csv(value):
            raise ConfigError(f"--{option}", repr(value), "names none; give a comma-separated list, "
                                                          f"or leave --{option} out for all")


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config):
    config.addinivalue_line("markers", "protocol(name): the protocol a suite module tests")
    config.addinivalue_line("markers", "features(*names): vendor features a case needs (\"name@role\": only "
                                       "the side playing that role)")
    config.addinivalue_line("markers", "any_features(*names): vendor features a case needs on at least one side")
    config.addinivalue_line("markers", "severity(level): allure severity of a case (blocker, critical, normal, "
                                       "minor, trivial); normal by default")
    config.addinivalue_line("markers", "probes: one side misbehaves on purpose (the prober: the harness's "
                                       "built-in probe, or a vendor declaring probes) and the cell judges the "
                                       "other (harness.pairlab)")
    workerinput = getattr(config, "workerinput", None)
    if workerinput:  # an xdist worker: share the controller's run
        run_id, owner, reports = (workerinput["oi_run_id"], workerinput["oi_owner"], workerinput["oi_reports"])
        worker = workerinput["workerid"]
    else:
        run_id, owner, worker = config.getoption("run_id") or new_run_id(), owner_of(os.getpid()), "main"
        reports = config.getoption("reports_dir") or str(Path(config.rootpath) / "reports" / run_id)
    config.oi_run = Run(run_id, owner, worker, Path(reports).resolve(), config.getoption("keep_lab"))
    _check_keyword(config)
    try:  # only the --shard parse: a ValueError from elsewhere (a vendor.toml) is not a --shard error
        config.oi_shard = parse_shard(config.getoption("shard")) if config.getoption("shard") else None
    except ValueError as exc:
        raise pytest.UsageError(f"--shard: {exc}") from None
    try:
        check_run_id(run_id)
        _check_lists(config)
        for name in _csv(config.getoption("protocols")):
            protocols.load(name)
        _registry(config)
        config.oi_expectations = _expectations(config)
        if config.getoption("reruns") < 0:
            raise ConfigError("--reruns", str(config.getoption("reruns")), "must be 0 or more")
    except HarnessError as exc:  # bad option, vendor declaration or expectations file: one line, before anything
        raise pytest.UsageError(str(exc)) from None
    for name in protocols.known():  # each protocol's fixtures (ipsec_pair, ...), found by name only
        if importlib.util.find_spec(f"harness.protocols.{name}.fixtures"):
            config.pluginmanager.import_plugin(f"harness.protocols.{name}.fixtures")
    if not config.option.allure_report_dir:
        config.option.allure_report_dir = str(config.oi_run.reports_dir / "allure-results")
    if config.pluginmanager.hasplugin("xdist"):
        config.pluginmanager.register(_XdistHooks(), "overlay-interop-xdist")
    if not workerinput:
        try:
            compared, why_not = _compared_run(config), ""
        except HarnessError as exc:
            if config.getoption("compare"):  # named by the user: a usage error, before anything starts
                raise pytest.UsageError(str(exc)) from None
            compared, why_not = None, str(exc)  # the default: a damaged earlier run must not stop this one
        config.pluginmanager.register(MatrixRecorder(config.oi_run, config.oi_expectations,
                                                     config.getoption("expect_strict"), compared=compared,
                                                     why_not_compared=why_not), "overlay-interop-matrix")


def _compared_run(config) -> history.RunFolder | None:
    """The run --compare names, read now so a bad DIR stops the run before any lab starts."""
    option = config.getoption("compare")
    if option == "none":
        return None
    if option:
        folder = Path(option)
        if not (folder / "matrix.json").is_file():
            raise ConfigError("--compare", option, "no matrix.json there; give a run's reports folder, or 'none'")
    else:
        folder = history.previous_run(config.oi_run.reports_dir)
    return history.load(folder) if folder else None


class _XdistHooks:
    @pytest.hookimpl(optionalhook=True)
    def pytest_configure_node(self, node):
        run = node.config.oi_run
        node.workerinput.update(oi_run_id=run.id, oi_owner=run.owner, oi_reports=str(run.reports_dir))


def _check_keyword(config) -> None:
    """A -k expression pytest cannot parse is one usage line here, before any worker starts: under xdist each
    worker would fail on it alone and the controller end in an INTERNALERROR traceback instead."""
    from _pytest.mark.expression import Expression
    keyword = (config.getoption("keyword", "") or "").strip()
    if keyword and not getattr(config, "workerinput", None):
        try:
            Expression.compile(keyword)
        except Exception as exc:  # ParseError (pytest < 8.4) or SyntaxError: the expression's only failures
            raise pytest.UsageError(f"-k {keyword!r}: {exc} (a parametrized id with '@' or '->' needs -k on the "
                                    f"words around it, e.g. 'l2tp_over_ipsec and strongswan')") from None


DEFAULT_EXPECTATIONS = Path("expectations") / "default.toml"  # under the project's root


def _expectations(config) -> Expectations | None:
    """The expectations in force: --expect FILE, none with --expect none, else the project's shipped file."""
    choice = config.getoption("expect")
    if choice == "none":
        return None
    path = Path(config.rootpath) / DEFAULT_EXPECTATIONS if choice == "default" else Path(choice)
    if choice == "default" and not path.is_file():
        return None  # a checkout without the file (an out-of-tree suite): nothing is expected but passing
    return expectations.load(path, set(config.oi_capabilities))


def _registry(config) -> dict[str, Vendor]:
    """The vendors of this run (--vendors); `config.oi_capabilities` gets the host capabilities declared by the
    core, the protocol packages and every vendor of the folders, chosen or not (an expectations file names them)."""
    if not hasattr(config, "oi_registry"):
        folders = [] if config.getoption("no_project_vendors") else [Path(config.rootpath) / "vendors"]
        folders = [f for f in folders if f.is_dir()]  # an out-of-tree suite's checkout may have none
        folders += [vendors_folder(given) for given in config.getoption("vendors_dir") or []]
        everyone = load_registry(folders)
        if config.getoption("devices"):  # devices under test: registry entries with no folder (harness.devices)
            from harness.devices import registry_entries
            everyone = {**everyone, **registry_entries(Path(config.getoption("devices")), everyone)}
        specs = config.getoption("image") or []
        if specs:
            everyone = supply_images(everyone, specs)
        chosen = narrow(everyone, _csv(config.getoption("vendors")))
        left_out = [v for v in everyone.values() if v.labelled_by == SUPPLIED and v.name not in chosen]
        if left_out:  # asked for by --image, left out by --vendors: say so rather than drop it
            raise ConfigError("--image", repr(f"{left_out[0].name}={left_out[0].supplied_image}"),
                              f"--vendors leaves {left_out[0].name} out; name it there too")
        if specs:  # last: the one check that asks the engine
            check_images(specs, _local_image)
        config.oi_registry = chosen
        config.oi_capabilities = declared(everyone.values())
    return config.oi_registry


def _local_image(ref: str) -> bool:
    """Whether the engine has the image `ref` (a tag or id) here: a supplied image is never pulled or built."""
    try:
        client = docker.from_env(timeout=30)
        try:
            client.images.get(ref)
            return True
        finally:
            client.close()
    except docker.errors.ImageNotFound:
        return False
    except docker.errors.DockerException as exc:
        raise HarnessError(f"--image: no Docker engine answers to look {ref!r} up ({exc})") from None


def pytest_generate_tests(metafunc):
    if "vendor_pair" not in metafunc.fixturenames:
        return
    marker = metafunc.definition.get_closest_marker("protocol")
    if marker is None:
        raise ConfigError(str(metafunc.definition.path), "pytestmark",
                          "a suite using vendor_pair needs pytest.mark.protocol(<name>)")
    protocol = marker.args[0]
    case = metafunc.definition.originalname.removeprefix("test_")
    probes = metafunc.definition.get_closest_marker(PROBES) is not None
    pairs = cells(protocol, case, _registry(metafunc.config), probes, metafunc.config.getoption("versions"))
    metafunc.parametrize("vendor_pair", pairs, ids=[p.id for p in pairs])


def pytest_collection_modifyitems(config, items):
    wanted, shard = _csv(config.getoption("protocols")), config.oi_shard
    if not wanted and not shard:
        return
    keep, drop = [], []
    for item in items:
        marker = item.get_closest_marker("protocol")
        pair = getattr(item, "callspec", None) and item.callspec.params.get("vendor_pair")
        chosen = marker is None or not wanted or marker.args[0] in wanted
        if shard:  # a pair-case by its key; anything else (a harness self-test) once, in shard 1
            chosen = chosen and (in_shard(f"{pair.protocol}/{pair.case}/{pair.id}", shard) if pair
                                 else shard[0] == 1)
        (keep if chosen else drop).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item):
    """Each cell's matrix record starts here, and a cell its vendors' declarations rule out is skipped here,
    before any fixture runs: no Docker engine, host probe or lab is needed to say so."""
    pair = getattr(item, "callspec", None) and item.callspec.params.get("vendor_pair")
    if isinstance(pair, VendorPair):
        _label_allure(pair, item.get_closest_marker("severity"))
        clause, title = describe_case(item.function.__doc__)
        record = {"protocol": pair.protocol, "case": pair.case, "a": pair.a.name, "b": pair.b.name, "pcap": None,
                  "clause": clause, "title": title, "reference": pair.reference, "probe": pair.probe_side,
                  "try": getattr(item, "oi_attempt", 1)}
        # one record per try (a rerun sets the cell up again); a skipped cell belongs in the matrix too
        item.user_properties[:] = [p for p in item.user_properties if p[0] != "overlay_interop"]
        item.user_properties.append(("overlay_interop", record))
        reason = undeclared(item, pair)
        if reason:
            pytest.skip(reason)


def needed_by(marker, role: str | None = None) -> set[str]:
    """The features a `features` mark asks of the side playing `role`: every name, and "name@role" for that role
    only (a downgrade case needs the feature on one side); None: what either side may be asked."""
    names = marker.args if marker else ()
    return {name.partition("@")[0] for name in names
            if "@" not in name or role is None or name.partition("@")[2] == role}


def undeclared(item, pair: VendorPair) -> str | None:
    """Why the pair cannot run the case, from the vendors' declarations alone: a feature the case needs that a
    side does not declare (in the vendor's own words where its vendor.toml says why, `gaps`), or an
    `any_features` feature neither side declares (in a case marked `probes`, the `probes` feature where vendors
    play the prober and neither side declares it). None if the declarations allow the case."""
    marker = item.get_closest_marker("features")
    players = list(zip(pair.roles, (pair.a, pair.b)))
    for feature in protocols.both_or_neither(pair.protocol):
        having = [(role, v) for role, v in players if not v.missing_features(pair.protocol, {feature}, role)]
        if len(having) == 1:
            (role, v), = having
            other_role, other = next((r, o) for r, o in players if r != role)
            return (f"{v.name} as {role} speaks {pair.protocol} only with {feature}, and {other.name} as "
                    f"{other_role} does not declare {feature}")
    said: dict[tuple[str, str, str], list[str]] = {}  # (vendor, what it lacks, why) -> roles: a->a says it once
    for role, v in players:
        missing = v.missing_features(pair.protocol, needed_by(marker, role), role)
        unstated = [f for f in missing if not v.gap(pair.protocol, f, role)]
        if unstated:
            said.setdefault((v.name, f"does not declare {', '.join(unstated)}", ""), []).append(role)
        for f in missing:
            if f not in unstated:
                said.setdefault((v.name, f"lacks {f}", f": {v.gap(pair.protocol, f, role)}"), []).append(role)
    if said:
        return "; ".join(f"{name} {what} as {' and '.join(roles)} for {pair.protocol}{why}"
                         for (name, what, why), roles in said.items())
    either = item.get_closest_marker("any_features")
    features = list(either.args if either else ())
    if item.get_closest_marker(PROBES) and pair.prober is None:  # vendors play the prober here: one side must
        features.append(PROBES)
    for feature in features:
        if all(v.missing_features(pair.protocol, {feature}, role) for role, v in players):
            stated = [f"{v.name} as {role}: {why}" for role, v in players
                      if (why := v.gap(pair.protocol, feature, role))]
            return ("neither " + " nor ".join(f"{v.name} as {role}" for role, v in players)
                    + f" declares {feature} for {pair.protocol}; one side must"
                    + (f" ({'; '.join(stated)})" if stated else ""))
    return None


@pytest.fixture(scope="session")
def docker_client():
    """The engine (DOCKER_HOST or the local socket), checked once; leftovers of dead runs are reaped first."""
    try:
        client = docker.from_env(timeout=DOCKER_TIMEOUT_S)
        client.ping()
    except docker.errors.DockerException as exc:
        raise HarnessError(f"no Docker engine answers ({exc}); run scripts/setup-host.sh") from None
    removed = reap(client)
    if any(removed.values()):
        log.warning("reaped leftovers of dead runs: %s", removed)
    yield client
    Lab.drain()
    client.close()


@pytest.fixture(scope="session")
def images(request, docker_client) -> Images:
    """The vendor images, every one this session's cells use built (in parallel) before the first case: a build
    is never part of a cell's lab-up."""
    images = Images(docker_client)
    wanted = {"tools": TOOLS_IMAGE_DIR}
    for item in request.session.items:
        pair = getattr(item, "callspec", None) and item.callspec.params.get("vendor_pair")
        if isinstance(pair, VendorPair):
            for vendor in (pair.a, pair.b):
                if vendor is not HARNESS_PEER:
                    wanted.update(vendor.images())
    took = images.prepare(wanted)
    built = {name: seconds for name, seconds in took.items() if seconds >= 1}
    if built:
        log.warning("images made before the first case: %s",
                    ", ".join(f"{name} {seconds:g}s" for name, seconds in built.items()))
    return images


@pytest.fixture(scope="session")
def host(pytestconfig, docker_client, images) -> HostCapabilities:
    _registry(pytestconfig)
    return probe(docker_client, images.tools(), pytestconfig.oi_capabilities)


@pytest.fixture
def pair_lab(request, vendor_pair: VendorPair, docker_client, images: Images,
             host: HostCapabilities) -> Iterator[PairLab]:
    """The cell's lab (harness.pairlab.PairLab), its evidence collected and the lab closed after the case."""
    config = request.config
    run: Run = config.oi_run
    folder = pair_dir(run.reports_dir, vendor_pair.protocol, vendor_pair.case, vendor_pair.a.name, vendor_pair.b.name)
    record = dict(request.node.user_properties)["overlay_interop"]  # made by pytest_runtest_setup
    attempt = record["try"]
    record["host"] = {name: host.describe_one(name) for name in sorted(host.present)}
    kernel = config.getoption("kernel")
    record["host"][VM_CONDITION] = "yes" if kernel != "host" else "no (--kernel host)"
    if kernel != "host":  # the first cell makes every VM image the session needs, before its clock starts
        request.getfixturevalue("vm_kernel")
    in_vm = _placement(request, vendor_pair, kernel)
    if attempt > 1:  # a rerun: the earlier try's evidence moves aside, kept whole
        _keep_try(folder, attempt - 1)
    folder.mkdir(parents=True, exist_ok=True)  # only for a pair that runs: every pair folder holds evidence
    started = time.monotonic()
    lab = Lab(docker_client, run, f"{vendor_pair.protocol}/{vendor_pair.case}/{vendor_pair.id}")
    vm_kernel = request.getfixturevalue("vm_kernel") if in_vm else None
    plab = PairLab(lab, vendor_pair, folder, images, vm=in_vm, vm_kernel=vm_kernel)
    if in_vm:  # which vendors ran in a VM, with which kernel: not the host's
        record["vm"] = {name: vm_kernel.release for name in sorted(in_vm)}
    try:
        yield plab
    finally:
        call_end = time.monotonic()
        unusable = None
        try:
            try:
                plab.collect()
            except CaptureError as exc:  # the evidence is filed all the same; the cell is broken below
                unusable = exc
            _attach(folder)
            pcap = folder / "capture.pcap"
            if pcap.exists():
                record["pcap"] = str(pcap.relative_to(run.reports_dir))
            record["versions"] = plab.versions
            record["images"] = plab.image_facts
            record["measurements"] = plab.measurements
        finally:
            lab.close(wait=False)  # the evidence is collected: the removal need not hold up the next case
            record["phases"] = phase_durations(started, plab.marks, call_end, time.monotonic())
        if unusable:
            raise unusable


TRIES = "tries"  # <pair folder>/tries/<n>/: the evidence of the earlier tries of a rerun cell


def try_dir(folder: Path, attempt: int) -> Path:
    return folder / TRIES / str(attempt)


def _keep_try(folder: Path, attempt: int) -> None:
    """Move what try `attempt` left in the pair folder to tries/<attempt>/, so the next try starts empty."""
    if not folder.is_dir():
        return
    dest = try_dir(folder, attempt)
    dest.mkdir(parents=True, exist_ok=True)
    for path in list(folder.iterdir()):
        if path.name != TRIES:
            path.rename(dest / path.name)


def _placement(request, pair: VendorPair, kernel: str) -> set[str]:
    """Which vendors of the cell run as qemu microVMs (by name: a vendor in both roles runs as two VMs); the others
    run in containers on the host's kernel. A vendor that needs a host capability, for a feature the case uses,
    that the kernel it would get lacks makes the cell skip, saying which and why (the declarations were judged
    before any fixture: pytest_runtest_setup). Never a silent drop: the matrix shows the cell.

    --kernel host: every vendor on the host's kernel (a need it lacks skips); auto: a vendor whose needs the host
    lacks runs in a VM; vm: every vendor runs in a VM (the harness's built-in probe is no vendor and stays)."""
    needed = needed_by(request.node.get_closest_marker("features"))
    vendors = {v.name: v for v in (pair.a, pair.b) if v is not HARNESS_PEER}
    needs = {name: v.host_needs(pair.protocol, needed) for name, v in vendors.items()}
    in_vm: set[str] = set()
    if kernel == "vm":
        in_vm = set(vendors)
    elif kernel == "auto" and any(needs.values()):
        host: HostCapabilities = request.getfixturevalue("host")
        in_vm = {name for name in vendors if any(host.missing(*sorted(caps)) for caps in needs[name].values())}
    gaps = []
    for name in vendors:
        if not needs[name]:
            continue
        under = request.getfixturevalue("vm_kernel" if name in in_vm else "host")
        for feature, caps in needs[name].items():
            missing = under.missing(*sorted(caps))
            if missing:
                gaps.append(f"{name} needs {', '.join(sorted(caps))} for {feature}: "
                            + "; ".join(under.reason(c) for c in missing))
    if gaps:
        pytest.skip("; ".join(gaps))
    if in_vm and devices.cell_device(pair):  # the device's link is moved into a container's namespace, not a VM's
        why = "--kernel vm" if kernel == "vm" else "; ".join(
            f"{name} needs {', '.join(sorted(caps))} for {feature}, which this host lacks"
            for name in sorted(in_vm) for feature, caps in needs[name].items())
        pytest.skip(f"{', '.join(sorted(in_vm))} would run as a qemu microVM ({why}), and a microVM cannot hold "
                    f"the device's interface")
    return in_vm


@pytest.fixture(scope="session")
def vm_kernel(request, pytestconfig, docker_client, images: Images, host: HostCapabilities):
    """What a VM node's kernel can do (harness.vm.probe_kernel), with the VM images of every vendor of this session
    that may run as a microVM built: asked for by the first cell, so all of it is made before the first case
    starts its clock. None where no vendor of the session needs a VM (--kernel auto on a capable host)."""
    from harness import vm
    every = pytestconfig.getoption("kernel") == "vm"
    vendors = {}
    for item in request.session.items:
        pair = getattr(item, "callspec", None) and item.callspec.params.get("vendor_pair")
        if isinstance(pair, VendorPair):
            for vendor in (pair.a, pair.b):
                if vendor is HARNESS_PEER or pair.protocol not in vendor.protocols:
                    continue
                # every feature with a host need, and a variant's own needs: what any of its cells may ask for
                needs = set().union(*vendor.host_needs(pair.protocol, vendor.protocols[pair.protocol].host).values())
                if every or host.missing(*sorted(needs)):
                    vendors[vendor.name] = vendor
    if not vendors:
        return None
    started = time.monotonic()
    vm.prepare(images, sorted({v.image(images) for v in vendors.values()}))
    run: Run = pytestconfig.oi_run
    with Lab(docker_client, run, "vm-kernel-probe") as lab:
        found = vm.probe_kernel(lab, images, pytestconfig.oi_capabilities)
    if time.monotonic() - started > 1:
        log.warning("microVM images and kernel probe for %s: %.0fs", ", ".join(sorted(vendors)),
                    time.monotonic() - started)
    return found


def _label_allure(pair: VendorPair, severity=None) -> None:
    allure.dynamic.parent_suite(pair.protocol)
    allure.dynamic.suite(pair.case)
    allure.dynamic.sub_suite(f"{pair.a.name} -> {pair.b.name}")
    allure.dynamic.epic(pair.protocol)
    allure.dynamic.feature(pair.case)
    allure.dynamic.tag(*sorted({pair.a.name, pair.b.name}))
    allure.dynamic.label(CELL_LABEL, cell_key(pair.protocol, pair.case, pair.a.name, pair.b.name))
    allure.dynamic.severity(allure.severity_level(severity.args[0]) if severity else allure.severity_level.NORMAL)


def _attach(folder: Path) -> None:
    for path in sorted(folder.rglob("*")):
        if not path.is_file():
            continue
        name = str(path.relative_to(folder))
        if path.suffix == ".pcap":
            allure.attach.file(str(path), name=name, attachment_type="application/vnd.tcpdump.pcap",
                               extension="pcap")
        elif path.suffix == ".svg":
            allure.attach.file(str(path), name=name, attachment_type=allure.attachment_type.SVG)
        else:
            allure.attach.file(str(path), name=name, attachment_type=allure.attachment_type.TEXT)


# An interop failure is failed however the case raises it: a plain assert, or pytest.fail() with a message.
INTEROP_FAILURES = (AssertionError, pytest.fail.Exception)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    props = dict(item.user_properties).get("overlay_interop")
    if props is not None:
        is_assertion = call.excinfo is not None and call.excinfo.errisinstance(INTEROP_FAILURES)
        verdict = phase_verdict(report.outcome, is_assertion, report.when)
        reason = _reason(report, call) if verdict != "passed" else ""
        report.user_properties = [p for p in report.user_properties if p[0] != "overlay_interop"]
        report.user_properties.append(("overlay_interop", dict(props, verdict=verdict, reason=reason)))
    return report


def _reason(report, call) -> str:
    if report.outcome == "skipped" and isinstance(report.longrepr, tuple):
        return report.longrepr[2].removeprefix("Skipped: ")
    if call.excinfo is None:
        return ""
    exc = call.excinfo.value
    text = str(exc).strip() or type(exc).__name__
    first = text.splitlines()[0][:300]
    return first if call.excinfo.errisinstance((*INTEROP_FAILURES, HarnessError)) else f"{type(exc).__name__}: {first}"


def _cell_of(reports) -> tuple[dict | None, str, str]:
    """(the cell's record, its verdict, its reason) over the phase reports of one try; worst phase wins."""
    props, verdict, reason = None, "passed", ""
    for report in reports:
        mine = dict(report.user_properties).get("overlay_interop")
        if mine and "verdict" in mine:
            props = mine
            if RANK[mine["verdict"]] > RANK[verdict]:
                verdict, reason = mine["verdict"], mine["reason"]
    return props, verdict, reason


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_protocol(item, nextitem):
    """--reruns N: a cell that failed or broke (and not exactly as expected) runs again in a fresh lab, up to N
    times. The earlier tries are logged as "rerun" reports: the matrix keeps their verdicts and evidence."""
    reruns = item.config.getoption("reruns")
    if not reruns or "vendor_pair" not in getattr(item, "fixturenames", ()):
        return None
    item.ihook.pytest_runtest_logstart(nodeid=item.nodeid, location=item.location)
    for attempt in range(1, reruns + 2):
        item.oi_attempt = attempt
        reports = runtestprotocol(item, nextitem=nextitem, log=False)
        props, verdict, reason = _cell_of(reports)
        again = (attempt <= reruns and props is not None and verdict in ("failed", "broken")
                 and not _as_expected(item.config, props, verdict, reason))
        for report in reports:
            if again and report.failed:
                report.outcome = "rerun"
            item.ihook.pytest_runtest_logreport(report=report)
        if not again:
            break
    item.ihook.pytest_runtest_logfinish(nodeid=item.nodeid, location=item.location)
    return True


def _as_expected(config, props: dict, verdict: str, reason: str) -> bool:
    rules: Expectations | None = config.oi_expectations
    if rules is None:
        return False
    key = cell_key(props["protocol"], props["case"], props["a"], props["b"])
    return rules.judge(key, verdict, reason, host_answers(props.get("host") or {}))[0] == "expected"


def pytest_report_teststatus(report, config):
    if report.outcome == "rerun":
        return "rerun", "R", ("RERUN", {"yellow": True})
    return None


class MatrixRecorder:
    """On the controller (or a run without xdist): folds phase reports into one CaseResult per test (the earlier
    tries of a rerun cell kept in its `tries`), judges each against the expectations, writes matrix.json and the
    terminal matrix at the end, and sets the exit status a CI gates on (0 as expected, 1 not, 3 broken)."""

    def __init__(self, run: Run, rules: Expectations | None, strict: bool,
                 compared: history.RunFolder | None = None, why_not_compared: str = ""):
        self.run = run
        self.rules = rules
        self.strict = strict
        self.results: dict[str, CaseResult] = {}
        self.attempts: dict[str, int] = {}
        self.finished: set[str] = set()  # cases whose body ran, or whose setup already decided the verdict
        self.versions: dict[str, str] = {}
        self.images: dict[str, dict] = {}  # vendor -> {"id": image id, "packages": {name: version}}
        self.host: dict[str, str] = {}
        self.vm: dict[str, str] = {}  # vendor -> VM kernel release, for vendors that ran as microVMs
        self.other_failures = 0  # failed tests that are not cells (a harness self-test run in the same session)
        self.compared, self.why_not_compared = compared, why_not_compared

    def pytest_runtest_logreport(self, report):
        props = dict(report.user_properties).get("overlay_interop")
        if props is None or "verdict" not in props:
            if report.failed:
                self.other_failures += 1
            return
        if report.when == "call" or report.outcome != "passed":
            self.finished.add(report.nodeid)
        self.versions.update(props.get("versions") or {})
        for vendor, image in (props.get("images") or {}).items():
            known = self.images.setdefault(vendor, {"id": image["id"], "packages": {}})
            if known["id"] != image["id"]:  # another build of the vendor: its own packages
                known.update(id=image["id"], packages={})
            known["packages"].update(image.get("packages") or {})
            if image.get("supplied"):
                known["supplied"] = image["supplied"]
        self.host.update(props.get("host") or {})
        self.vm.update(props.get("vm") or {})
        attempt = props.get("try", 1)
        known = self.results.get(report.nodeid)
        if known is None or attempt > self.attempts[report.nodeid]:
            fresh = CaseResult(props["protocol"], props["case"], props["a"], props["b"], props["verdict"],
                               props["reason"], round(report.duration, 3), props["pcap"], props.get("clause", ""),
                               props.get("title", ""), reference=bool(props.get("reference")),
                               probe=props.get("probe"))
            if known is not None:  # a rerun began: the try before it is done
                fresh.tries = [*known.tries, {"verdict": known.verdict, "reason": known.reason,
                                              "duration_s": known.duration_s, "try": self.attempts[report.nodeid]}]
            self.results[report.nodeid], self.attempts[report.nodeid] = fresh, attempt
        else:
            known.merge(props["verdict"], props["reason"], report.duration)
            known.pcap = props["pcap"] or known.pcap
            known.phases = props.get("phases") or known.phases
            known.measurements = props.get("measurements") or known.measurements
            known.vm = props.get("vm") or known.vm

    def _settle(self, result: CaseResult) -> None:
        """The tries' evidence folders, the flaky flag and the outcome against the expectations."""
        folder = pair_dir(self.run.reports_dir, result.protocol, result.case, result.a, result.b)
        for earlier in result.tries:
            evidence = try_dir(folder, earlier.pop("try"))
            earlier["evidence"] = str(evidence.relative_to(self.run.reports_dir)) if evidence.is_dir() else None
        result.flaky = len({t["verdict"] for t in result.tries} | {result.verdict}) > 1
        if self.rules is not None:
            key = cell_key(result.protocol, result.case, result.a, result.b)
            result.outcome, entry = self.rules.judge(key, result.verdict, result.reason, host_answers(self.host))
            result.expectation = entry.describe() if entry else None

    def exit_status(self) -> int:
        results = list(self.results.values())
        if any(r.verdict == "broken" for r in results):
            return 3
        if self.rules is None:
            bad = any(r.verdict == "failed" for r in results)
        else:
            bad = any(r.outcome == "unexpected" or (self.strict and r.outcome == "fixed") for r in results)
        return 1 if bad or self.other_failures else 0

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session):
        if not self.results:
            return
        for nodeid, result in self.results.items():
            if nodeid not in self.finished:  # interrupted (^C, a dead worker) between setup and verdict
                result.merge("broken", "interrupted before the case reached a verdict", 0.0)
            self._settle(result)
        self.run.reports_dir.mkdir(parents=True, exist_ok=True)
        if self.compared:
            history.compare(list(self.results.values()), self.compared)
        write_matrix(self.run.reports_dir, list(self.results.values()))
        write_run_facts(self.run, self.versions, self.host, Path(session.config.option.allure_report_dir),
                        images=self.images, compared_with=self.compared and self.compared.compared_with,
                        vm=self.vm)
        mark_flaky(Path(session.config.option.allure_report_dir), [r for r in self.results.values() if r.flaky])
        write_pages(self.run.reports_dir)  # matrix.html, conformance/<vendor>.html, from matrix.json and run.json
        latest = self.run.reports_dir.parent / "latest"
        if self.run.reports_dir.parent.name == "reports" and (latest.is_symlink() or not latest.exists()):
            latest.unlink(missing_ok=True)
            latest.symlink_to(self.run.reports_dir.name)
        if session.exitstatus in (pytest.ExitCode.OK, pytest.ExitCode.TESTS_FAILED):
            session.exitstatus = self.exit_status()

    def pytest_terminal_summary(self, terminalreporter):
        if self.results:
            terminalreporter.section("overlay-interop matrix")
            terminalreporter.write_line(summary_table(list(self.results.values())))
            results = list(self.results.values())
            if self.rules is not None:
                terminalreporter.write_line(expectation_summary(results, self.rules.source, self.strict))
            if any(r.flaky for r in results):
                terminalreporter.write_line(flaky_summary(results))
            terminalreporter.write_line(f"files: {self.run.reports_dir}")
            if self.compared:
                changed = history.changes(list(self.results.values()))
                terminalreporter.write_line(f"compared with run {self.compared.id} ({self.compared.folder}): "
                                            f"{len(changed)} cell{'s' if len(changed) != 1 else ''} changed")
                for result, what in changed:
                    terminalreporter.write_line(f"  {what}: {history.cell_key(result)} "
                                                f"{result.previous} -> {result.verdict}")
            elif self.why_not_compared:
                terminalreporter.write_line(f"not compared with an earlier run: {self.why_not_compared}")
