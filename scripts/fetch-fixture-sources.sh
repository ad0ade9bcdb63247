#!/usr/bin/env bash
# Download what the real-runner fixtures are built from (test/fixtures/realrunner), into a cache
# that a second call reuses:
#   - the upstream trees of Debian's source packages python-django and sympy (`apt-get source`);
#   - binary packages installed into the fixture images, which have no network: the runners'
#     libraries and python3-mypy (its source tarball is not served, the binary ships mypy/test/).
# apt runs on a private state (its own sources.list with a deb-src line for the machine's mirror,
# its own lists and cache), so the machine's apt configuration is never touched.
set -euo pipefail

CACHE=${RFT_FIXTURE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/rft/fixtures}
MIRROR=${RFT_DEBIAN_MIRROR:-}
SUITE=${RFT_DEBIAN_SUITE:-bookworm}
SOURCES=(python-django sympy)
# Libraries the runners import (Django: asgiref, sqlparse, pytz; sympy: mpmath; mypy's own
# dependencies), pytest-xdist for mypy's `pytest -n0`, and `python` on PATH for the runners' shebangs.
DEBS=(python-is-python3 python3-asgiref python3-sqlparse python3-tz tzdata python3-mpmath
      python3-mypy python3-mypy-extensions python3-psutil python3-pytest-xdist python3-execnet)

log() { echo "[fetch-fixture-sources] $*" >&2; }
die() { echo "[fetch-fixture-sources] ERROR: $*" >&2; exit 1; }

if [ -f "$CACHE/.complete" ]; then
  log "cached in $CACHE"
  echo "$CACHE"
  exit 0
fi

if [ -z "$MIRROR" ]; then
  # The machine's own Debian mirror (deb822 or one-line format), else deb.debian.org.
  MIRROR=$(sed -n 's/^URIs: *\(http[^ ]*debian\)\/\?$/\1/p' /etc/apt/sources.list.d/*.sources 2>/dev/null | head -n1 || true)
  [ -n "$MIRROR" ] || MIRROR=$(sed -n 's/^deb \+\(http[^ ]*debian\)\/\? .*/\1/p' /etc/apt/sources.list 2>/dev/null | head -n1 || true)
  [ -n "$MIRROR" ] || MIRROR=http://deb.debian.org/debian
fi

apt_dir="$CACHE/apt"
mkdir -p "$apt_dir/state/lists/partial" "$apt_dir/cache/archives/partial" "$CACHE/src" "$CACHE/debs"
printf 'deb %s %s main\ndeb-src %s %s main\n' "$MIRROR" "$SUITE" "$MIRROR" "$SUITE" >"$apt_dir/sources.list"
APT=(-o "Dir::Etc::SourceList=$apt_dir/sources.list" -o Dir::Etc::SourceParts=/dev/null
     -o "Dir::State=$apt_dir/state" -o "Dir::Cache=$apt_dir/cache" -o Dir::State::status=/dev/null
     -o Debug::NoLocking=1 -o APT::Sandbox::User=root -o Acquire::Retries=3)

log "apt-get update (private state in $apt_dir, mirror $MIRROR)"
apt-get "${APT[@]}" -qq update || die "apt-get update failed"
log "apt-get source ${SOURCES[*]}"
(cd "$CACHE/src" && apt-get "${APT[@]}" -qq source --download-only "${SOURCES[@]}") || die "apt-get source failed"
log "apt-get download ${DEBS[*]}"
(cd "$CACHE/debs" && apt-get "${APT[@]}" -qq download "${DEBS[@]}") || die "apt-get download failed"
rm -rf "$apt_dir/state/lists" "$apt_dir/cache"
touch "$CACHE/.complete"
log "done: $(du -sh "$CACHE" | cut -f1) in $CACHE"
echo "$CACHE"
