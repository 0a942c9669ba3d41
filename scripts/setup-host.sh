#!/usr/bin/env bash
# Host set-up for overlay-interop: a Docker engine that answers, and a base image the vendor
# Dockerfiles can build FROM. Idempotent: on a machine that already has both it changes nothing
# and returns in well under a second.
#
# Fresh Debian/Ubuntu machine without an engine: installs Debian's docker.io (plus tcpdump and
# debootstrap), starts dockerd in the background and waits for it. No registry: bootstraps the
# base image with debootstrap and `docker import`.
#
# --test-tools (what `./dev test` passes): also Debian's chromium, which the report pages' browser test
# drives (Playwright with the system browser; nothing is downloaded by Playwright), and tshark, which the
# transcript tests compare against. Only when missing.
set -euo pipefail

WITH_TEST_TOOLS=0
for arg in "$@"; do
  case "$arg" in
    --test-tools) WITH_TEST_TOOLS=1 ;;
    *) printf 'setup-host: error: unknown argument %s (known: --test-tools)\n' "$arg" >&2; exit 2 ;;
  esac
done

BASE_IMAGE="${OVERLAY_INTEROP_BASE_IMAGE:-debian:bookworm-slim}"
LOCAL_BASE="${OVERLAY_INTEROP_LOCAL_BASE:-overlay-interop/base:bookworm}"  # the benchmark bootstraps its own
STATE_DIR="${OVERLAY_INTEROP_STATE_DIR:-/var/lib/overlay-interop}"
PROJECT_DIR="$(cd "$(dirname "$0")/.." && pwd)"
DOCKERD_WAIT_S=60
PULL_TIMEOUT_S=60

say() { printf 'setup-host: %s\n' "$*" >&2; }
die() { say "error: $*"; exit 1; }

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null 2>&1 || die "not root and no sudo: run as root once, or install sudo"
  SUDO="sudo"
fi

engine_answers() { docker info >/dev/null 2>&1; }

apt_install() {
  local missing=()
  for pkg in "$@"; do dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  say "installing Debian packages: ${missing[*]}"
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  # No systemd here: keep package scripts from trying to start services we start ourselves.
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

start_dockerd() {
  say "starting dockerd in the background (log: $STATE_DIR/dockerd.log)"
  $SUDO mkdir -p "$STATE_DIR"
  # setsid: dockerd must outlive this script and the shell that ran it.
  $SUDO setsid sh -c "dockerd >'$STATE_DIR/dockerd.log' 2>&1 &"
  local waited=0
  until engine_answers; do
    sleep 1; waited=$((waited + 1))
    if [ "$waited" -ge "$DOCKERD_WAIT_S" ]; then
      tail -n 20 "$STATE_DIR/dockerd.log" >&2 || true
      die "timed out after ${DOCKERD_WAIT_S}s waiting for dockerd to answer 'docker info'"
    fi
  done
  say "dockerd answers after ${waited}s"
}

ensure_engine() {
  engine_answers && return 0
  if [ -n "${DOCKER_HOST:-}" ]; then
    die "DOCKER_HOST=$DOCKER_HOST is set but the engine there does not answer 'docker info'"
  fi
  command -v dockerd >/dev/null 2>&1 || apt_install docker.io
  engine_answers || start_dockerd
}

ensure_host_tools() {
  # tcpdump/debootstrap only matter on a local engine; a remote one (DOCKER_HOST) builds its own.
  [ -n "${DOCKER_HOST:-}" ] && return 0
  local need=()
  command -v tcpdump >/dev/null 2>&1 || need+=(tcpdump)
  command -v debootstrap >/dev/null 2>&1 || need+=(debootstrap)
  [ ${#need[@]} -eq 0 ] || apt_install "${need[@]}"
}

debian_mirror() {
  # The mirror apt already uses on this host: a machine without a registry may still reach it.
  local uri
  uri=$(grep -rhoE '^URIs: *[^ ]+' /etc/apt/sources.list.d/*.sources 2>/dev/null | awk '{print $2}' | grep -v security | head -n1 || true)
  [ -n "$uri" ] || uri=$(grep -hoE '^deb +(\[[^]]*\] +)?[a-z]+://[^ ]+' /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null | awk '{print $NF}' | grep -v security | head -n1 || true)
  echo "${uri:-http://deb.debian.org/debian}"
}

bootstrap_base() {  # bootstrap_base RELEASE IMAGE: a minbase Debian RELEASE imported as IMAGE
  local release=$1 image=$2 root mirror
  say "no registry answered; bootstrapping $image with debootstrap"
  ensure_host_tools
  root=$(mktemp -d /tmp/overlay-interop-rootfs.XXXXXX)
  trap '$SUDO rm -rf "$root"' RETURN
  mirror=$(debian_mirror)
  $SUDO debootstrap --variant=minbase "$release" "$root" "$mirror" >"$root.log" 2>&1 \
    || { tail -n 20 "$root.log" >&2; die "debootstrap $release from $mirror failed (log above)"; }
  # A smaller image and faster builds: no docs, no apt caches kept in layers.
  $SUDO rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/* "$root".log
  $SUDO tar -C "$root" -c . | docker import -c 'CMD ["/bin/bash"]' - "$image" >/dev/null
  say "base image $image imported"
}

ensure_base_image() {
  docker image inspect "$BASE_IMAGE" >/dev/null 2>&1 && return 0
  docker image inspect "$LOCAL_BASE" >/dev/null 2>&1 && return 0
  say "pulling $BASE_IMAGE (timeout ${PULL_TIMEOUT_S}s)"
  if timeout "$PULL_TIMEOUT_S" docker pull -q "$BASE_IMAGE" >/dev/null 2>&1; then return 0; fi
  bootstrap_base bookworm "$LOCAL_BASE"
}

version_releases() {
  # The Debian releases the vendors' versions are built on (vendor.toml [versions.<label>] base = "<release>"):
  # only these are bootstrapped, each about 22-40 s (harness.images.release_bases says where a build looks).
  grep -hoE '^base *= *"[a-z][a-z0-9-]*"' "$PROJECT_DIR"/vendors/*/vendor.toml 2>/dev/null \
    | sed -E 's/.*"(.*)"/\1/' | sort -u
}

ensure_release_bases() {
  local release
  for release in $(version_releases); do
    docker image inspect "debian:$release-slim" >/dev/null 2>&1 && continue
    docker image inspect "overlay-interop/base:$release" >/dev/null 2>&1 && continue
    say "pulling debian:$release-slim (timeout ${PULL_TIMEOUT_S}s)"
    timeout "$PULL_TIMEOUT_S" docker pull -q "debian:$release-slim" >/dev/null 2>&1 && continue
    bootstrap_base "$release" "overlay-interop/base:$release"
  done
}

ensure_test_tools() {
  # The browser test launches /usr/bin/chromium; the tshark tests hold the transcripts against Wireshark's
  # dissectors. The checks keep a second run instant.
  local need=()
  [ -x /usr/bin/chromium ] || need+=(chromium)
  command -v tshark >/dev/null 2>&1 || need+=(tshark)
  [ ${#need[@]} -eq 0 ] || apt_install "${need[@]}"
}

ensure_engine
ensure_host_tools
ensure_base_image
ensure_release_bases
[ "$WITH_TEST_TOOLS" -eq 0 ] || ensure_test_tools
