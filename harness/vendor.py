"""Vendors: one folder each under vendors/, declared by its `vendor.toml` (UTF-8):

    name = "strongswan"                    # must equal the folder name
    description = "strongSwan (charon-systemd, swanctl)"
    adapter = "adapter:StrongSwan"         # <module in the folder>:<class>
    reference = false                      # optional: true for the harness's own reference peers (scapy-vtep,
                                           # scapy-l2tp): a cell where both sides are reference checks the harness

    [protocols.ipsec]
    roles = ["initiator", "responder"]     # the roles of harness.protocols.ipsec.ROLES it can play
    features = ["psk", "childless@responder"]  # names from harness.protocols.ipsec.FEATURES, what the cases
                                           # may ask for; "@role": only in that role
    keylog = "keylog:parse"                # optional: <module in the folder>:<function> reading the session
                                           # keys this daemon writes to its log; what it returns is the
                                           # protocol's business (IPsec: (ike_keys, esp_keys)). `overlay-interop
                                           # transcript --keys-from LOG` asks every vendor that declares one.

    [protocols.ipsec.host]                 # optional: host capabilities (harness.host) a feature needs
    child_sa = ["kernel-esp"]              # from this vendor; without them the case is skipped, saying so:
                                           # names the core or a protocol package declares, or the vendor's own

    [capabilities.openvswitch]             # optional: a host capability only this vendor uses, added to the
    meaning = "the openvswitch kernel datapath"  # host probe: "host lacks <meaning>"; the probe is a shell
    probe = "succeeds genl ctrl get name ovs_datapath"  # snippet printing "yes" or "no <why>" (harness.host)

    [protocols.ipsec.gaps]                 # optional: why a feature (or "feature@role") is NOT declared, e.g.
    rekey = "adapter gap: ..."             # the adapter does not drive it yet; a case needing it is skipped
                                           # with this reason instead of "does not declare"

    version = "5.9"                        # optional: the version label of the folder's own build (the row
                                           # "strongswan"; `--vendors strongswan@5.9` names it too)

    [versions."6.0"]                       # optional: another version of the vendor, the row "strongswan@6.0": the
    description = "strongSwan 6.0.1 (Debian 13)"  # same folder and adapter, built on another Debian release
    base = "trixie"                        # (its base image: debian:<base>-slim or overlay-interop/base:<base>,
                                           # which scripts/setup-host.sh bootstraps for every base named here)
    build_args = { UNSTABLE_PACKAGES = "..." }  # optional: more build arguments for the folder's Dockerfile
    [versions."6.0".protocols.ipsec]       # optional: what this version declares differently; each key given
    features = ["psk", "mlkem"]            # replaces the folder's (roles, features, host, gaps, keylog)

    [variants.kernel]                      # optional: another row of the matrix, "strongswan@kernel": the same
    description = "... on kernel ESP"      # image, adapter and declarations, needing these host capabilities
    needs = ["kernel-esp"]                 # in every case: where the host lacks them it runs as a microVM
                                           # (--kernel auto), and the adapter, handed that kernel's
                                           # capabilities, takes its kernel paths
    build_args = { IPSEC_PACKAGES = "..." }  # optional: the variant's own image, the folder built with these
                                           # arguments (another stack under the same daemon: xl2tpd@strongswan)
    [variants.kernel.protocols.l2tp]       # optional, as for a version: what the variant declares differently

A row named "<vendor>@<label>" is a *labelled entry* of the folder's vendor: the same folder, adapter and
declarations under another name. Three things make one: a version above (`labelled_by = "[versions]"`: its own
image, its own declarations; `--vendors strongswan` means the vendor and all its versions), a variant above
(`labelled_by = "vendor.toml"`), and
`--image <vendor>@<label>=REF` (`labelled_by = "--image"`: the vendor driven on an image the user supplies, e.g.
a CI build of a branch beside the release). `--image <vendor>=REF` makes the vendor, and its variants, run REF
instead of the folder's build (`supplied_image`); `Vendor.image()` is the one place a node's image is chosen.

Every key is validated: an unknown key (`feature = [...]` for `features`) or a feature name not in the
protocol's FEATURES is an error naming the file and the key, never a matrix whose cells all skip.
The registry is built from these files alone; the matrix is every ordered pair they allow.
"""
from __future__ import annotations

import dataclasses
import re

import importlib
import sys
import types
from dataclasses import dataclass, field
from pathlib import Path

from harness import protocols
from harness.errors import ConfigError
from harness.host import CORE, Capability, declarations
from harness.images import Build
from harness.tomlfile import read_toml

VENDOR_PACKAGE = "overlay_interop_vendors"
VARIANT, SUPPLIED, VERSION = "vendor.toml", "--image", "[versions]"  # what made a labelled entry (Vendor.labelled_by)
LABEL = re.compile(r"[a-z0-9][a-z0-9._-]{0,39}")
TOP_KEYS = ("name", "description", "adapter", "reference", "version", "protocols", "capabilities", "variants",
            "versions")
VERSION_KEYS = ("description", "base", "build_args", "protocols")
VERSION_PROTOCOL_KEYS = ("roles", "features", "host", "gaps", "keylog")
RELEASE = re.compile(r"[a-z][a-z0-9-]{1,30}")  # a Debian release name: bookworm, trixie, sid
VARIANT_KEYS = ("description", "needs", "build_args", "protocols")
PROTOCOL_KEYS = ("roles", "features", "host", "gaps", "keylog")


@dataclass(frozen=True)
class Support:
    roles: frozenset[str]
    features: frozenset[str]
    host: dict[str, frozenset[str]] = field(default_factory=dict)  # feature -> host capabilities it needs
    gaps: dict[str, str] = field(default_factory=dict)  # "feature" or "feature@role" -> why it is not declared
    keylog: str | None = None  # "<module>:<function>" that reads session keys from the daemon's log


@dataclass(frozen=True)
class Companion:
    """A node a vendor needs beside its own on the pair's network (e.g. the RADIUS server an LNS asks): built
    from `folder` (a Dockerfile, like a vendor folder) as image "<vendor>-<name>", created with `files` in
    place and started before the vendor's node, ready once `ready_log` appears in its log. An adapter lists
    them in `companions(scenario, side)` and receives the created nodes in `use_companions({name: node})`."""
    name: str
    folder: Path
    files: dict[str, str | bytes] = field(default_factory=dict)
    ready_log: str | None = None


@dataclass(frozen=True, eq=False)  # hashed by identity: one object per vendor folder
class Vendor:
    name: str
    folder: Path
    description: str
    adapter: str
    protocols: dict[str, Support] = field(default_factory=dict)
    reference: bool = False  # the harness's own reference peer (vendor.toml `reference = true`)
    capabilities: dict[str, Capability] = field(default_factory=dict)  # host capabilities it declares
    # A labelled entry "<vendor>@<label>" of the folder's vendor (see the module's docstring), and what made it:
    # VARIANT (vendor.toml [variants.<label>]: another kernel data plane, needing these host capabilities in every
    # case, so under --kernel auto it runs as a microVM where the host lacks them) or SUPPLIED (--image).
    label: str | None = None
    labelled_by: str | None = None
    variant_needs: frozenset[str] = frozenset()
    # An image the user supplied (--image: a local tag or id), run instead of building the folder.
    supplied_image: str | None = None
    # Which version this row is (vendor.toml `version` for the folder's own build and its variants, the label of a
    # [versions.<label>] row), and how a version's image is built: the Debian release of its base, build arguments.
    version: str | None = None
    base: str | None = None
    build_args: tuple[tuple[str, str], ...] = ()

    @property
    def variant(self) -> str | None:
        """The label of a vendor.toml variant; None for the vendor itself and for a row --image added."""
        return self.label if self.labelled_by == VARIANT else None

    @property
    def image_name(self) -> str:
        """The name its image is built under: the folder's (a labelled entry runs its vendor's folder), a version's
        with its label ("strongswan-6.0": another base, other build arguments, another image)."""
        return f"{self.folder.name}-{self.label}" if self._own_build else self.folder.name

    @property
    def build(self) -> Path | Build:
        """What Images.ensure builds for it: the folder, or for a version (or a variant with build arguments) the
        folder on its base with its args."""
        return Build(self.folder, self.base, self.build_args) if self._own_build else self.folder

    @property
    def _own_build(self) -> bool:
        return self.labelled_by == VERSION or (self.labelled_by == VARIANT and bool(self.build_args))

    def image(self, images) -> str:
        """The image its nodes run (a tag or id): the one the user supplied, never built, else the folder's build
        (harness.images.Images.ensure). Containers and microVM roots alike come from here."""
        return self.supplied_image or images.ensure(self.image_name, self.build)

    def plays(self, protocol: str, role: str) -> bool:
        support = self.protocols.get(protocol)
        return support is not None and role in support.roles

    def missing_features(self, protocol: str, features: set[str] | frozenset[str], role: str) -> list[str]:
        """The features this vendor lacks when it plays `role` (a feature may be declared for one role)."""
        declared = self.protocols.get(protocol, Support(frozenset(), frozenset())).features
        return sorted(f for f in features if f not in declared and f"{f}@{role}" not in declared)

    def gap(self, protocol: str, feature: str, role: str) -> str | None:
        """Why this vendor lacks `feature` as `role`, where its vendor.toml says (`gaps`); None if it does not."""
        gaps = self.protocols[protocol].gaps if protocol in self.protocols else {}
        return gaps.get(f"{feature}@{role}") or gaps.get(feature)

    def host_needs(self, protocol: str, features) -> dict[str, frozenset[str]]:
        """For the features a case uses, the host capabilities this vendor needs to provide them."""
        support = self.protocols.get(protocol)
        needs = {f: support.host[f] for f in sorted(features) if support and f in support.host}
        if self.variant_needs and support:
            needs[f"its {self.variant} variant"] = self.variant_needs
        return needs

    def images(self) -> dict[str, Path]:
        """The images this vendor runs, name -> folder: its own, and one per companion folder (a sub-folder with a
        Dockerfile, image "<vendor>-<sub-folder>", see Companion): what is built before the first case."""
        companions = {f"{self.image_name}-{sub.name}": sub for sub in sorted(self.folder.iterdir())
                      if sub.is_dir() and (sub / "Dockerfile").is_file()}
        own = {} if self.supplied_image else {self.image_name: self.build}  # a supplied image is never built
        return {**own, **companions}

    def adapter_class(self) -> type:
        """The adapter class, imported from the vendor folder as package `overlay_interop_vendors.<name>`,
        so an adapter can import its siblings (`from .keylog import ...`)."""
        return self._entry_point(self.adapter, "adapter")

    def keylog(self, protocol: str):
        """The function its vendor.toml declares to read session keys from this daemon's log for `protocol`
        (`keylog = "keylog:parse"`), or None when it declares none."""
        support = self.protocols.get(protocol)
        if support is None or support.keylog is None:
            return None
        return self._entry_point(support.keylog, f"protocols.{protocol}.keylog")

    def _entry_point(self, spec: str, field_name: str):
        """`module:name` from the vendor folder, imported as a module of package `overlay_interop_vendors.<name>`."""
        module_name, _, attribute = spec.partition(":")
        package = f"{VENDOR_PACKAGE}.{self.folder.name}"  # a variant imports its vendor's modules
        root = sys.modules.setdefault(VENDOR_PACKAGE, types.ModuleType(VENDOR_PACKAGE))
        root.__path__ = []
        if getattr(sys.modules.get(package), "__path__", None) != [str(self.folder)]:
            for stale in [m for m in sys.modules if m == package or m.startswith(package + ".")]:
                del sys.modules[stale]
            module = types.ModuleType(package)
            module.__path__ = [str(self.folder)]
            sys.modules[package] = module
        module = importlib.import_module(f"{package}.{module_name}")
        try:
            return getattr(module, attribute)
        except AttributeError:
            raise ConfigError(str(self.folder / "vendor.toml"), field_name,
                              f"{module_name}.py has no {attribute}") from None


def _strings(value, where: str, field_name: str) -> frozenset[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise ConfigError(where, field_name, "must be a list of non-empty strings")
    return frozenset(value)


def _known_keys(table: dict, known: tuple[str, ...], where: str, prefix: str = "") -> None:
    for key in table:
        if key not in known:
            raise ConfigError(where, prefix + key, f"unknown key; known: {', '.join(known)}")


def _read(folder: Path) -> dict:
    return read_toml(folder / "vendor.toml", missing="missing; every vendor folder declares itself there",
                     folder="is a folder, not the vendor's declaration")


def _feature(name: str, proto: str, legal: set[str], where: str, field_name: str) -> None:
    """`name` is "feature" or "feature@role", the feature from the protocol's vocabulary."""
    feature, at, role = name.partition("@")
    vocabulary = protocols.features(proto)
    if feature not in vocabulary:
        raise ConfigError(where, field_name, f"unknown feature {feature!r}; {proto} cases use: "
                                             f"{', '.join(vocabulary)}")
    if at and role not in legal:
        raise ConfigError(where, field_name, f"{name!r}: {role!r} is not one of {sorted(legal)}")


def _support(proto: str, table, where: str, own: dict[str, Capability], folder: Path) -> Support:
    prefix = f"protocols.{proto}"
    if proto not in protocols.known():
        raise ConfigError(where, prefix, f"unknown protocol; known: {', '.join(protocols.known())}")
    if not isinstance(table, dict):
        raise ConfigError(where, prefix, "must be a table")
    _known_keys(table, PROTOCOL_KEYS, where, f"{prefix}.")
    roles = _strings(table.get("roles"), where, f"{prefix}.roles")
    legal = set(protocols.roles(proto))
    if not roles <= legal:
        raise ConfigError(where, f"{prefix}.roles", f"{sorted(roles - legal)} not among {sorted(legal)}")
    features = _strings(table.get("features", []), where, f"{prefix}.features")
    for feature in sorted(features):
        _feature(feature, proto, legal, where, f"{prefix}.features")
    host = table.get("host", {})
    if not isinstance(host, dict):
        raise ConfigError(where, f"{prefix}.host", "must be a table of feature = [host capabilities]")
    needs = {}
    for feature, caps in host.items():
        needs[feature] = _strings(caps, where, f"{prefix}.host.{feature}")
        if feature not in {f.partition("@")[0] for f in features}:
            raise ConfigError(where, f"{prefix}.host.{feature}", "names a feature not in features")
        known = [*CORE, *(n for p in protocols.known() for n in protocols.host_capabilities(p)), *own]
        unknown = needs[feature] - set(known)
        if unknown:
            raise ConfigError(where, f"{prefix}.host.{feature}",
                              f"unknown host capability {sorted(unknown)}; known: {', '.join(known)} (or declare "
                              f"it: [capabilities.<name>])")
    gaps = table.get("gaps", {})
    if not isinstance(gaps, dict):
        raise ConfigError(where, f"{prefix}.gaps", 'must be a table of feature = "why it is not declared"')
    for name, why in gaps.items():
        field_name = f"{prefix}.gaps.{name}"
        _feature(name, proto, legal, where, field_name)
        if not isinstance(why, str) or not why.strip() or any(c in why for c in "\r\n"):
            raise ConfigError(where, field_name, "must be one non-empty line saying why it is not declared")
        feature, at, _ = name.partition("@")
        # "rekey" is missing in every role, "rekey@initiator" in that one: either contradicts declaring it there
        clash = sorted(f for f in features if f in (feature, name) or (not at and f.startswith(f"{feature}@")))
        if clash:
            raise ConfigError(where, field_name, f"features declares it ({', '.join(clash)}); a gap says why a "
                                                 f"feature is not declared")
    keylog = table.get("keylog")
    if keylog is not None:
        _entry_point_spec(keylog, folder, where, f"{prefix}.keylog", "<module>:<function>")
    return Support(roles, features, needs, dict(gaps), keylog)


def _entry_point_spec(spec, folder: Path, where: str, field_name: str, shape: str) -> None:
    """`spec` is "<module>:<name>" naming a .py file in the vendor folder."""
    module_name, sep, name = spec.partition(":") if isinstance(spec, str) else ("", "", "")
    if not sep or not name or not module_name or not (folder / f"{module_name}.py").is_file():
        raise ConfigError(where, field_name, f"{spec!r} must be '{shape}' naming a .py file in {folder}")


def load_vendor(folder: Path) -> Vendor:
    where = str(folder / "vendor.toml")
    data = _read(folder)
    _known_keys(data, TOP_KEYS, where)
    for key in ("name", "description", "adapter"):
        if not isinstance(data.get(key), str) or not data[key]:
            raise ConfigError(where, key, "required, a non-empty string")
    if data["name"] != folder.name:
        raise ConfigError(where, "name", f"is {data['name']!r} but the folder is {folder.name!r}")
    _entry_point_spec(data["adapter"], folder, where, "adapter", "<module>:<Class>")
    reference = data.get("reference", False)
    if not isinstance(reference, bool):
        raise ConfigError(where, "reference", "must be true or false (is this the harness's own reference peer?)")
    declared = data.get("protocols")
    if not isinstance(declared, dict) or not declared:
        raise ConfigError(where, "protocols", "declare at least one [protocols.<name>] table")
    capabilities = declarations(data.get("capabilities", {}), where, "capabilities.")
    for name in capabilities:
        owner = "harness.host" if name in CORE else next(
            (f"harness.protocols.{p}" for p in protocols.known() if name in protocols.host_capabilities(p)), None)
        if owner:
            raise ConfigError(where, f"capabilities.{name}", f"host capability already declared by {owner}")
    support = {proto: _support(proto, table, where, capabilities, folder) for proto, table in declared.items()}
    version = data.get("version")
    if version is not None and (not isinstance(version, str) or not LABEL.fullmatch(version)):
        raise ConfigError(where, "version", "a version label: lower case letters, digits, '.', '_' and '-' "
                                            "(at most 40), e.g. \"5.9\"")
    vendor = Vendor(data["name"], folder, data["description"], data["adapter"], support, reference, capabilities,
                    version=version)
    _variants(vendor, data, where)  # checked here, expanded by load_registry
    _versions(vendor, data, where)
    return vendor


def _labelled_entry(label, spec, keys: set[str], where: str, at: str, example: str) -> str:
    """The checks every [versions.<label>] and [variants.<label>] table shares; its description."""
    if not isinstance(label, str) or not LABEL.fullmatch(label):
        raise ConfigError(where, at, "a label is lower case letters, digits, '.', '_' and '-' (at most 40)")
    if not isinstance(spec, dict):
        raise ConfigError(where, at, f"must be a table: {example}")
    _known_keys(spec, keys, where, f"{at}.")
    description = spec.get("description")
    if not isinstance(description, str) or not description.strip():
        raise ConfigError(where, f"{at}.description", "required, a non-empty string")
    return description


def _versions(vendor: Vendor, data: dict, where: str) -> list[Vendor]:
    """The vendor's versions ([versions.<label>]: description, base, build_args, protocols), each a Vendor named
    "<vendor>@<label>" built from the same folder on its own base, declaring what the folder's vendor.toml
    declares but for the keys its own [versions.<label>.protocols.<p>] tables give."""
    table = data.get("versions", {})
    if not isinstance(table, dict):
        raise ConfigError(where, "versions", "must be a table of [versions.<label>] tables")
    clash = sorted(set(table) & set(data.get("variants", {}) or {}))
    if clash:
        raise ConfigError(where, f"versions.{clash[0]}", "is also a variant's label; a row has one name")
    out = []
    for label, spec in table.items():
        at = f"versions.{label}"
        if label == vendor.version:
            raise ConfigError(where, at, f"is the folder's own build (version = {label!r}); give another label")
        description = _labelled_entry(label, spec, VERSION_KEYS, where, at,
                                      'description = "...", base = "<Debian release>"')
        base = spec.get("base")
        if not isinstance(base, str) or not RELEASE.fullmatch(base):
            raise ConfigError(where, f"{at}.base", 'required: the Debian release its image is built on, e.g. '
                                                   '"trixie"')
        out.append(dataclasses.replace(vendor, name=f"{vendor.name}@{label}", description=description, label=label,
                                       labelled_by=VERSION, protocols=_own_support(vendor, data, spec, where, at),
                                       version=label, base=base, build_args=_build_args(spec, where, at)))
    return out


def _build_args(spec: dict, where: str, at: str) -> tuple[tuple[str, str], ...]:
    """A [versions.<label>] or [variants.<label>] table's build_args, checked: NAME = "value" Dockerfile ARGs."""
    args = spec.get("build_args", {})
    if not isinstance(args, dict) or not all(isinstance(k, str) and k.isidentifier() and isinstance(v, str)
                                             for k, v in args.items()):
        raise ConfigError(where, f"{at}.build_args", "must be a table of NAME = \"value\" (Dockerfile ARGs)")
    if "BASE_IMAGE" in args:
        raise ConfigError(where, f"{at}.build_args.BASE_IMAGE", "comes from base; leave it out")
    return tuple(sorted(args.items()))


def _own_support(vendor: Vendor, data: dict, spec: dict, where: str, at: str) -> dict[str, Support]:
    """What a labelled entry declares: the folder's declarations but for the keys its own
    [<at>.protocols.<p>] tables give (each replaces the folder's key)."""
    own = spec.get("protocols", {})
    if not isinstance(own, dict):
        raise ConfigError(where, f"{at}.protocols", "must be a table of [protocols.<name>] tables")
    support = dict(vendor.protocols)
    for proto, changes in own.items():
        if proto not in vendor.protocols:
            raise ConfigError(where, f"{at}.protocols.{proto}", f"the folder's vendor.toml declares no "
                                                                f"[protocols.{proto}]: a labelled entry only changes "
                                                                f"what it declares")
        if not isinstance(changes, dict):
            raise ConfigError(where, f"{at}.protocols.{proto}", "must be a table")
        _known_keys(changes, VERSION_PROTOCOL_KEYS, where, f"{at}.protocols.{proto}.")
        merged = {**data["protocols"][proto], **changes}
        support[proto] = _support(proto, merged, f"{where} [{at}]", vendor.capabilities, vendor.folder)
    return support


def _version_key(label: str | None) -> tuple:
    """A version label in version order ("4.10" after "4.9"): numbers compare as numbers."""
    return tuple((0, int(part), "") if part.isdigit() else (1, 0, part)
                 for part in re.split(r"[._-]", label or ""))


def _variants(vendor: Vendor, data: dict, where: str) -> list[Vendor]:
    """The vendor's variants ([variants.<label>]: description, needs = [host capabilities], optionally
    build_args and protocols as a version's), each a Vendor named "<vendor>@<label>" with the same folder and
    adapter, and the folder's declarations but for what its own protocols tables change."""
    table = data.get("variants", {})
    if not isinstance(table, dict):
        raise ConfigError(where, "variants", "must be a table of [variants.<label>] tables")
    known = {*CORE, *(n for p in protocols.known() for n in protocols.host_capabilities(p)), *vendor.capabilities}
    out = []
    for label, spec in table.items():
        at = f"variants.{label}"
        description = _labelled_entry(label, spec, VARIANT_KEYS, where, at,
                                      'description = "...", needs = ["capability", ...]')
        needs = _strings(spec.get("needs"), where, f"{at}.needs")
        unknown = needs - known
        if unknown:
            raise ConfigError(where, f"{at}.needs", f"unknown host capability {sorted(unknown)}; known: "
                                                   f"{', '.join(sorted(known))}")
        out.append(dataclasses.replace(vendor, name=f"{vendor.name}@{label}", description=description,
                                       label=label, labelled_by=VARIANT, variant_needs=needs,
                                       protocols=_own_support(vendor, data, spec, where, at),
                                       build_args=_build_args(spec, where, at)))
    return out


def load_registry(vendors_dirs: Path | list[Path], only: list[str] | None = None) -> dict[str, Vendor]:
    """Every vendor under the folders `vendors_dirs` (each a folder of vendor folders, a vendor folder being one
    with a vendor.toml) and its variants ("<vendor>@<label>", after it), optionally narrowed to `only`. A name
    in two folders is an error naming both (the same folder given twice is read once)."""
    found: dict[str, Vendor] = {}
    seen: set[Path] = set()
    for vendors_dir in [vendors_dirs] if isinstance(vendors_dirs, Path) else vendors_dirs:
        for folder in sorted(p for p in vendors_dir.iterdir() if p.is_dir() and (p / "vendor.toml").exists()):
            if folder.resolve() in seen:
                continue
            seen.add(folder.resolve())
            vendor = load_vendor(folder)
            if vendor.name in found:
                raise ConfigError(str(folder / "vendor.toml"), "name",
                                  f"{vendor.name!r} is also the vendor of {found[vendor.name].folder}; a vendor "
                                  f"added from another folder needs a name of its own")
            found[vendor.name] = vendor
            data = _read(folder)
            found.update((v.name, v) for v in _versions(vendor, data, str(folder)))
            found.update((v.name, v) for v in _variants(vendor, data, str(folder)))
    return narrow(found, only) if only else found


def vendors_folder(given: str) -> Path:
    """A --vendors-dir: a folder of vendor folders. A vendor folder itself, or a folder with none, is a mistake
    that would otherwise add nothing, silently."""
    folder = Path(given)
    if not folder.is_dir():
        raise ConfigError("--vendors-dir", given, "not a folder")
    if (folder / "vendor.toml").exists():
        raise ConfigError("--vendors-dir", given, f"is a vendor folder; give the folder that holds it "
                                                  f"({folder.resolve().parent})")
    if not any(p.is_dir() and (p / "vendor.toml").exists() for p in folder.iterdir()):
        raise ConfigError("--vendors-dir", given, "holds no vendor folder (a folder with a vendor.toml)")
    return folder


def parse_image(text: str) -> tuple[str, str | None, str]:
    """`--image VENDOR=REF` or `VENDOR@LABEL=REF` -> (vendor, label or None, ref)."""
    name, sep, ref = text.partition("=")
    vendor, at, label = name.partition("@")
    if not sep or not vendor or not ref or any(c.isspace() for c in text):
        raise ConfigError("--image", repr(text), "must be VENDOR=IMAGE or VENDOR@LABEL=IMAGE (a local tag or id)")
    if at and not LABEL.fullmatch(label):
        raise ConfigError("--image", repr(text), f"label {label!r}: lower case letters, digits, '.', '_' and '-' "
                                                 f"(at most 40)")
    return vendor, (label if at else None), ref


def supply_images(found: dict[str, Vendor], specs: list[str]) -> dict[str, Vendor]:
    """The registry with the --image options applied (see the module's docstring): `VENDOR=REF` runs REF for
    the vendor and its variants (not its versions: each is a build of its own); `VENDOR@VERSION=REF` runs REF for
    that version; `VENDOR@LABEL=REF` adds the row "VENDOR@LABEL" right after the vendor's own rows.
    Whether each image is there is check_images' to say."""
    out = dict(found)
    given: dict[str, str] = {}
    for text in specs:
        vendor, label, ref = parse_image(text)
        name = f"{vendor}@{label}" if label else vendor
        if name in given:
            raise ConfigError("--image", repr(text), f"{name} is given an image twice (also {given[name]!r})")
        given[name] = text
        base = found.get(vendor)
        if base is None or base.label:
            folders = [v for v in found.values() if v.label is None]
            raise ConfigError("--image", repr(text), f"no such vendor {vendor!r}; known: "
                                                     f"{', '.join(v.name for v in folders)}")
        if label is None:  # a version is another build of the folder: it keeps its own
            out.update((n, dataclasses.replace(v, supplied_image=ref)) for n, v in out.items()
                       if v.folder == base.folder and v.labelled_by not in (SUPPLIED, VERSION))
        elif name in found and found[name].labelled_by == VERSION:  # that version, run on the image given
            out[name] = dataclasses.replace(found[name], supplied_image=ref)
        elif name in found:
            raise ConfigError("--image", repr(text), f"{name} is a variant ([variants.{label}] in "
                                                     f"{base.folder / 'vendor.toml'}); give the image another label")
        else:
            row = dataclasses.replace(base, name=name, description=f"{base.description}, image {ref}", label=label,
                                      labelled_by=SUPPLIED, variant_needs=frozenset(), supplied_image=ref)
            names = list(out)
            last = max(i for i, n in enumerate(names) if out[n].folder == base.folder)
            out = {**{n: out[n] for n in names[:last + 1]}, name: row, **{n: out[n] for n in names[last + 1:]}}
    return out


def check_images(specs: list[str], present) -> None:
    """Every image the --image options name is here (`present(ref)`), so a run never starts on a typo."""
    for text in specs:
        ref = parse_image(text)[2]
        if not present(ref):
            raise ConfigError("--image", repr(text), f"no local image {ref!r} (`docker images`; pull or build it "
                                                     f"first: the harness never pulls)")


def narrow(found: dict[str, Vendor], only: list[str] | None) -> dict[str, Vendor]:
    """The vendors named in `only`; when it names none, every vendor but the variants ("<vendor>@<label>" of a
    vendor.toml: each adds a row of cells, most of them microVMs on a host without the kernel it needs, so a run
    asks for them by name). A row --image added is in: the user asked for it. A vendor's bare name means it and
    all its versions; "<vendor>@<version>" where that is the folder's own `version` names the vendor's own row.
    An unknown name is an error."""
    if only:
        own = {f"{v.name}@{v.version}": v.name for v in found.values() if v.label is None and v.version}
        unknown = [v for v in only if v not in found and v not in own]
        if unknown:
            raise ConfigError("--vendors", ",".join(unknown), f"no such vendor; known: {', '.join(found)}")
        chosen: dict[str, Vendor] = {}
        for given in only:
            name = own.get(given, given)
            chosen[name] = found[name]
            if given == name and found[name].label is None:  # the bare name: "strongswan@5.9" is that row alone
                chosen.update((n, v) for n, v in found.items() if v.labelled_by == VERSION
                              and v.folder == found[name].folder and n not in only)
        return chosen
    return {name: v for name, v in found.items() if v.labelled_by != VARIANT}


VERSION_CHOICES = ("default", "all", "none")


def in_version_matrix(a: Vendor, b: Vendor, rows, versions: str = "default") -> bool:
    """Whether the cell (a, b) is in the run under `--versions`: "all" every ordered pair; "none" only rows that
    are no version of a vendor (the matrix before versions); "default" each vendor's versions against each other,
    and otherwise only rows that are no version or their vendor's newest version among `rows`: a middle version
    meets its own vendor alone (the cross product grows as the square of the versions)."""
    if versions == "all":
        return True
    if versions == "none":
        return a.labelled_by != VERSION and b.labelled_by != VERSION
    if a.folder == b.folder:
        return True
    newest: dict[Path, str | None] = {}
    for row in rows:
        if row.labelled_by in (None, VERSION) and row.version is not None:
            if row.folder not in newest or _version_key(row.version) > _version_key(newest[row.folder]):
                newest[row.folder] = row.version
    return all(v.labelled_by != VERSION or newest.get(v.folder) == v.version for v in (a, b))


def ordered_pairs(registry: dict[str, Vendor], protocol: str) -> list[tuple[Vendor, Vendor]]:
    """Every (a, b) where a plays the protocol's first role and b its second, a == b included."""
    first, second = protocols.roles(protocol)
    return [(a, b) for a in registry.values() for b in registry.values()
            if a.plays(protocol, first) and b.plays(protocol, second)]


class HarnessPeer(Vendor):
    """The harness's built-in probe: the prober of the cases marked `probes` in a protocol that declares
    PROBE_ROLE (harness.pairlab has the one model of the harness's misbehaving peer; a protocol without
    PROBE_ROLE has vendors declaring the feature `probes` misbehave instead, e.g. scapy-l2tp). It is no vendor
    folder: no image (a plain node of the tools image sends what the case builds), no declaration, no feature
    lacking, since the case itself drives it; its cells are named after it, `probe -> <vendor>`."""

    def __init__(self):
        super().__init__("probe", Path(__file__).parent, "the harness's built-in probe (scapy)", "", reference=True)

    def plays(self, protocol: str, role: str) -> bool:
        return role == protocols.probe_role(protocol)

    def missing_features(self, protocol: str, features, role: str) -> list[str]:
        return []

    def gap(self, protocol: str, feature: str, role: str) -> str | None:
        return None

    def host_needs(self, protocol: str, features) -> dict[str, frozenset[str]]:
        return {}


HARNESS_PEER = HarnessPeer()
