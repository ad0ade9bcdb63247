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

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

# policy-rc.d exit 101 = "action forbidden": invoke-rc.d then starts no service during the
# install. Only a policy file this script created is removed again, whatever happens.
policy=/usr/sbin/policy-rc.d
if [ ! -e "$policy" ]; then
  as_root sh -c "printf '#!/bin/sh\nexit 101\n' > $policy && chmod +x $policy"
  trap 'as_root rm -f "$policy"' EXIT
fi

log "installing Debian's docker-registry"
as_root apt-get update -qq || die "apt-get update failed"
as_root env DEBIAN_FRONTEND=noninteractive NEEDRESTART_SUSPEND=1 \
  apt-get install -y -qq --no-install-recommends docker-registry >/dev/null \
  || die "apt-get install docker-registry failed"
[ -x "$BIN" ] || die "docker-registry was installed but $BIN is missing"
log "installed $("$BIN" --version 2>/dev/null || echo "$BIN")"
