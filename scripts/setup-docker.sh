#!/usr/bin/env bash
# Make a Docker engine answer on this machine, idempotently.
# No container started by rft ever gets a network: the daemon runs without a bridge or
# iptables rules, and every container is created with NetworkMode "none".
set -euo pipefail

log() { echo "[setup-docker] $*" >&2; }
die() { echo "[setup-docker] ERROR: $*" >&2; exit 1; }

if docker info >/dev/null 2>&1; then
  log "engine already answers; nothing to do"
  exit 0
fi

# shellcheck source=lib/daemons.sh
. "$(dirname "$0")/lib/daemons.sh"

if ! command -v dockerd >/dev/null 2>&1; then
  log "installing Debian's docker.io"
  as_root apt-get update -qq || die "apt-get update failed"
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq docker.io >/dev/null \
    || die "apt-get install docker.io failed"
fi

drop_stale_pidfile /var/run/docker.pid dockerd
drop_stale_pidfile /run/docker/containerd/containerd.pid containerd

logfile=/var/log/rft-dockerd.log
log "starting dockerd (no bridge, no iptables); log: $logfile"
daemon_pid=$(as_root bash -c "nohup dockerd --bridge=none --iptables=false --ip-masq=false >>$logfile 2>&1 & echo \$!")

for _ in $(seq 1 60); do
  if docker info >/dev/null 2>&1; then
    log "engine is up: $(docker version --format '{{.Server.Version}}' 2>/dev/null)"
    exit 0
  fi
  if ! kill -0 "$daemon_pid" 2>/dev/null; then
    tail -n 5 "$logfile" >&2 || true
    die "dockerd exited at start; see $logfile above"
  fi
  sleep 1
done
tail -n 20 "$logfile" >&2 || true
die "dockerd did not answer within 60 s; see $logfile above"
