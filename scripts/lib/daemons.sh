# daemons.sh — what the set-up scripts share: running as root, installing Debian packages without
# starting their services, and telling a live daemon from a pid file it left behind.
# Sourced, not run. The sourcing script defines log and die (messages carry its name).

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

# apt_install_no_services PACKAGE...: install with --no-install-recommends while policy-rc.d
# answers 101 ("action forbidden"), so invoke-rc.d starts no service during the install (the
# script starts what it needs itself). Only a policy file made here is removed again.
apt_install_no_services() {
  local policy=/usr/sbin/policy-rc.d made=0
  if [ ! -e "$policy" ]; then
    as_root sh -c "printf '#!/bin/sh\nexit 101\n' > $policy && chmod +x $policy"
    made=1
  fi
  local ok=0
  as_root apt-get update -qq || ok=1
  if [ "$ok" = 0 ]; then
    as_root env DEBIAN_FRONTEND=noninteractive NEEDRESTART_SUSPEND=1 \
      apt-get install -y -qq --no-install-recommends "$@" >/dev/null || ok=2
  fi
  [ "$made" = 0 ] || as_root rm -f "$policy"
  [ "$ok" != 1 ] || die "apt-get update failed"
  [ "$ok" != 2 ] || die "apt-get install $* failed"
}

# running PIDFILE NAME: the pid file names a live process called NAME (pids are recycled, so a
# live pid alone proves nothing).
running() {
  local pid
  pid=$(cat "$1" 2>/dev/null || true)
  [ -n "$pid" ] && [ "$(cat "/proc/$pid/comm" 2>/dev/null || true)" = "$2" ]
}

# drop_stale_pidfile PIDFILE NAME: a daemon killed earlier leaves its pid file behind, and the
# next start may refuse ("pid file found"): remove one that does not name a running NAME.
drop_stale_pidfile() {
  [ -f "$1" ] || return 0
  if ! running "$1" "$2"; then
    log "removing stale pid file $1 (pid $(cat "$1" 2>/dev/null || echo none) is not a running $2)"
    as_root rm -f "$1"
  fi
}
