"""`overlay-interop images build` and `doctor` see the vendors a run would: --vendors-dir adds folders,
--no-project-vendors leaves vendors/ out, --image supplies an image (never built) or adds a row. No Docker here:
the engine and the image builder are stand-ins that record what they were asked."""
from pathlib import Path
from types import SimpleNamespace

import pytest

from harness import cli

from test_own_build import declare

KNOWN = {"ci/strongswan:branch", "ci/acme:1"}


class FakeImages:
    made: list[str] = []

    def __init__(self, client, base_image=None):
        self.client = client

    def prepare(self, folders):
        FakeImages.made += list(folders)

    def ensure(self, name, folder):
        return f"overlay-interop/{name}:test"

    def tools(self):
        return "overlay-interop/tools:test"

    @property
    def base(self):
        return "base"


def present(ref):
    if ref not in KNOWN:
        import docker
        raise docker.errors.ImageNotFound(ref)
    return SimpleNamespace(id=ref)


@pytest.fixture
def engine(monkeypatch):
    FakeImages.made = []
    client = SimpleNamespace(images=SimpleNamespace(get=present), version=lambda: {}, api=SimpleNamespace(base_url="x"))
    monkeypatch.setattr(cli, "_docker", lambda: client)
    monkeypatch.setattr("harness.images.Images", FakeImages)
    booted = []
    monkeypatch.setattr("harness.vm.vm_image", lambda images, image: booted.append(image) or f"vm-of-{image}")
    return booted


def test_images_build_does_not_build_a_supplied_image_nor_its_folder(engine, capsys):
    assert cli.main(["images", "build", "--image", "strongswan@dev=ci/strongswan:branch", "strongswan@dev"]) == 0
    out = capsys.readouterr().out
    assert "strongswan@dev: ci/strongswan:branch (supplied with --image, not built)" in out
    assert "strongswan" not in FakeImages.made and "tools" in FakeImages.made
    # the same vendor's own row is built from its folder as before
    assert cli.main(["images", "build", "--image", "strongswan@dev=ci/strongswan:branch", "strongswan",
                     "strongswan@dev"]) == 0
    assert "strongswan" in FakeImages.made


def test_images_build_finds_a_vendor_in_a_vendors_dir(engine, tmp_path, capsys):
    declare(tmp_path / "mine", "acme")
    assert cli.main(["images", "build", "--vendors-dir", str(tmp_path / "mine"), "acme"]) == 0
    assert "acme: overlay-interop/acme:test" in capsys.readouterr().out
    assert cli.main(["images", "build", "--no-project-vendors", "--vendors-dir", str(tmp_path / "mine"),
                     "strongswan"]) == 2
    assert "no such vendor: strongswan; known: acme" in capsys.readouterr().err


def test_images_build_refuses_a_missing_supplied_image_in_one_line(engine, capsys):
    assert cli.main(["images", "build", "--image", "strongswan@dev=gone:1"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("overlay-interop: error: --image: 'strongswan@dev=gone:1': no local image 'gone:1'")


def test_no_project_vendors_alone_is_a_usage_error(engine, capsys):
    assert cli.main(["images", "build", "--no-project-vendors"]) == 2
    assert "--no-project-vendors: (flag): leaves no vendor folder; add --vendors-dir DIR" in capsys.readouterr().err


def test_doctor_judges_the_vendors_a_run_would_see(engine, tmp_path, monkeypatch, capsys):
    declare(tmp_path / "mine", "acme", extra="")
    (tmp_path / "mine" / "acme" / "vendor.toml").write_text(
        (tmp_path / "mine" / "acme" / "vendor.toml").read_text() + '[protocols.ipsec.host]\npsk = ["kernel-esp"]\n')
    from harness.host import HostCapabilities
    monkeypatch.setattr("harness.host.probe", lambda client, tools, known: HostCapabilities(
        {"kernel-esp": False}, {"kernel-esp": "no ESP here"}, known))
    monkeypatch.setattr(cli, "_registry_answer", lambda image: "not asked")
    assert cli.main(["doctor", "--no-project-vendors", "--vendors-dir", str(tmp_path / "mine"),
                     "--image", "acme@ci=ci/acme:1"]) == 0
    out = capsys.readouterr().out
    assert "acme@ci: runs the supplied image ci/acme:1 (--image)" in out
    assert "acme ipsec: cases needing psk skip (host lacks" in out  # from --vendors-dir
    assert "acme@ci ipsec: cases needing psk skip (host lacks" in out  # the row --image added
    assert "strongswan" not in out  # vendors/ left out
