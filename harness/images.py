"""Vendor images, built locally from `vendors/<name>/Dockerfile` and tagged by a hash of that folder.

The tag changes exactly when the folder (or the base image) changes, so an unchanged vendor is never
rebuilt. The base comes from ARG BASE_IMAGE: a registry's Debian where one answers, else the image that
scripts/setup-host.sh bootstrapped with debootstrap. A vendor's version (vendor.toml [versions.<label>]) is the
same folder built on another Debian release's base with its own build arguments (a `Build`): both are in its tag.
"""
from __future__ import annotations

import fcntl
import fnmatch
import hashlib
import os
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import docker
import docker.errors
import requests

from harness.errors import HarnessError

REGISTRY_BASE = "debian:bookworm-slim"
LOCAL_BASE = "overlay-interop/base:bookworm"
TOOLS_IMAGE_DIR = Path(__file__).parent / "tools_image"
BUILD_SILENCE_S = 900
PREPARE_PARALLEL = 4


class ImageBuildError(HarnessError):
    pass


@dataclass(frozen=True)
class Build:
    """A folder built on the base of Debian `release` (None: the default base) with more build arguments."""
    folder: Path
    release: str | None = None
    args: tuple[tuple[str, str], ...] = ()


def release_bases(release: str) -> list[str]:
    """Where the base of a Debian release comes from: a registry's, else the one setup-host.sh bootstrapped."""
    return [f"debian:{release}-slim", f"overlay-interop/base:{release}"]


def _ignored(folder: Path) -> list[str]:
    """The folder's .dockerignore patterns (plain globs; what Docker leaves out of the build context).
    Vendors list their adapter, templates and notes there: they are read at run time, not built in."""
    ignore = folder / ".dockerignore"
    lines = ignore.read_text().splitlines() if ignore.is_file() else []
    return [line.strip().rstrip("/") for line in lines if line.strip() and not line.startswith("#")]


def folder_digest(folder: Path, salt: str = "") -> str:
    """sha256 over the relative path and content of every file that goes into the image, plus `salt`
    (the base image id)."""
    patterns = _ignored(folder)

    def built_in(path: Path) -> bool:
        rel = path.relative_to(folder)
        return "__pycache__" not in rel.parts and not any(
            fnmatch.fnmatch(str(rel), p) or fnmatch.fnmatch(rel.parts[0], p) for p in patterns)

    h = hashlib.sha256(salt.encode())
    for path in sorted(p for p in folder.rglob("*") if p.is_file() and built_in(p)):
        h.update(str(path.relative_to(folder)).encode() + b"\0")
        h.update(path.read_bytes() + b"\0")
    return h.hexdigest()[:12]


class Images:
    def __init__(self, client: docker.DockerClient, base_image: str | None = None):
        self.client = client
        self._base = base_image or os.environ.get("OVERLAY_INTEROP_BASE_IMAGE")
        self._base_id: str | None = None
        self._failed: dict[str, ImageBuildError] = {}  # tag -> why its build failed: not tried again in this run
        self._releases: dict[str, tuple[str, str]] = {}  # Debian release -> (base image, its id)

    @property
    def base(self) -> str:
        """The first base image that is present locally (no registry round-trip on every run)."""
        if self._base_id is None:
            for name in filter(None, [self._base, REGISTRY_BASE, LOCAL_BASE]):
                try:
                    self._base_id = self.client.images.get(name).id
                    self._base = name
                    break
                except docker.errors.ImageNotFound:
                    continue
            else:
                raise HarnessError(f"no base image: neither {REGISTRY_BASE} nor {LOCAL_BASE} is present; "
                                   f"run scripts/setup-host.sh")
        return self._base

    def release_base(self, release: str) -> tuple[str, str]:
        """The base image of a Debian release (a version's) and its id; setup-host.sh bootstraps it (it reads
        which releases the vendor folders' versions name), so a missing one says to run it."""
        if release not in self._releases:
            for name in release_bases(release):
                try:
                    self._releases[release] = (name, self.client.images.get(name).id)
                    break
                except docker.errors.ImageNotFound:
                    continue
            else:
                raise ImageBuildError(f"no base image for Debian {release}: neither "
                                      f"{' nor '.join(release_bases(release))} is present; run scripts/setup-host.sh")
        return self._releases[release]

    def _spec(self, build: Path | Build) -> tuple[Path, str, dict[str, str]]:
        """(folder, salt of its tag, build arguments) of a folder or a Build."""
        if isinstance(build, Path):
            build = Build(build)
        if build.release is None:
            base, base_id = self.base, self._base_id or ""
        else:
            base, base_id = self.release_base(build.release)
        args = {"BASE_IMAGE": base, **dict(build.args)}
        salt = base_id + "".join(f"\0{k}={v}" for k, v in build.args)  # no args: the tag it always had
        return build.folder, salt, args

    def tag_for(self, name: str, folder: Path | Build) -> str:
        folder, salt, _ = self._spec(folder)  # the base id and the build arguments are part of the hash
        return f"overlay-interop/{name}:{folder_digest(folder, salt)}"

    def ensure(self, name: str, folder: Path | Build) -> str:
        """Return the tag of `folder`'s image (a folder, or a Build: a folder on another base with more build
        arguments), building it only if that exact tag is missing."""
        tag = self.tag_for(name, folder)
        if tag in self._failed:
            raise self._failed[tag]
        if self._exists(tag):
            return tag
        # xdist workers may want the same image at once: one builds, the others wait and reuse it.
        lock_path = Path(tempfile.gettempdir()) / f"overlay-interop-build-{name}.lock"
        with open(lock_path, "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if not self._exists(tag):
                try:
                    self._build(name, *self._spec(folder)[::2], tag)
                except ImageBuildError as exc:
                    self._failed[tag] = exc
                    raise
        return tag

    def tools(self) -> str:
        return self.ensure("tools", TOOLS_IMAGE_DIR)

    def prepare(self, folders: dict[str, Path | Build], parallel: int = PREPARE_PARALLEL) -> dict[str, float]:
        """Make sure of every image in `folders` (name -> folder) before the first case, building the missing ones
        side by side: a build mostly waits on downloads and dpkg, so a few at once finish sooner than one after
        another, and no case's lab-up then waits on a build. Workers of one run doing the same share the work
        (ensure() locks each image). Returns seconds per image (0 for one already there). A build that fails is
        not an error here: each cell using that image is broken with the build's error (ensure() raises it again
        without building again), and the others run."""
        def one(item: tuple[str, Path | Build]) -> tuple[str, float]:
            started = time.monotonic()
            try:
                self.ensure(*item)
            except ImageBuildError:
                pass
            return item[0], round(time.monotonic() - started, 2)
        self.base  # resolve it once, not in every thread
        with ThreadPoolExecutor(max(1, min(parallel, len(folders)))) as pool:
            return dict(pool.map(one, sorted(folders.items(), key=lambda item: item[0])))

    def _exists(self, tag: str) -> bool:
        try:
            self.client.images.get(tag)
            return True
        except docker.errors.ImageNotFound:
            return False

    def _build(self, name: str, folder: Path, args: dict[str, str], tag: str) -> None:
        if not (folder / "Dockerfile").is_file():
            raise ImageBuildError(f"{folder}/Dockerfile: missing; a vendor folder needs one")
        step, output = "(before the first step)", []
        try:
            # timeout: the longest silence between two lines of build output (apt-get can be quiet a while).
            for chunk in self.client.api.build(path=str(folder), tag=tag, buildargs=args,
                                               rm=True, forcerm=True, decode=True, timeout=BUILD_SILENCE_S,
                                               labels={"overlay-interop.vendor": name}):
                line = chunk.get("stream", "").strip()
                if line.startswith("Step "):
                    step = line
                elif line:
                    output.append(line)
                if "error" in chunk:
                    detail = chunk.get("errorDetail", {}).get("message") or chunk["error"]
                    last = "\n  ".join(output[-8:])
                    raise ImageBuildError(f"{name}: image build failed at {step}: {detail.strip()}\n  {last}")
        except docker.errors.APIError as exc:
            raise ImageBuildError(f"{name}: image build failed at {step}: {exc.explanation or exc}") from None
        except requests.exceptions.RequestException:
            raise ImageBuildError(f"{name}: image build timed out waiting for output for {BUILD_SILENCE_S}s "
                                  f"at {step}") from None
