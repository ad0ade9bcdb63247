#!/usr/bin/env bash
# Install Debian's docker-registry (the distribution registry, /usr/bin/docker-registry) when it
# is missing, idempotently. Only the binary is wanted: the image-pull tests start their own
# throwaway registry on 127.0.0.1 with a temporary storage directory, so the package's own
# service (which would listen on :5000) is kept from starting.
set -euo pipefail

log() { echo "[setup-registry] $*" >&2; }
die() { echo "[setup-registry] ERROR: $*" >&2; exit 1; }

BIN=/usr/bin/docker-registry

if [ -x "$BIN" ]; then
  log "$BIN already installed; nothing to do"
  exit 0
fi

# shellcheck source=lib/daemons.sh
. "$(dirname "$0")/lib/daemons.sh"

log "installing Debian's docker-registry"
apt_install_no_services docker-registry
[ -x "$BIN" ] || die "docker-registry was installed but $BIN is missing"
log "installed $("$BIN" --version 2>/dev/null || echo "$BIN")"
