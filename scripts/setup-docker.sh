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

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

if ! command -v dockerd >/dev/null 2>&1; then
  log "installing Debian's docker.io"
  as_root apt-get update -qq || die "apt-get update failed"
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq docker.io >/dev/null \
    || die "apt-get install docker.io failed"
fi

# A daemon killed earlier leaves its pid file behind, and the next start refuses
# with "pid file found": drop a pid file whose process is gone.
for pidfile in /var/run/docker.pid /run/docker/containerd/containerd.pid; do
  if [ -f "$pidfile" ]; then
    pid=$(cat "$pidfile" 2>/dev/null || true)
    if [ -z "$pid" ] || ! kill -0 "$pid" 2>/dev/null; then
      log "removing stale pid file $pidfile (pid ${pid:-none} is gone)"
      as_root rm -f "$pidfile"
    fi
  fi
done

logfile=/var/log/rft-dockerd.log
log "starting dockerd (no bridge, no iptables); log: $logfile"
as_root bash -c "nohup dockerd --bridge=none --iptables=false --ip-masq=false >>$logfile 2>&1 &"

for _ in $(seq 1 60); do
  if docker info >/dev/null 2>&1; then
    log "engine is up: $(docker version --format '{{.Server.Version}}' 2>/dev/null)"
    exit 0
  fi
  sleep 1
done
tail -n 20 "$logfile" >&2 || true
die "dockerd did not answer within 60 s; see $logfile above"
