#!/usr/bin/env bash
# Build rft-base:bookworm (python3, pytest, git, patch) from debootstrap when it is missing.
# No registry is reachable here, so the base is imported from a root filesystem tarball and
# cached in the engine: a second call is a no-op.
set -euo pipefail

IMAGE=${RFT_BASE_IMAGE:-rft-base:bookworm}
log() { echo "[build-base-image] $*" >&2; }
die() { echo "[build-base-image] ERROR: $*" >&2; exit 1; }

docker info >/dev/null 2>&1 || die "no Docker engine answers; run scripts/setup-docker.sh first"

if docker image inspect "$IMAGE" >/dev/null 2>&1; then
  log "$IMAGE already present; nothing to do"
  exit 0
fi

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

if ! command -v debootstrap >/dev/null 2>&1; then
  log "installing debootstrap"
  as_root apt-get update -qq || die "apt-get update failed"
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq debootstrap >/dev/null \
    || die "apt-get install debootstrap failed"
fi

root=$(mktemp -d /tmp/rft-rootfs.XXXXXX)
trap 'as_root rm -rf "$root"' EXIT
log "debootstrap bookworm into $root (a few minutes)"
as_root debootstrap --variant=minbase --include=python3,python3-pytest,git,patch \
  bookworm "$root" >/tmp/rft-debootstrap.log 2>&1 \
  || { tail -n 20 /tmp/rft-debootstrap.log >&2; die "debootstrap failed (log: /tmp/rft-debootstrap.log)"; }
as_root rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*

log "importing as $IMAGE"
as_root tar -C "$root" -c . | docker import \
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change 'ENV LANG=C.UTF-8' \
  --change 'CMD ["/bin/bash"]' - "$IMAGE" >/dev/null || die "docker import failed"
log "built $IMAGE"
