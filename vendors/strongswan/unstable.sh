#!/bin/sh
# Adds Debian unstable as a package source pinned so that only the packages named in $1 (apt globs, separated by
# spaces) come from it, with what they need newer than the base release has (libc6: priority 100 lets apt take
# it from unstable only where a dependency asks for it); every other package stays the base release's. Nothing to do when $1 is empty.
# The same file is in every vendor folder that builds a version from unstable (a vendor folder is built alone).
set -eu
[ -n "${1:-}" ] || exit 0
mirror=$(awk '/^deb /{print $2; exit}' /etc/apt/sources.list 2>/dev/null || true)
[ -n "$mirror" ] || mirror=$(awk '/^URIs:/{print $2; exit}' /etc/apt/sources.list.d/*.sources 2>/dev/null || true)
echo "deb ${mirror:-http://deb.debian.org/debian} sid main" > /etc/apt/sources.list.d/unstable.list
cat > /etc/apt/preferences.d/unstable <<PIN
Package: *
Pin: release n=sid
Pin-Priority: 100

Package: $1
Pin: release n=sid
Pin-Priority: 990
PIN
