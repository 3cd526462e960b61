#!/usr/bin/env bash
# A real single-node SLURM cluster on loopback, for the cluster tests (tests/cluster/).
#
#   .ci/slurm_cluster.sh start    install Debian's slurm packages if missing, write slurm.conf,
#                                 start munged, slurmctld, slurmd; wait until the node is idle
#   .ci/slurm_cluster.sh stop     cancel remaining jobs, stop the daemons by their pid files,
#                                 remove the slurm.conf written by `start`
#   .ci/slurm_cluster.sh status   exit 0 if all three daemons run and the node is up
#
# Needs root and apt (Debian 12: slurm 22.05). No systemd: the daemons are started by hand.
# `start` and `stop` are idempotent: `start` on a running cluster only checks it.
#
# The cluster has no accounting database (no slurmdbd/MariaDB): job states come from slurmctld,
# which keeps finished jobs for MinJobAge=300 s, so Snakemake's slurm executor must use
# `--slurm-status-command squeue`. A durable record of every finished job is written by
# jobcomp/filetxt to $SLURM_CI_JOBCOMP (one line per job: JobId, Name, JobState, Tres, ...).
# Memory requests are enforced without cgroups: jobacct_gather/linux polls every second and
# OverMemoryKill kills a job that exceeds its --mem ("Exceeded job memory limit" in its log, state
# FAILED here; a site with cgroups reports OUT_OF_MEMORY). Either way Snakemake retries the job.
#
# Exit codes: 0 ok, 1 failure, 2 cannot run here (not root / no apt), 3 a foreign slurm.conf exists.
set -euo pipefail

CONF=/etc/slurm/slurm.conf
MARKER="# written by sicore .ci/slurm_cluster.sh"
LOGDIR=/var/log/slurm
SLURM_CI_JOBCOMP=${SLURM_CI_JOBCOMP:-$LOGDIR/jobcomp.log}
PARTITION=${SLURM_CI_PARTITION:-debug}
PACKAGES="munge slurmctld slurmd slurm-client"
PIDFILES="/run/slurmd.pid /run/slurmctld.pid /run/munge/munged.pid"

T0=$(date +%s)
say() { echo "[slurm_cluster +$(( $(date +%s) - T0 ))s] $*"; }
die() { local code=$1; shift; echo "slurm_cluster: $*" >&2; exit "$code"; }

alive() { [ -s "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

node_state() { timeout 10 sinfo -h -N -o %t 2>/dev/null | head -1 || true; }

status() {
  local ok=0 pf
  for pf in $PIDFILES; do
    if alive "$pf"; then echo "running  $(basename "$pf" .pid) (pid $(cat "$pf"))"
    else echo "stopped  $(basename "$pf" .pid)"; ok=1; fi
  done
  [ "$ok" = 0 ] || return 1
  local st; st=$(node_state)
  echo "node $(hostname -s): ${st:-unknown}"
  case "$st" in idle|mix|alloc|comp|idle~|mix~) return 0;; *) return 1;; esac
}

# SIGTERM the daemons of the given pid files, wait up to 10 s (then SIGKILL), remove the pid files
terminate() {
  local pf pid i pids=""
  for pf in "$@"; do
    if alive "$pf"; then pid=$(cat "$pf"); kill "$pid" 2>/dev/null || true; pids="$pids $pid:$pf"; fi
  done
  for i in $(seq 50); do
    local left=0
    for pid in $pids; do kill -0 "${pid%%:*}" 2>/dev/null && left=1; done
    [ "$left" = 0 ] && break
    sleep 0.2
  done
  for pid in $pids; do
    pf=${pid#*:}; pid=${pid%%:*}
    if kill -0 "$pid" 2>/dev/null; then say "$pf: pid $pid ignores SIGTERM, sending SIGKILL"; kill -9 "$pid" || true; fi
    say "stopped $(basename "$pf" .pid) (pid $pid)"
  done
  # stale pid files confuse the next start and the packages' prerm scripts
  rm -f "$@"
}

stop() {
  if alive /run/slurmctld.pid; then        # cancel leftovers so no slurmstepd outlives slurmd
    local ids; ids=$(timeout 10 squeue -h -t PENDING,RUNNING,CONFIGURING -o %i 2>/dev/null || true)
    [ -z "$ids" ] || { say "cancelling jobs: $(echo $ids)"; timeout 10 scancel $ids 2>/dev/null || true; sleep 1; }
  fi
  terminate /run/slurmd.pid /run/slurmctld.pid    # together, then munge which they talk to
  terminate /run/munge/munged.pid
  # Leave no slurm.conf behind: with one, every slurm client command waits ~10 s for the absent
  # slurmctld, and so does every `snakemake` start (the slurm executor plugin runs
  # `scontrol show config` when it is imported). `start` writes it again.
  if [ -f "$CONF" ] && grep -qF "$MARKER" "$CONF"; then rm -f "$CONF"; fi
}

install_packages() {
  local missing="" p
  for p in $PACKAGES; do
    dpkg-query -W -f '${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
  done
  [ -z "$missing" ] && { say "packages present"; return 0; }
  command -v apt-get >/dev/null || die 2 "packages missing ($missing) and no apt-get"
  say "installing$missing"
  local log=/tmp/slurm_cluster.apt.log
  # apt may be held by another process (e.g. another test installing git-annex): wait for the lock
  if ! { export DEBIAN_FRONTEND=noninteractive
         apt-get -o DPkg::Lock::Timeout=300 update -qq &&
         apt-get -o DPkg::Lock::Timeout=300 install -y -qq --no-install-recommends $missing; } >"$log" 2>&1; then
    tail -30 "$log" >&2; die 1 "apt-get failed (log: $log)"
  fi
}

write_conf() {
  local host cpus mem
  host=$(hostname -s)
  cpus=$(nproc)
  mem=$(( $(free -m | awk '/^Mem:/{print $2}') - 1024 ))   # > real memory: node drains ("Low RealMemory")
  [ "$mem" -ge 512 ] || mem=512
  install -d -o slurm -g slurm -m 0755 /var/spool/slurmctld "$LOGDIR"
  install -d -m 0755 /var/spool/slurmd
  touch "$SLURM_CI_JOBCOMP"; chown slurm:slurm "$SLURM_CI_JOBCOMP"
  cat > "$CONF.tmp" <<EOF
$MARKER; rewritten on every start
ClusterName=sicoreci
SlurmctldHost=${host}(127.0.0.1)
SlurmUser=slurm
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
MpiDefault=none
# no cgroups here: track processes through /proc, no task binding
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
# no accounting database; finished jobs are logged to a text file
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/filetxt
JobCompLoc=${SLURM_CI_JOBCOMP}
# enforce --mem without cgroups: poll every second, kill a job over its limit
JobAcctGatherType=jobacct_gather/linux
JobAcctGatherFrequency=task=1
JobAcctGatherParams=OverMemoryKill
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
# a job without --mem gets 1 GB per CPU, not the whole node
DefMemPerCPU=1000
ReturnToService=2
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
SlurmctldLogFile=${LOGDIR}/slurmctld.log
SlurmdLogFile=${LOGDIR}/slurmd.log
SlurmctldPort=6817
SlurmdPort=6818
KillWait=5
# finished jobs stay visible to squeue/scontrol for 5 min (the executor polls with squeue)
MinJobAge=300
NodeName=${host} NodeAddr=127.0.0.1 CPUs=${cpus} RealMemory=${mem} State=UNKNOWN
PartitionName=${PARTITION} Nodes=${host} Default=YES MaxTime=INFINITE State=UP
EOF
  mv "$CONF.tmp" "$CONF"; chmod 644 "$CONF"
}

start() {
  [ "$(id -u)" = 0 ] || die 2 "needs root (installs packages, starts daemons)"
  if [ -e "$CONF" ] && ! grep -qF "$MARKER" "$CONF"; then
    die 3 "$CONF exists and was not written by this script; refusing to replace a real site's configuration"
  fi
  if status >/dev/null 2>&1; then say "already running"; status; return 0; fi
  stop                       # leftovers of a half-started cluster
  install_packages
  write_conf

  # munge: key from the package's postinst (or made here), socket dir in /run
  if [ ! -s /etc/munge/munge.key ]; then
    mungekey -c -f -k /etc/munge/munge.key
    chown munge:munge /etc/munge/munge.key; chmod 400 /etc/munge/munge.key
  fi
  install -d -o munge -g munge -m 0755 /run/munge
  install -d -o munge -g munge -m 0700 /var/log/munge /var/lib/munge
  runuser -u munge -- /usr/sbin/munged            # daemonizes; pid file /run/munge/munged.pid
  munge -n | unmunge >/dev/null || die 1 "munge does not work"
  say "munged up"

  /usr/sbin/slurmctld || { tail -20 "$LOGDIR/slurmctld.log" >&2; die 1 "slurmctld did not start"; }
  local i
  for i in $(seq 60); do timeout 5 scontrol ping 2>/dev/null | grep -q UP && break; sleep 0.5; done
  /usr/sbin/slurmd || { tail -20 "$LOGDIR/slurmd.log" >&2; die 1 "slurmd did not start"; }
  for i in $(seq 120); do
    case "$(node_state)" in idle) break;; esac
    sleep 0.5
  done
  if [ "$(node_state)" != idle ]; then
    sinfo -N -l >&2 || true
    tail -20 "$LOGDIR/slurmctld.log" "$LOGDIR/slurmd.log" >&2 || true
    die 1 "node did not become idle"
  fi
  say "cluster up: partition $PARTITION, node $(hostname -s), $(sinfo -h -N -o '%c CPUs, %m MB')"
}

case "${1:-}" in
  start) start ;;
  stop) [ "$(id -u)" = 0 ] || die 2 "needs root"; stop ;;
  status) status ;;
  *) echo "usage: $0 start|stop|status" >&2; exit 64 ;;
esac
