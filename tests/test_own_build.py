"""Your own build of a vendor: --vendors-dir adds vendor folders, --image runs a supplied image for a vendor
(VENDOR=REF) or adds it as another row driven by the same adapter (VENDOR@LABEL=REF); run.json and the matrix
page say the image was supplied. Bad input is one line naming the option and the value, before any lab."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from types import SimpleNamespace

from harness import cli
from harness.errors import ConfigError
from harness.pairlab import PairLab, VendorPair
from harness.plugin import MatrixRecorder
from harness.report import matrix
from harness.report import write_pages
from harness.results import CaseResult, write_matrix, write_run_facts
from harness.run import Run
from harness.vendor import (SUPPLIED, VARIANT, check_images, load_registry, narrow, ordered_pairs, parse_image,
                            supply_images, vendors_folder)

ROOT = Path(__file__).resolve().parent.parent
KERNEL = '[variants.kernel]\ndescription = "on the kernel\'s ESP"\nneeds = ["kernel-esp"]\n'


def declare(root: Path, name: str, extra: str = "", companion: bool = False) -> Path:
    folder = root / name
    folder.mkdir(parents=True)
    (folder / "vendor.toml").write_text(f'name = "{name}"\ndescription = "{name} for tests"\n'
                                        f'adapter = "adapter:Adapter"\n{extra}[protocols.ipsec]\n'
                                        f'roles = ["initiator", "responder"]\nfeatures = ["psk"]\n')
    (folder / "adapter.py").write_text("class Adapter:\n    pass\n")
    if companion:
        (folder / "radius").mkdir()
        (folder / "radius" / "Dockerfile").write_text("FROM scratch\n")
    return folder


@pytest.fixture
def everyone(tmp_path):
    declare(tmp_path / "v", "acme", KERNEL, companion=True)
    declare(tmp_path / "v", "zeta")
    return load_registry(tmp_path / "v")


def error(call) -> str:
    with pytest.raises(ConfigError) as caught:
        call()
    return str(caught.value)


# --image: parsing and validation

@pytest.mark.parametrize("text, parsed", [
    ("acme=reg.example/acme:branch", ("acme", None, "reg.example/acme:branch")),
    ("acme@dev=sha256:0123abcd", ("acme", "dev", "sha256:0123abcd")),
    ("acme@ci-2.1=acme:ci", ("acme", "ci-2.1", "acme:ci")),
])
def test_an_image_option_is_vendor_label_and_reference(text, parsed):
    assert parse_image(text) == parsed


@pytest.mark.parametrize("text, problem", [
    ("acme", "must be VENDOR=IMAGE or VENDOR@LABEL=IMAGE"),
    ("=acme:x", "must be VENDOR=IMAGE"),
    ("acme=", "must be VENDOR=IMAGE"),
    ("acme=acme x", "must be VENDOR=IMAGE"),
    ("acme@=x", "label ''"),
    ("acme@Dev=x", "label 'Dev'"),
    ("acme@kernel@x=x", "label 'kernel@x'"),
])
def test_a_malformed_image_option_is_one_line_naming_option_and_value(text, problem):
    message = error(lambda: parse_image(text))
    assert message.startswith(f"--image: {text!r}: ") and problem in message and "\n" not in message


def test_an_image_for_a_vendor_replaces_its_build_for_it_and_its_variants_only(everyone):
    got = supply_images(everyone, ["acme=ci/acme:main"])
    assert list(got) == list(everyone)  # no row added
    assert {n: v.supplied_image for n, v in got.items()} == {"acme": "ci/acme:main", "acme@kernel": "ci/acme:main",
                                                            "zeta": None}
    assert got["acme@kernel"].variant == "kernel" and got["acme@kernel"].variant_needs == {"kernel-esp"}
    # nothing of acme's own is built any more; its companion still is
    assert got["acme"].images() == {"acme-radius": everyone["acme"].folder / "radius"}
    assert everyone["acme"].supplied_image is None  # the registry it was given is left alone


def test_an_image_with_a_label_adds_a_row_driven_by_the_same_adapter(everyone):
    got = supply_images(everyone, ["acme@dev=ci/acme:branch"])
    assert list(got) == ["acme", "acme@kernel", "acme@dev", "zeta"]  # beside its vendor's rows
    dev, acme = got["acme@dev"], got["acme"]
    assert (dev.label, dev.labelled_by, dev.supplied_image, dev.variant, dev.variant_needs) == \
        ("dev", SUPPLIED, "ci/acme:branch", None, frozenset())
    assert (dev.folder, dev.adapter, dev.protocols, dev.image_name) == (acme.folder, acme.adapter, acme.protocols,
                                                                        "acme")
    assert dev.adapter_class() is acme.adapter_class()
    assert acme.supplied_image is None  # the release is still built from its folder
    assert "ci/acme:branch" in dev.description
    assert dev.host_needs("ipsec", {"psk"}) == {}  # not a variant: no kernel it needs
    # a run that names no --vendors has it (the user asked for it), but not the variant
    assert list(narrow(got, None)) == ["acme", "acme@dev", "zeta"]
    pairs = [(a.name, b.name) for a, b in ordered_pairs(narrow(got, ["acme", "acme@dev"]), "ipsec")]
    assert pairs == [("acme", "acme"), ("acme", "acme@dev"), ("acme@dev", "acme"), ("acme@dev", "acme@dev")]


def test_the_two_kinds_of_labelled_entry_are_one_notion(everyone):
    got = supply_images(everyone, ["acme@dev=x"])
    assert {n: (v.label, v.labelled_by) for n, v in got.items()} == {
        "acme": (None, None), "acme@kernel": ("kernel", VARIANT), "acme@dev": ("dev", SUPPLIED),
        "zeta": (None, None)}


@pytest.mark.parametrize("specs, problem", [
    (["nosuch=x"], "no such vendor 'nosuch'; known: acme, zeta"),
    (["nosuch@dev=x"], "no such vendor 'nosuch'"),
    (["acme@kernel=x"], "acme@kernel is a variant ([variants.kernel] in "),
    (["acme=x", "acme=y"], "acme is given an image twice (also 'acme=x')"),
    (["acme@dev=x", "acme@dev=y"], "acme@dev is given an image twice"),
])
def test_a_bad_image_option_is_one_line(everyone, specs, problem):
    message = error(lambda: supply_images(everyone, specs))
    assert message.startswith(f"--image: {specs[-1]!r}: ") and problem in message and "\n" not in message


def test_a_missing_image_is_named_and_the_engine_is_asked_for_each():
    asked = []
    message = error(lambda: check_images(["acme=here:1", "zeta@dev=gone:2"],
                                         lambda ref: asked.append(ref) or ref == "here:1"))
    assert message == ("--image: 'zeta@dev=gone:2': no local image 'gone:2' (`docker images`; pull or build it "
                       "first: the harness never pulls)")
    assert asked == ["here:1", "gone:2"]
    check_images(["acme=here:1"], lambda ref: True)


class NoBuilds:
    """Images that must not be asked for a build."""

    def ensure(self, name, folder):
        raise AssertionError(f"built {name}")


class Builds:
    def ensure(self, name, folder):
        return f"overlay-interop/{name}:built"


def test_a_node_image_is_the_supplied_one_never_a_build(everyone):
    got = supply_images(everyone, ["acme=ci/acme:main", "zeta@dev=ci/zeta:dev"])
    assert got["acme"].image(NoBuilds()) == "ci/acme:main"
    assert got["acme@kernel"].image(NoBuilds()) == "ci/acme:main"  # a VM root is made from it too
    assert got["zeta@dev"].image(NoBuilds()) == "ci/zeta:dev"
    assert got["zeta"].image(Builds()) == "overlay-interop/zeta:built"


class FakeLab:
    def __init__(self):
        self.made = []

    def node(self, role, image, **kwargs):
        self.made.append((role, image))
        return SimpleNamespace(name=role)


def test_a_cells_node_runs_the_supplied_image(everyone, tmp_path):
    got = supply_images(everyone, ["acme@dev=ci/acme:branch"])
    pair = VendorPair("ipsec", "psk_tunnel", got["acme"], got["acme@dev"], ("initiator", "responder"))
    lab = FakeLab()
    plab = PairLab(lab, pair, tmp_path, Builds())
    plab.node("initiator"), plab.node("responder")
    assert lab.made == [("initiator", "overlay-interop/acme:built"), ("responder", "ci/acme:branch")]


def test_the_vm_images_are_made_from_the_same_choice():
    """The vm_kernel fixture makes VM roots from Vendor.image, so a supplied image is booted, not a build."""
    text = (ROOT / "harness/plugin.py").read_text()
    assert "ensure(v.image_name" not in text and "v.image(images)" in text


def test_the_recorder_keeps_that_an_image_was_supplied(tmp_path):
    recorder = MatrixRecorder(Run("20260101-000000-abcd", "me", "main", tmp_path, False), None, False)
    record = {"protocol": "ipsec", "case": "psk_tunnel", "a": "acme", "b": "acme@dev", "pcap": None,
              "verdict": "passed", "reason": "", "images": {
                  "acme": {"id": "sha256:1", "packages": {}},
                  "acme@dev": {"id": "sha256:2", "packages": {}, "supplied": "ci/acme:branch"}}}
    recorder.pytest_runtest_logreport(SimpleNamespace(user_properties=[("overlay_interop", record)], failed=False,
                                                      when="call", outcome="passed", nodeid="x", duration=1.0))
    assert recorder.images == {"acme": {"id": "sha256:1", "packages": {}},
                               "acme@dev": {"id": "sha256:2", "packages": {}, "supplied": "ci/acme:branch"}}


# --vendors-dir: adds folders

def test_vendor_folders_from_several_places_join_one_registry(tmp_path):
    declare(tmp_path / "a", "acme")
    declare(tmp_path / "b", "mine")
    assert list(load_registry([tmp_path / "a", tmp_path / "b"])) == ["acme", "mine"]
    assert list(load_registry([tmp_path / "a", tmp_path / "a"])) == ["acme"]  # the same folder twice is once


def test_a_vendor_name_in_two_folders_is_one_error_naming_both(tmp_path):
    first, second = declare(tmp_path / "a", "acme"), declare(tmp_path / "b", "acme")
    message = error(lambda: load_registry([tmp_path / "a", tmp_path / "b"]))
    assert message == (f"{second / 'vendor.toml'}: name: 'acme' is also the vendor of {first}; a vendor added "
                       f"from another folder needs a name of its own")


def test_a_vendors_dir_is_a_folder_of_vendor_folders(tmp_path):
    folder = declare(tmp_path / "v", "acme")
    (tmp_path / "empty").mkdir()
    assert vendors_folder(str(tmp_path / "v")) == tmp_path / "v"
    assert error(lambda: vendors_folder(str(folder))) == \
        f"--vendors-dir: {folder}: is a vendor folder; give the folder that holds it ({tmp_path / 'v'})"
    assert error(lambda: vendors_folder(str(tmp_path / "empty"))) == \
        f"--vendors-dir: {tmp_path / 'empty'}: holds no vendor folder (a folder with a vendor.toml)"
    assert error(lambda: vendors_folder(str(tmp_path / "nope"))) == f"--vendors-dir: {tmp_path / 'nope'}: not a folder"


def collect(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    """pytest collecting suites/ with no Docker engine reachable: nothing here may need one."""
    env = dict(os.environ, DOCKER_HOST=f"unix://{tmp_path}/no-docker.sock")
    return subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-p", "no:randomly",
                           str(ROOT / "suites" / "ipsec"), "--collect-only", "-q", *args],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)


def test_the_plugin_adds_a_vendors_dir_to_the_projects_vendors(tmp_path):
    declare(tmp_path / "mine", "acme")
    result = collect(tmp_path, "--vendors-dir", str(tmp_path / "mine"), "--vendors", "acme,strongswan",
                     "-k", "psk_tunnel")
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr
    assert "test_psk_tunnel[acme->strongswan]" in result.stdout and "test_psk_tunnel[strongswan->acme]" in result.stdout
    only = collect(tmp_path, "--no-project-vendors", "--vendors-dir", str(tmp_path / "mine"), "-k", "psk_tunnel")
    assert "[acme->acme]" in only.stdout and "strongswan" not in only.stdout, only.stdout[-2000:] + only.stderr


@pytest.mark.parametrize("args, line", [
    (["--vendors-dir", "{tmp}/dup"], "ERROR: {tmp}/dup/strongswan/vendor.toml: name: 'strongswan' is also the vendor "
                                      "of {root}/vendors/strongswan; a vendor added from another folder needs a "
                                      "name of its own"),
    (["--image", "strongswan@kernel=x"], "ERROR: --image: 'strongswan@kernel=x': strongswan@kernel is a variant "
                                         "([variants.kernel] in {root}/vendors/strongswan/vendor.toml); give the "
                                         "image another label"),
    (["--image", "nosuch=x"], "ERROR: --image: 'nosuch=x': no such vendor 'nosuch'; known: "),
    (["--image", "strongswan@dev=x", "--vendors", "strongswan"],
     "ERROR: --image: 'strongswan@dev=x': --vendors leaves strongswan@dev out; name it there too"),
])
def test_bad_own_build_options_stop_collection_with_one_line(tmp_path, args, line):
    declare(tmp_path / "dup", "strongswan")
    args = [a.format(tmp=tmp_path) for a in args]
    result = collect(tmp_path, *args)
    assert result.returncode == 4 and "Traceback" not in result.stdout + result.stderr, result.stderr
    assert result.stderr.strip().startswith(line.format(tmp=tmp_path, root=ROOT)), result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_the_cli_passes_own_build_options_on(monkeypatch, tmp_path):
    calls = []

    class FakePytest:
        def __init__(self, command, cwd):
            calls.append(command)

        def wait(self):
            return 0
    monkeypatch.setattr(cli.subprocess, "Popen", FakePytest)
    monkeypatch.chdir(tmp_path)
    cli.main(["run", "--vendors-dir", "mine", "--vendors-dir", "/abs/theirs", "--image", "strongswan@dev=ci/s:b",
              "--image", "libreswan=-odd", "--no-project-vendors", "--reports-dir", str(tmp_path / "r")])
    [command] = calls
    assert f"--vendors-dir={tmp_path / 'mine'}" in command and "--vendors-dir=/abs/theirs" in command
    assert "--image=strongswan@dev=ci/s:b" in command and "--image=libreswan=-odd" in command
    assert "--no-project-vendors" in command


# run.json and the matrix page

def test_run_json_says_which_image_was_supplied_and_the_page_shows_it(tmp_path):
    run = Run("20260101-000000-abcd", "me", "main", tmp_path, False)
    images = {"strongswan": {"id": "sha256:" + "a" * 64, "packages": {"strongswan": "5.9"}},
              "strongswan@dev": {"id": "sha256:" + "b" * 64, "packages": {}, "supplied": "ci/strongswan:dev"}}
    write_run_facts(run, {}, {}, tmp_path / "allure", images=images)
    facts = json.loads((tmp_path / "run.json").read_text())
    assert facts["images"]["strongswan@dev"]["supplied"] == "ci/strongswan:dev"
    assert "supplied" not in facts["images"]["strongswan"]
    rows = {t.vendor: t for t in matrix.tested(["strongswan", "strongswan@dev"], matrix._checked_run_facts("run.json", facts))}
    assert (rows["strongswan@dev"].supplied, rows["strongswan"].supplied) == ("ci/strongswan:dev", "")
    write_matrix(tmp_path, [CaseResult("ipsec", "psk_tunnel", "strongswan", "strongswan@dev", "passed", "", 1.0,
                                       None, "RFC 7296", "a tunnel")])
    write_pages(tmp_path)
    page = (tmp_path / "matrix.html").read_text()
    row = page[page.index('<tr data-vendor="strongswan@dev">'):]
    assert '<span class="supplied">supplied: <code>ci/strongswan:dev</code></span>' in row[:row.index("</tr>")]
    row = page[page.index('<tr data-vendor="strongswan">'):]
    assert "supplied" not in row[:row.index("</tr>")]


def test_a_supplied_field_that_is_not_a_string_is_one_line():
    read = {"run": "x", "images": {"strongswan@dev": {"id": "sha256:x", "supplied": ["ci/strongswan:dev"]}}}
    assert error(lambda: matrix._checked_run_facts("run.json", read)) == \
        "run.json: images.strongswan@dev.supplied: must be a string: the image the user supplied"


# The real thing: the strongSwan folder's image under another tag runs as a second strongSwan

@pytest.mark.docker
def test_a_supplied_image_runs_as_a_second_strongswan_paired_both_ways(tmp_path):
    import docker

    from harness.images import Images
    from harness.vendor import load_vendor

    client = docker.from_env(timeout=300)
    built = Images(client).ensure("strongswan", ROOT / "vendors" / "strongswan")  # cached: no rebuild
    tag = f"overlay-interop-test/strongswan:dev-{os.getpid()}"
    client.images.get(built).tag(tag)  # `docker tag`: the same image under a name the harness did not build
    try:
        reports = tmp_path / "r"
        proc = subprocess.run([sys.executable, "-m", "harness.cli", "run", "--image", f"strongswan@dev={tag}",
                               "--vendors", "strongswan@5.9,strongswan@dev", "--protocols", "ipsec", "-k", "psk_tunnel",
                               "-n", "0", "--compare", "none", "--reports-dir", str(reports)],
                              cwd=ROOT, capture_output=True, text=True, timeout=900)
        output = proc.stdout[-4000:] + proc.stderr[-2000:]
        records = json.loads((reports / "matrix.json").read_text())
        cells = {(r["a"], r["b"]): r["verdict"] for r in records if r["case"] == "psk_tunnel"}
        assert cells == {(a, b): "passed" for a in ("strongswan", "strongswan@dev")
                         for b in ("strongswan", "strongswan@dev")}, output
        assert proc.returncode == 0, output
        images = json.loads((reports / "run.json").read_text())["images"]
        image_id = client.images.get(tag).id
        assert images["strongswan@dev"]["id"] == images["strongswan"]["id"] == image_id
        assert images["strongswan@dev"]["supplied"] == tag and "supplied" not in images["strongswan"]
        page = (reports / "matrix.html").read_text()
        assert f"supplied: <code>{tag}</code>" in page
        assert load_vendor(ROOT / "vendors" / "strongswan").supplied_image is None
    finally:
        client.images.remove(tag, noprune=True)
        client.close()


@pytest.mark.docker
def test_an_image_that_is_not_here_stops_the_run_with_one_line_and_exit_2(tmp_path):
    """Looked up in the engine before any lab (no pull, no build): a typo costs nothing."""
    ref = "overlay-interop-test/no-such-image:never"
    proc = subprocess.run([sys.executable, "-m", "harness.cli", "run", "--image", f"strongswan@dev={ref}",
                           "--protocols", "ipsec", "-n", "0", "--reports-dir", str(tmp_path / "r")],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2, proc.stdout[-2000:] + proc.stderr
    assert proc.stderr.strip() == (f"ERROR: --image: 'strongswan@dev={ref}': no local image '{ref}' (`docker "
                                   f"images`; pull or build it first: the harness never pulls)")
    assert not (tmp_path / "r" / "matrix.json").exists()
