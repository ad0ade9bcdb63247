#!/usr/bin/env bash
# Make a one-node Slurm cluster answer on this machine, idempotently: Debian's slurm-wlm and
# munge, a munge key, /etc/slurm/slurm.conf naming this host as controller and only node, then
# munged, slurmctld and slurmd. Finished jobs are kept in a job completion log
# (JobCompType=jobcomp/filetxt, /var/log/slurm/jobcomp.log): Slurm's own record of every ended
# task. `sacct` would need accounting storage (slurmdbd and a database), which this cluster has not.
# Proctrack linuxproc and TaskPlugin none: no cgroup set-up is needed inside a container.
# Running it again when the cluster answers does nothing; a daemon that died leaves a pid file,
# which is dropped before the daemon is started again.
set -euo pipefail

log() { echo "[setup-slurm] $*" >&2; }
die() { echo "[setup-slurm] ERROR: $*" >&2; exit 1; }
# shellcheck source=lib/daemons.sh
. "$(dirname "$0")/lib/daemons.sh"

CONF=/etc/slurm/slurm.conf
JOBCOMP_LOG=/var/log/slurm/jobcomp.log
NODE=$(hostname -s)

node_ready() {
  command -v sinfo >/dev/null 2>&1 || return 1
  local state
  state=$(sinfo -h -n "$NODE" -o '%t' 2>/dev/null | head -n 1) || return 1
  case "$state" in idle|mix|alloc|comp*) return 0 ;; *) return 1 ;; esac
}

# The cluster answers, its daemons are alive (the controller reports a killed slurmd as idle for
# minutes) and it is the one this script configures (same node name, jobcomp log).
if node_ready && running /run/munge/munged.pid munged && running /run/slurm/slurmctld.pid slurmctld \
  && running /run/slurm/slurmd.pid slurmd && grep -q "^NodeName=$NODE " "$CONF" 2>/dev/null && grep -q '^JobCompType=jobcomp/filetxt' "$CONF"; then
  log "cluster already answers (node $NODE); nothing to do"
  exit 0
fi

if ! command -v slurmctld >/dev/null 2>&1 || ! command -v slurmd >/dev/null 2>&1 || ! command -v munged >/dev/null 2>&1; then
  log "installing Debian's slurm-wlm and munge"
  apt_install_no_services slurm-wlm munge
fi

# --- munge ------------------------------------------------------------------------------------
KEY=/etc/munge/munge.key
if [ ! -s "$KEY" ]; then
  log "creating the munge key $KEY"
  as_root mkdir -p /etc/munge
  as_root dd if=/dev/urandom of="$KEY" bs=1024 count=1 status=none
fi
as_root chown munge:munge "$KEY"
as_root chmod 400 "$KEY"
as_root mkdir -p /run/munge /var/log/munge /var/lib/munge
as_root chown munge:munge /run/munge /var/log/munge /var/lib/munge

drop_stale_pidfile /run/munge/munged.pid munged
if ! running /run/munge/munged.pid munged; then
  as_root rm -f /run/munge/munge.socket.2 /run/munge/munge.socket.2.lock
  log "starting munged"
  as_root runuser -u munge -- munged --pid-file=/run/munge/munged.pid \
    || die "munged did not start; see /var/log/munge/munged.log"
fi
munge -n | unmunge >/dev/null 2>&1 || die "munge does not round-trip a credential (munge -n | unmunge)"

# --- slurm.conf ---------------------------------------------------------------------------------
cpus=$(nproc)
mem=$(awk '/MemTotal/ { printf "%d", $2 / 1024 * 0.9 }' /proc/meminfo)
as_root mkdir -p /etc/slurm /var/spool/slurmctld /var/spool/slurmd /var/log/slurm /run/slurm
as_root chown slurm:slurm /var/spool/slurmctld /var/log/slurm 2>/dev/null || true
want=$(cat <<EOF
# Written by rft's scripts/setup-slurm.sh: a one-node cluster on $NODE.
ClusterName=rft
SlurmctldHost=$NODE
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
ReturnToService=2
SlurmctldPidFile=/run/slurm/slurmctld.pid
SlurmdPidFile=/run/slurm/slurmd.pid
SlurmdSpoolDir=/var/spool/slurmd
StateSaveLocation=/var/spool/slurmctld
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/filetxt
JobCompLoc=$JOBCOMP_LOG
MinJobAge=300
MaxArraySize=10001
InactiveLimit=0
KillWait=10
Waittime=0
NodeName=$NODE CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=debug Nodes=$NODE Default=YES MaxTime=INFINITE State=UP OverSubscribe=FORCE:4
EOF
)
changed=0
if [ "$(cat "$CONF" 2>/dev/null || true)" != "$want" ]; then
  log "writing $CONF"
  printf '%s\n' "$want" | as_root tee "$CONF" >/dev/null
  changed=1
fi

# --- daemons ------------------------------------------------------------------------------------
drop_stale_pidfile /run/slurm/slurmctld.pid slurmctld
drop_stale_pidfile /run/slurm/slurmd.pid slurmd
if [ "$changed" = 1 ]; then
  # A changed config is read at start: stop daemons started with the old one.
  for d in slurmd slurmctld; do
    if running "/run/slurm/$d.pid" "$d"; then
      log "stopping $d (config changed)"
      as_root kill "$(cat "/run/slurm/$d.pid")" || true
      for _ in $(seq 1 20); do running "/run/slurm/$d.pid" "$d" || break; sleep 0.5; done
    fi
  done
fi
if ! running /run/slurm/slurmctld.pid slurmctld; then
  log "starting slurmctld; log: /var/log/slurm/slurmctld.log"
  as_root slurmctld || die "slurmctld did not start; see /var/log/slurm/slurmctld.log"
fi
if ! running /run/slurm/slurmd.pid slurmd; then
  log "starting slurmd; log: /var/log/slurm/slurmd.log"
  as_root slurmd || die "slurmd did not start; see /var/log/slurm/slurmd.log"
fi

for _ in $(seq 1 60); do
  if node_ready; then
    log "cluster is up: node $NODE, $(sinfo --version)"
    exit 0
  fi
  # A node that was down (killed daemon) comes back only when told.
  state=$(sinfo -h -n "$NODE" -o '%t' 2>/dev/null | head -n 1 || true)
  case "$state" in down*|drain*) as_root scontrol update NodeName="$NODE" State=RESUME >/dev/null 2>&1 || true ;; esac
  sleep 1
done
tail -n 10 /var/log/slurm/slurmctld.log /var/log/slurm/slurmd.log >&2 || true
die "node $NODE did not become idle within 60 s; see the logs above"
