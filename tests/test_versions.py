"""Versions as a matrix axis: vendor.toml [versions.<label>] rows (the same folder on another Debian release, with
its own declarations), which cells pair them (--versions), how their images are told apart, and what the versions
brought to IPsec: RFC 9370 additional key exchanges with ML-KEM."""
from __future__ import annotations

import subprocess
from pathlib import Path
from types import SimpleNamespace

import docker.errors
import pytest

from harness.errors import ConfigError
from harness.images import Build, ImageBuildError, Images
from harness.plugin import needed_by
from harness.protocols.ipsec import ike
from harness.protocols.ipsec.probe import ike_sa_init
from harness.protocols.ipsec.scenario import IkeProposal
from harness.vendor import VERSION, in_version_matrix, load_registry, narrow, ordered_pairs, supply_images

ROOT = Path(__file__).resolve().parent.parent
HYBRID = IkeProposal(group="CURVE25519", additional=("ML_KEM_768",))


def declare(root: Path, name: str, extra: str = "", version: str = "1.0") -> Path:
    folder = root / name
    folder.mkdir()
    (folder / "adapter.py").write_text("class Adapter:\n    pass\n")
    (folder / "vendor.toml").write_text(
        f'name = "{name}"\ndescription = "{name} for tests"\nadapter = "adapter:Adapter"\nversion = "{version}"\n'
        f'[protocols.ipsec]\nroles = ["initiator", "responder"]\nfeatures = ["psk"]\n'
        f'[protocols.ipsec.gaps]\nchildless = "not in 1.0"\n{extra}')
    return folder


VERSIONS = '''
[versions."1.9"]
description = "acme 1.9"
base = "trixie"
[versions."1.10"]
description = "acme 1.10, from unstable"
base = "trixie"
build_args = { UNSTABLE_PACKAGES = "acme*" }
[versions."1.10".protocols.ipsec]
features = ["psk", "childless"]
gaps = {}
'''


def test_a_version_is_a_row_of_the_same_folder_with_its_own_image_and_declarations(tmp_path):
    folder = declare(tmp_path, "acme", VERSIONS)
    everyone = load_registry(tmp_path)
    assert list(everyone) == ["acme", "acme@1.9", "acme@1.10"]
    own, nine, ten = everyone["acme"], everyone["acme@1.9"], everyone["acme@1.10"]
    assert (own.version, own.label, own.image_name, own.build) == ("1.0", None, "acme", folder)
    assert (ten.labelled_by, ten.version, ten.image_name, ten.folder) == (VERSION, "1.10", "acme-1.10", folder)
    assert ten.build == Build(folder, "trixie", (("UNSTABLE_PACKAGES", "acme*"),))
    assert nine.images() == {"acme-1.9": Build(folder, "trixie", ())}
    assert ten.adapter_class() is own.adapter_class()  # one adapter: the folder's
    # its own declarations: 1.10 has childless, 1.9 keeps the folder's (and its gap)
    assert ten.missing_features("ipsec", {"childless"}, "initiator") == []
    assert nine.missing_features("ipsec", {"childless"}, "initiator") == ["childless"]
    assert nine.gap("ipsec", "childless", "initiator") == "not in 1.0" and ten.gap("ipsec", "childless", "x") is None


def test_a_bare_name_means_the_vendor_and_all_its_versions(tmp_path):
    declare(tmp_path, "acme", VERSIONS)
    declare(tmp_path, "zeta")
    everyone = load_registry(tmp_path)
    assert list(narrow(everyone, None)) == ["acme", "acme@1.9", "acme@1.10", "zeta"]
    assert list(narrow(everyone, ["acme"])) == ["acme", "acme@1.9", "acme@1.10"]
    assert list(narrow(everyone, ["acme@1.10", "zeta"])) == ["acme@1.10", "zeta"]
    # the folder's own version names its own row alone
    assert list(narrow(everyone, ["acme@1.0"])) == ["acme"]
    with pytest.raises(ConfigError, match=r"^--vendors: acme@2: no such vendor; known: acme, acme@1.9, acme@1.10"):
        narrow(everyone, ["acme@2"])


def cells(rows: dict, versions: str) -> list[str]:
    return [f"{a.name}->{b.name}" for a, b in ordered_pairs(rows, "ipsec")
            if in_version_matrix(a, b, rows.values(), versions)]


def test_versions_default_pairs_a_vendors_versions_and_its_newest_with_every_vendor(tmp_path):
    declare(tmp_path, "acme", VERSIONS)
    declare(tmp_path, "zeta", '[versions."2.0"]\ndescription = "zeta 2"\nbase = "trixie"\n')
    rows = narrow(load_registry(tmp_path), None)
    every = cells(rows, "all")
    assert len(every) == 25
    default = cells(rows, "default")
    # 1.10 is newer than 1.9 (numbers compare as numbers): 1.9 meets acme alone
    assert not [c for c in default if "acme@1.9" in c and "zeta" in c]
    assert {"acme@1.9->acme@1.10", "acme@1.10->acme@1.9", "acme@1.9->acme", "acme->acme@1.9"} <= set(default)
    assert {"acme@1.10->zeta@2.0", "zeta->acme@1.10", "acme->zeta", "acme->zeta@2.0"} <= set(default)
    assert len(default) == 9 + 4 + 2 * 2 * 2  # acme's versions, zeta's, the newest/own rows across
    assert cells(rows, "none") == ["acme->acme", "acme->zeta", "zeta->acme", "zeta->zeta"]


@pytest.mark.parametrize("versions, field, problem", [
    ('[versions."2"]\ndescription = "d"\n', "versions.2.base", "required: the Debian release"),
    ('[versions."2"]\ndescription = "d"\nbase = "trixie"\nbuld_args = {}\n', "versions.2.buld_args",
     "unknown key"),
    ('[versions."2"]\ndescription = "d"\nbase = "trixie"\nbuild_args = { BASE_IMAGE = "x" }\n',
     "versions.2.build_args.BASE_IMAGE", "comes from base"),
    ('[versions."2"]\ndescription = "d"\nbase = "trixie"\n[versions."2".protocols.vxlan]\nfeatures = []\n',
     "versions.2.protocols.vxlan", "declares no [protocols.vxlan]"),
    ('[versions."1.0"]\ndescription = "d"\nbase = "trixie"\n', "versions.1.0", "the folder's own build"),
    ('[versions."2"]\ndescription = "d"\nbase = "trixie"\n[versions."2".protocols.ipsec]\nfeatures = ["mlkm"]\n',
     "protocols.ipsec.features", "unknown feature 'mlkm'"),
])
def test_a_bad_version_names_the_file_and_the_field(tmp_path, versions, field, problem):
    declare(tmp_path, "acme", versions)
    with pytest.raises(ConfigError) as caught:
        load_registry(tmp_path)
    assert str(caught.value).startswith(str(tmp_path / "acme" / "vendor.toml"))
    assert f"{field}: " in str(caught.value) and problem in str(caught.value)


def test_the_shipped_versions_declare_ml_kem_only_where_it_was_found():
    """NOTES.md of strongswan and libreswan say how each was checked (swanctl --list-algs, algparse)."""
    shipped = load_registry(ROOT / "vendors")
    assert {n for n, v in shipped.items() if v.labelled_by == VERSION} == {
        "strongswan@6.0", "strongswan@6.1", "libreswan@5.2", "ovs@3.5", "frr@10.3", "gobgp@3.36"}
    having = [n for n, v in shipped.items() if "ipsec" in v.protocols and not v.missing_features("ipsec", {"mlkem"},
                                                                                                   "initiator")]
    assert having == ["strongswan@6.1"]
    for name in ("strongswan", "strongswan@6.0", "libreswan", "libreswan@5.2"):
        assert shipped[name].gap("ipsec", "mlkem", "responder"), f"{name} does not say why it lacks mlkem"


def test_setup_host_bootstraps_every_release_a_version_is_built_on():
    script = ROOT / "scripts" / "setup-host.sh"
    function = script.read_text().split("version_releases() {", 1)[1].split("\n}\n", 1)[0]
    out = subprocess.run(["bash", "-c", f"PROJECT_DIR={ROOT}\nversion_releases() {{{function}\n}}\nversion_releases"],
                         capture_output=True, text=True, check=True).stdout.split()
    assert out == sorted({v.base for v in load_registry(ROOT / "vendors").values() if v.base}) == ["trixie"]


class FakeImages:
    def __init__(self, present: dict[str, str]):
        self.present = present

    def get(self, name):
        if name not in self.present:
            raise docker.errors.ImageNotFound(name)
        return SimpleNamespace(id=self.present[name])


def test_a_versions_image_tag_carries_its_base_and_build_arguments(tmp_path):
    (tmp_path / "Dockerfile").write_text("ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\n")
    images = Images(SimpleNamespace(images=FakeImages({"debian:bookworm-slim": "sha256:12",
                                                       "overlay-interop/base:trixie": "sha256:13"})))
    plain = images.tag_for("acme", tmp_path)
    assert plain == images.tag_for("acme", Build(tmp_path))  # the folder's own build keeps its tag
    trixie = images.tag_for("acme-1.9", Build(tmp_path, "trixie"))
    unstable = images.tag_for("acme-1.9", Build(tmp_path, "trixie", (("UNSTABLE_PACKAGES", "acme*"),)))
    assert len({plain.split(":")[1], trixie.split(":")[1], unstable.split(":")[1]}) == 3
    assert images._spec(Build(tmp_path, "trixie", (("UNSTABLE_PACKAGES", "acme*"),)))[2] == {
        "BASE_IMAGE": "overlay-interop/base:trixie", "UNSTABLE_PACKAGES": "acme*"}
    with pytest.raises(ImageBuildError, match="no base image for Debian forky: neither debian:forky-slim nor "
                                              "overlay-interop/base:forky is present; run scripts/setup-host.sh"):
        images.tag_for("acme-2", Build(tmp_path, "forky"))


def test_a_features_mark_may_ask_a_feature_of_one_role():
    marker = SimpleNamespace(args=("psk", "childless", "mlkem@initiator"))
    assert needed_by(marker, "initiator") == {"psk", "childless", "mlkem"}
    assert needed_by(marker, "responder") == {"psk", "childless"}
    assert needed_by(marker) == {"psk", "childless", "mlkem"}  # what either side may be asked (host needs)
    assert needed_by(None, "initiator") == set()


def test_additional_key_exchanges_are_transforms_6_to_12_in_the_one_ike_description():
    """RFC 9370 2.2.2: ADDKE1 is transform type 6; ML-KEM-768 is Key Exchange Method 36 (IANA)."""
    message = ike.decode(ike_sa_init([HYBRID]))
    sa = next(p for p in message.payloads if isinstance(p, ike.SecurityAssociation))
    proposal = sa.proposals[0]
    assert proposal.algorithms == ("ENCR_AES_CBC_128", "PRF_HMAC_SHA2_256", "AUTH_HMAC_SHA2_256_128", "CURVE25519",
                                   "ADDKE1=ML_KEM_768")
    addke = proposal.transforms[-1]
    assert (int(addke.type), int(addke.id)) == (6, 36)
    assert HYBRID.additional_transforms == ("ADDKE1=ML_KEM_768",)


def test_ml_kem_key_exchange_sizes_are_fips_203s():
    assert ike.ml_kem_sizes("ML_KEM_768") == (1184, 1088)
    assert ike.ml_kem_sizes("ML_KEM_512") == (800, 768) and ike.ml_kem_sizes("ML_KEM_1024") == (1568, 1568)
    ke = ike.KeyExchange(group="ML_KEM_768", key_data=bytes(1184))
    assert ike.KeyExchange(bytes(ke)).describe() == "KE ML_KEM_768 1184 bytes"


def test_the_strongswan_adapter_proposes_additional_key_exchanges():
    shipped = load_registry(ROOT / "vendors")
    adapter = shipped["strongswan"].adapter_class()
    module = __import__(adapter.__module__, fromlist=["ike_proposal"])
    assert module.ike_proposal(HYBRID) == "aes128-sha256-prfsha256-curve25519-ke1_mlkem768"
    assert module.ike_proposal(IkeProposal()) == "aes128-sha256-prfsha256-modp2048"


def test_the_libreswan_adapter_reads_the_states_of_4_and_5():
    shipped = load_registry(ROOT / "vendors")
    module = __import__(shipped["libreswan"].adapter_class().__module__, fromlist=["CHILD_STATE"])
    four = '000 #2: "lab":4500 STATE_V2_ESTABLISHED_CHILD_SA (established Child SA); newest; IKE SA #1; idle;'
    five = '#2: "lab":4500 ESTABLISHED_CHILD_SA (established Child SA); REKEY in 10284s; newest; IKE SA #1; idle;'
    for line in (four, five):
        assert module.CHILD_STATE.search(line).groups() == ("2", "lab", "4500"), line
        assert module.STATES["child"] in line
    with pytest.raises(ConfigError, match="no additional key exchanges"):
        module.ike_proposal(HYBRID)


def test_a_supplied_image_replaces_the_folders_build_and_leaves_its_versions_theirs(tmp_path):
    declare(tmp_path, "acme", VERSIONS)
    got = supply_images(load_registry(tmp_path), ["acme=ci/acme:main", "acme@1.9=ci/acme:1.9"])
    assert {n: v.supplied_image for n, v in got.items()} == {
        "acme": "ci/acme:main", "acme@1.9": "ci/acme:1.9", "acme@1.10": None}
    assert (got["acme@1.9"].labelled_by, got["acme@1.9"].version) == (VERSION, "1.9")


@pytest.mark.parametrize("versions", ["none", "default", "all"])
def test_every_cell_the_declarations_skip_is_expected_with_its_reason(versions):
    """The shipped expectations cover the version rows too: a skip in libreswan@5.2's own words ("libreswan@5.2
    lacks childless as initiator") matches the entry written for Libreswan."""
    import os
    import sys
    result = subprocess.run([sys.executable, "-m", "pytest", "suites", "--collect-only", "-q", "-p", "no:randomly",
                             "-p", "skip_expectations", "--versions", versions], cwd=ROOT, capture_output=True,
                            text=True, timeout=300, env=dict(os.environ, PYTHONPATH=str(ROOT / "tests")))
    assert "declared skips: " in result.stdout, result.stdout[-2000:] + result.stderr[-2000:]
    assert int(result.stdout.split("declared skips: ")[1].split()[0]) > 50
    unexpected = [line for line in result.stdout.splitlines() if line.startswith("NOT EXPECTED")]
    assert not unexpected, "\n".join(unexpected[:20])
