#!/usr/bin/env bash
# Install Debian's chromium when it is missing, idempotently: the report's browser test drives it
# headless through playwright-core (which downloads no browser of its own). Present already: exits
# at once without touching apt.
set -euo pipefail

log() { echo "[setup-chromium] $*" >&2; }
die() { echo "[setup-chromium] ERROR: $*" >&2; exit 1; }

BIN=/usr/bin/chromium

if [ -x "$BIN" ]; then
  log "$BIN already installed; nothing to do"
  exit 0
fi

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

# Another process (a parallel setup, unattended-upgrades) may hold the dpkg lock for a while:
# apt waits for it instead of failing at once.
APT_WAIT=(-o DPkg::Lock::Timeout=300)

log "installing Debian's chromium (needed by test/report/browser.test.ts)"
as_root apt-get "${APT_WAIT[@]}" update -qq || die "apt-get update failed"
as_root env DEBIAN_FRONTEND=noninteractive NEEDRESTART_SUSPEND=1 \
  apt-get "${APT_WAIT[@]}" install -y -qq chromium >/dev/null \
  || die "apt-get install chromium failed"
[ -x "$BIN" ] || die "chromium was installed but $BIN is missing"
log "installed $("$BIN" --version 2>/dev/null || echo "$BIN")"
