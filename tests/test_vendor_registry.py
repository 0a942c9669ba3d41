"""The vendor registry: declarations are validated field by field, and the matrix is every ordered pair
they allow."""
from pathlib import Path

import pytest

from harness.errors import ConfigError
from harness.vendor import load_registry, ordered_pairs

REPO_VENDORS = Path(__file__).resolve().parent.parent / "vendors"


def declare(root: Path, name: str, toml: str, adapter: bool = True) -> Path:
    folder = root / name
    folder.mkdir()
    (folder / "vendor.toml").write_text(toml)
    if adapter:
        (folder / "adapter.py").write_text("class Adapter:\n    pass\n")
    return folder


def vendor_toml(name: str, roles: str = '["initiator", "responder"]', extra: str = "") -> str:
    return (f'name = "{name}"\ndescription = "{name} for tests"\nadapter = "adapter:Adapter"\n'
            f'[protocols.ipsec]\nroles = {roles}\nfeatures = ["psk"]\n{extra}')


def test_the_checked_in_vendors_load():
    registry = load_registry(REPO_VENDORS)
    assert "strongswan" in registry
    assert registry["strongswan"].plays("ipsec", "initiator") and registry["strongswan"].plays("ipsec", "responder")


def test_ordered_pairs_follow_declared_roles(tmp_path):
    declare(tmp_path, "both", vendor_toml("both"))
    declare(tmp_path, "responder-only", vendor_toml("responder-only", roles='["responder"]'))
    pairs = [(a.name, b.name) for a, b in ordered_pairs(load_registry(tmp_path), "ipsec")]
    assert pairs == [("both", "both"), ("both", "responder-only")]


def test_vendors_option_narrows_and_rejects_unknown_names(tmp_path):
    declare(tmp_path, "one", vendor_toml("one"))
    declare(tmp_path, "two", vendor_toml("two"))
    assert list(load_registry(tmp_path, ["two"])) == ["two"]
    with pytest.raises(ConfigError, match=r"^--vendors: three: no such vendor; known: one, two$"):
        load_registry(tmp_path, ["three"])


def test_missing_features_are_named(tmp_path):
    declare(tmp_path, "v", vendor_toml("v"))
    vendor = load_registry(tmp_path)["v"]
    assert vendor.missing_features("ipsec", {"psk", "childless"}, "initiator") == ["childless"]
    assert vendor.missing_features("l2tp", {"psk"}, "lac") == ["psk"]


def test_a_feature_can_be_declared_for_one_role(tmp_path):
    declare(tmp_path, "v", vendor_toml("v").replace('features = ["psk"]', 'features = ["psk", "childless@responder"]'))
    vendor = load_registry(tmp_path)["v"]
    assert vendor.missing_features("ipsec", {"psk", "childless"}, "responder") == []
    assert vendor.missing_features("ipsec", {"psk", "childless"}, "initiator") == ["childless"]


def test_adapter_class_is_imported_from_the_folder(tmp_path):
    declare(tmp_path, "v", vendor_toml("v"))
    assert load_registry(tmp_path)["v"].adapter_class().__name__ == "Adapter"


@pytest.mark.parametrize("toml, field", [
    ('name = "v"\ndescription = "d"\nadapter = "adapter:Adapter"\n', "protocols"),
    ('description = "d"\nadapter = "adapter:Adapter"\n[protocols.ipsec]\nroles = ["initiator"]\n', "name"),
    ('name = "other"\ndescription = "d"\nadapter = "adapter:Adapter"\n[protocols.ipsec]\nroles = ["initiator"]\n',
     "name"),
    ('name = "v"\ndescription = "d"\nadapter = "adapter"\n[protocols.ipsec]\nroles = ["initiator"]\n', "adapter"),
    ('name = "v"\ndescription = "d"\nadapter = "adapter:Adapter"\n[protocols.ipsec]\nroles = "initiator"\n',
     "protocols.ipsec.roles"),
    ('name = "v"\ndescription = "d"\nadapter = "adapter:Adapter"\n[protocols.ipsec]\nroles = ["lac"]\n',
     "protocols.ipsec.roles"),
    ('name = "v"\ndescription = "d"\nadapter = "adapter:Adapter"\n[protocols.nosuch]\nroles = ["a"]\n',
     "protocols.nosuch"),
    ('name = "v"\ndescription = "d"\nadapter = "adapter:Adapter"\n[protocols.ipsec]\nroles = ["initiator"]\n'
     'features = [1]\n', "protocols.ipsec.features"),
    ('name = "v"\nthis is not toml', "(syntax)"),
    ('name = "v"\ndescription = "d"\nadapter = "adapter:Adapter"\n[protocols.ipsec]\nroles = ["initiator"]\n'
     'features = ["psk@lns"]\n', "protocols.ipsec.features"),
])
def test_a_bad_declaration_names_the_file_and_the_field(tmp_path, toml, field):
    folder = declare(tmp_path, "v", toml)
    with pytest.raises(ConfigError) as caught:
        load_registry(tmp_path)
    assert caught.value.where == str(folder / "vendor.toml")
    assert caught.value.field == field
    assert "\n" not in str(caught.value)


def test_host_needs_are_declared_per_feature(tmp_path):
    declare(tmp_path, "v", vendor_toml("v", extra='[protocols.ipsec.host]\npsk = ["kernel-esp"]\n'))
    vendor = load_registry(tmp_path)["v"]
    assert vendor.host_needs("ipsec", {"psk", "childless"}) == {"psk": frozenset({"kernel-esp"})}
    assert vendor.host_needs("ipsec", {"childless"}) == {}


@pytest.mark.parametrize("host, problem", [
    ('[protocols.ipsec.host]\npsk = ["kernel-esb"]\n', "unknown host capability"),
    ('[protocols.ipsec.host]\nchild_sa = ["kernel-esp"]\n', "names a feature not in features"),
])
def test_bad_host_needs_name_the_field(tmp_path, host, problem):
    folder = declare(tmp_path, "v", vendor_toml("v", extra=host))
    with pytest.raises(ConfigError, match=problem) as caught:
        load_registry(tmp_path)
    assert caught.value.where == str(folder / "vendor.toml") and caught.value.field.startswith("protocols.ipsec.host.")
