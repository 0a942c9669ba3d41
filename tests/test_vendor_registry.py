"""The vendor registry: declarations are validated field by field, and the matrix is every ordered pair
they allow."""
import ast
from pathlib import Path

import pytest

from harness import protocols
from harness.errors import ConfigError
from harness.host import declared, probe_script
from harness.vendor import HARNESS_PEER, load_registry, ordered_pairs

ROOT = Path(__file__).resolve().parent.parent
REPO_VENDORS = ROOT / "vendors"


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
    # a misspelt key or feature is an error, not a vendor whose every cell skips
    ('name = "v"\ndescription = "d"\nadapter = "adapter:Adapter"\n[protocols.ipsec]\nroles = ["initiator"]\n'
     'feature = ["psk"]\n', "protocols.ipsec.feature"),
    ('name = "v"\ndescription = "d"\nadapter = "adapter:Adapter"\nversoin = "1"\n[protocols.ipsec]\n'
     'roles = ["initiator"]\n', "versoin"),
    ('name = "v"\ndescription = "d"\nadapter = "adapter:Adapter"\n[protocols.ipsec]\nroles = ["initiator"]\n'
     'features = ["psk", "chilless"]\n', "protocols.ipsec.features"),
    ('name = "v"\ndescription = "d"\nadapter = "adapter:Adapter"\n[protocols.ipsec]\nroles = ["initiator"]\n'
     'features = ["chilless@responder"]\n', "protocols.ipsec.features"),
    ('name = "v"\ndescription = "d"\nadapter = "adapter:Adapter"\nreference = "yes"\n[protocols.ipsec]\n'
     'roles = ["initiator"]\n', "reference"),
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


OWN = '[capabilities.crypto-offload]\nmeaning = "an ESP offload device"\nprobe = "succeeds test -e /dev/esp0"\n'


def test_a_vendor_declares_a_capability_only_it_uses(tmp_path):
    """Its name is then valid in its own host needs, probed with the others, and known to expectations."""
    declare(tmp_path, "v", vendor_toml("v", extra='[protocols.ipsec.host]\npsk = ["crypto-offload"]\n' + OWN))
    declare(tmp_path, "w", vendor_toml("w"))
    registry = load_registry(tmp_path)
    assert registry["v"].host_needs("ipsec", {"psk"}) == {"psk": frozenset({"crypto-offload"})}
    capabilities = declared(registry.values())
    assert capabilities["crypto-offload"].source == str(tmp_path / "v" / "vendor.toml")
    assert "echo \"crypto-offload $(" in probe_script(capabilities)
    assert {"crypto-offload", "kernel-esp", "tun"} <= set(capabilities)
    assert "crypto-offload" not in declared(load_registry(tmp_path, ["w"]).values())  # --vendors w: not declared
    with pytest.raises(ConfigError, match="unknown host capability"):  # another vendor's is not yours
        declare(tmp_path, "x", vendor_toml("x", extra='[protocols.ipsec.host]\npsk = ["crypto-offload"]\n'))
        load_registry(tmp_path)


@pytest.mark.parametrize("extra, field, problem", [
    ('[capabilities.kernel-esp]\nmeaning = "ESP"\nprobe = "echo yes"\n', "capabilities.kernel-esp",
     "already declared by harness.protocols.ipsec"),
    ('[capabilities.tun]\nmeaning = "TUN"\nprobe = "echo yes"\n', "capabilities.tun",
     "already declared by harness.host"),
    ('[capabilities.x]\nmeaning = "x"\n', "capabilities.x.probe", "shell snippet"),
    ('capabilities = ["x"]\n', "capabilities", "must be a table"),
])
def test_a_bad_capability_declaration_names_the_field(tmp_path, extra, field, problem):
    folder = declare(tmp_path, "v", vendor_toml("v") + extra if extra.startswith("[") else extra + vendor_toml("v"))
    with pytest.raises(ConfigError, match=problem) as caught:
        load_registry(tmp_path)
    assert (caught.value.where, caught.value.field) == (str(folder / "vendor.toml"), field)


def test_two_vendors_cannot_declare_one_capability(tmp_path):
    declare(tmp_path, "v", vendor_toml("v", extra=OWN))
    declare(tmp_path, "w", vendor_toml("w", extra=OWN))
    with pytest.raises(ConfigError, match=f"already declared by {tmp_path / 'v' / 'vendor.toml'}") as caught:
        declared(load_registry(tmp_path).values())
    assert caught.value.where == str(tmp_path / "w" / "vendor.toml")


def test_an_unknown_feature_names_the_features_the_protocols_cases_use(tmp_path):
    folder = declare(tmp_path, "v", vendor_toml("v").replace('features = ["psk"]', 'features = ["psk", "rekeying"]'))
    with pytest.raises(ConfigError) as caught:
        load_registry(tmp_path)
    assert str(caught.value) == (f"{folder / 'vendor.toml'}: protocols.ipsec.features: unknown feature 'rekeying'; "
                                 f"ipsec cases use: {', '.join(protocols.features('ipsec'))}")
    assert "rekey" in protocols.features("ipsec")


def test_an_unknown_key_names_the_known_ones(tmp_path):
    declare(tmp_path, "v", vendor_toml("v").replace("features =", "feature ="))
    with pytest.raises(ConfigError, match=r"protocols\.ipsec\.feature: unknown key; known: roles, features, host, "
                                          r"gaps, keylog$"):
        load_registry(tmp_path)


def test_a_vendor_toml_that_is_not_utf8_names_the_file(tmp_path):
    folder = declare(tmp_path, "v", "")
    (folder / "vendor.toml").write_bytes(vendor_toml("v").encode() + b'# caf\xe9 in Latin-1\n')
    with pytest.raises(ConfigError) as caught:
        load_registry(tmp_path)
    assert (caught.value.where, caught.value.field) == (str(folder / "vendor.toml"), "(file)")
    assert "not UTF-8" in caught.value.problem


def test_a_vendor_toml_that_is_a_folder_names_the_file(tmp_path):
    folder = tmp_path / "v"
    (folder / "vendor.toml").mkdir(parents=True)
    with pytest.raises(ConfigError) as caught:
        load_registry(tmp_path)
    assert str(caught.value) == f"{folder / 'vendor.toml'}: (file): is a folder, not the vendor's declaration"


def test_reference_peers_are_declared(tmp_path):
    declare(tmp_path, "plain", vendor_toml("plain"))
    declare(tmp_path, "ref", vendor_toml("ref").replace('adapter = "adapter:Adapter"\n',
                                                          'adapter = "adapter:Adapter"\nreference = true\n'))
    registry = load_registry(tmp_path)
    assert (registry["plain"].reference, registry["ref"].reference) == (False, True)
    shipped = load_registry(REPO_VENDORS)
    assert sorted(name for name, v in shipped.items() if v.reference) == ["scapy-bgp", "scapy-l2tp", "scapy-vtep"]
    assert HARNESS_PEER.reference


def test_gaps_say_why_a_feature_is_missing(tmp_path):
    declare(tmp_path, "v", vendor_toml("v", extra='[protocols.ipsec.gaps]\nrekey = "adapter gap: no timers"\n'
                                                  '"childless@initiator" = "cannot initiate childless"\n'))
    vendor = load_registry(tmp_path)["v"]
    assert vendor.gap("ipsec", "rekey", "responder") == "adapter gap: no timers"
    assert vendor.gap("ipsec", "childless", "initiator") == "cannot initiate childless"
    assert vendor.gap("ipsec", "childless", "responder") is None and vendor.gap("vxlan", "geneve", "vtep1") is None
    assert load_registry(REPO_VENDORS)["libreswan@5.2"].gap("ipsec", "rekey", "initiator").startswith("not checked with 5.2")


@pytest.mark.parametrize("gaps, problem", [
    ('rekeying = "x"', "unknown feature 'rekeying'"),
    ('psk = "x"', r"features declares it \(psk\)"),
    ('"psk@responder" = "x"', r"features declares it \(psk\)"),
    ('"rekey@lns" = "x"', "'lns' is not one of"),
    ('rekey = ""', "one non-empty line"),
    ('rekey = """two\nlines"""', "one non-empty line"),
    ('rekey = ["x"]', "one non-empty line"),
])
def test_bad_gaps_name_the_field(tmp_path, gaps, problem):
    folder = declare(tmp_path, "v", vendor_toml("v", extra=f"[protocols.ipsec.gaps]\n{gaps}\n"))
    with pytest.raises(ConfigError, match=problem) as caught:
        load_registry(tmp_path)
    assert caught.value.where == str(folder / "vendor.toml") and caught.value.field.startswith("protocols.ipsec.gaps.")
    assert "\n" not in str(caught.value)


def test_a_gap_for_one_role_may_stand_beside_the_feature_declared_for_the_other(tmp_path):
    declare(tmp_path, "v", vendor_toml("v").replace('features = ["psk"]', 'features = ["psk", "dpd@responder"]')
            + '[protocols.ipsec.gaps]\n"dpd@initiator" = "checks liveness only per CHILD SA"\n')
    assert load_registry(tmp_path)["v"].gap("ipsec", "dpd", "initiator") == "checks liveness only per CHILD SA"
    declare(tmp_path, "w", vendor_toml("w").replace('features = ["psk"]', 'features = ["psk", "dpd@responder"]')
            + '[protocols.ipsec.gaps]\ndpd = "x"\n')
    with pytest.raises(ConfigError, match=r"features declares it \(dpd@responder\)"):
        load_registry(tmp_path)


def feature_marks() -> list[tuple[str, str, str]]:
    """(protocol, feature, where) for every `features`/`any_features` mark in suites/, read from the source."""
    found = []
    for path in sorted((ROOT / "suites").rglob("*.py")):
        tree = ast.parse(path.read_text())
        marks = [node for node in ast.walk(tree) if isinstance(node, ast.Call)
                 and isinstance(node.func, ast.Attribute) and isinstance(node.func.value, ast.Attribute)
                 and node.func.value.attr == "mark"]
        protocol = [m.args[0].value for m in marks if m.func.attr == "protocol"]
        for mark in marks:
            if mark.func.attr in ("features", "any_features"):
                where = f"{path.relative_to(ROOT)}:{mark.lineno}"
                assert len(protocol) == 1, f"{where}: a features mark in a module without one protocol mark"
                assert all(isinstance(a, ast.Constant) and isinstance(a.value, str) for a in mark.args), \
                    f"{where}: feature names must be literal strings, so they can be checked"
                found += [(protocol[0], a.value, where) for a in mark.args]
        probing = [node for node in ast.walk(tree) if isinstance(node, ast.Attribute) and node.attr == "probes"
                   and isinstance(node.value, ast.Attribute) and node.value.attr == "mark"]
        if probing and protocol and protocols.probe_role(protocol[0]) is None:  # vendors declaring it misbehave
            found.append((protocol[0], "probes", f"{path.relative_to(ROOT)}:{probing[0].lineno}"))
    return found


def test_every_feature_mark_and_declaration_is_in_the_protocols_vocabulary():
    marks = feature_marks()
    assert len(marks) > 20 and {p for p, _, _ in marks} == set(protocols.known())
    # "feature@role" asks it of the side playing that role (plugin.needed_by)
    unknown = [f"{where}: {feature!r} not in harness.protocols.{protocol}.FEATURES, or not one of its roles"
               for protocol, feature, where in marks if feature.partition("@")[0] not in protocols.features(protocol)
               or (feature.partition("@")[1] and feature.partition("@")[2] not in protocols.roles(protocol))]
    assert not unknown, "\n".join(unknown)
    declared = {(p, f.partition("@")[0]) for v in load_registry(REPO_VENDORS).values()
                for p, s in v.protocols.items() for f in [*s.features, *s.gaps]}
    assert all(f in protocols.features(p) for p, f in declared)  # load_registry enforces it; this says so


def test_every_feature_of_the_vocabulary_is_used():
    """A name no case asks for and no protocol package reads is a name nobody can rely on: drop it or use it."""
    asked = {(p, f) for p, f, _ in feature_marks()}
    unused = []
    for protocol in protocols.known():
        package = ROOT / "harness" / "protocols" / protocol
        code = " ".join(p.read_text() for p in package.glob("*.py") if p.name != "__init__.py")
        unused += [f"{protocol}: {name}" for name, meaning in protocols.features(protocol).items()
                   if (protocol, name) not in asked and f'"{name}"' not in code]
        assert all(meaning and "\n" not in meaning for meaning in protocols.features(protocol).values())
    assert not unused, unused


VARIANT = '[variants.kernel]\ndescription = "on the kernel\'s ESP"\nneeds = ["kernel-esp"]\n'


def test_a_variant_is_another_row_of_the_same_folder_asked_for_by_name(tmp_path):
    """"<vendor>@<label>": the vendor's image, adapter and declarations, needing the variant's host capabilities
    in every case; a run without --vendors leaves variants out (each is a row of microVMs on a host without them)."""
    from harness.vendor import narrow

    folder = declare(tmp_path, "acme", vendor_toml("acme", extra=VARIANT))
    everyone = load_registry(tmp_path)
    assert list(everyone) == ["acme", "acme@kernel"]
    variant, vendor = everyone["acme@kernel"], everyone["acme"]
    assert (variant.variant, variant.folder, variant.image_name, variant.description) == \
        ("kernel", folder, "acme", "on the kernel's ESP")
    assert variant.adapter_class() is vendor.adapter_class()  # one module: the vendor's
    assert variant.host_needs("ipsec", {"psk"}) == {"its kernel variant": frozenset({"kernel-esp"})}
    assert vendor.host_needs("ipsec", {"psk"}) == {}
    assert variant.images() == vendor.images() == {"acme": folder}
    assert list(narrow(everyone, None)) == ["acme"]
    assert list(narrow(everyone, ["acme@kernel", "acme"])) == ["acme@kernel", "acme"]
    assert [(a.name, b.name) for a, b in ordered_pairs(narrow(everyone, ["acme", "acme@kernel"]), "ipsec")] == [
        ("acme", "acme"), ("acme", "acme@kernel"), ("acme@kernel", "acme"), ("acme@kernel", "acme@kernel")]


@pytest.mark.parametrize("variants, field, problem", [
    ('[variants.kernel]\nneeds = ["kernel-esp"]\n', "variants.kernel.description", "required"),
    ('[variants.kernel]\ndescription = "d"\nneeds = ["warp-drive"]\n', "variants.kernel.needs",
     "unknown host capability ['warp-drive']"),
    ('[variants.kernel]\ndescription = "d"\nneeds = "kernel-esp"\n', "variants.kernel.needs", "must be a list"),
    ('[variants.kernel]\ndescription = "d"\nneeds = []\nimage = "x"\n', "variants.kernel.image", "unknown key"),
    ('[variants."Big Label"]\ndescription = "d"\nneeds = []\n', "variants.Big Label", "a label is lower case"),
    ('variants = 3\n', "variants", "must be a table"),
])
def test_a_bad_variant_names_the_file_and_the_field(tmp_path, variants, field, problem):
    declare(tmp_path, "acme", vendor_toml("acme") .replace("[protocols.ipsec]", variants + "[protocols.ipsec]"))
    with pytest.raises(ConfigError) as caught:
        load_registry(tmp_path)
    assert str(caught.value).startswith(f"{tmp_path / 'acme' / 'vendor.toml'}: {field}: ") and problem in str(caught.value)


def test_the_shipped_kernel_variants_need_what_their_adapters_switch_on():
    everyone = load_registry(REPO_VENDORS)
    assert {name: sorted(v.variant_needs) for name, v in everyone.items() if v.variant} == {
        "ovs@kernel": ["openvswitch"], "strongswan@kernel": ["kernel-esp"], "xl2tpd@kernel": ["ppp"],
        # L2TP/IPsec stacks: transport-mode ESP is the kernel's (libipsec does tunnel mode only)
        "xl2tpd@strongswan": ["kernel-esp"], "xl2tpd@libreswan": ["kernel-esp"]}


STACK = ('[variants.ipsec]\ndescription = "under an IKE daemon"\nneeds = ["kernel-esp"]\n'
         'build_args = { IPSEC_PACKAGES = "libreswan" }\n'
         '[variants.ipsec.protocols.ipsec]\nfeatures = ["psk", "ikev1"]\n')


def test_a_variant_with_build_args_is_its_own_image_and_may_change_its_declarations(tmp_path):
    """A variant built with other arguments (another stack under the same daemon) has an image of its own, named
    like a version's, on the default base; its protocols tables replace the keys they give, as a version's do."""
    from harness.images import Build

    folder = declare(tmp_path, "acme", vendor_toml("acme", extra=STACK))
    everyone = load_registry(tmp_path)
    variant, vendor = everyone["acme@ipsec"], everyone["acme"]
    assert (variant.image_name, variant.build) == \
        ("acme-ipsec", Build(folder, None, (("IPSEC_PACKAGES", "libreswan"),)))
    assert variant.images() == {"acme-ipsec": Build(folder, None, (("IPSEC_PACKAGES", "libreswan"),))}
    assert variant.protocols["ipsec"].features == {"psk", "ikev1"}
    assert variant.protocols["ipsec"].roles == vendor.protocols["ipsec"].roles
    assert (vendor.image_name, vendor.build) == ("acme", folder)


@pytest.mark.parametrize("extra, field, problem", [
    ('[variants.ipsec]\ndescription = "d"\nneeds = []\nbuild_args = { BASE_IMAGE = "x" }\n',
     "variants.ipsec.build_args.BASE_IMAGE", "comes from base"),
    ('[variants.ipsec]\ndescription = "d"\nneeds = []\nbuild_args = ["x"]\n', "variants.ipsec.build_args",
     "must be a table"),
    ('[variants.ipsec]\ndescription = "d"\nneeds = []\n[variants.ipsec.protocols.vxlan]\nfeatures = []\n',
     "variants.ipsec.protocols.vxlan", "declares no [protocols.vxlan]"),
])
def test_a_bad_variant_build_or_declaration_names_the_field(tmp_path, extra, field, problem):
    declare(tmp_path, "acme", vendor_toml("acme", extra=extra))
    with pytest.raises(ConfigError) as caught:
        load_registry(tmp_path)
    assert f"{field}: " in str(caught.value) and problem in str(caught.value)
