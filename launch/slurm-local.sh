#!/usr/bin/env bash
# A real single-node Slurm on this machine, for tests and for trying launch/longvq.sbatch.
#
#   launch/slurm-local.sh start  [DIR]   install if needed, write DIR/etc/slurm.conf, start the daemons
#   launch/slurm-local.sh stop   [DIR]   cancel the jobs, stop the daemons (by their recorded PIDs)
#   launch/slurm-local.sh status [DIR]   daemons alive? sinfo + squeue
#   launch/slurm-local.sh env    [DIR]   prints `export SLURM_CONF=...` (eval it to use sbatch & co.)
#
# DIR (default $LONGVQ_SLURM_DIR or /tmp/longvq-slurm) holds everything: config, state, spool, logs,
# PID files and a private munged (its own socket), so nothing system-wide is started or changed
# apart from installing the Debian packages (slurm-wlm munge) and creating /etc/munge/munge.key if
# it is missing. The daemons run in the foreground (`slurmctld -D`, `slurmd -D`, `munged -F`) in
# their own sessions, outside systemd; their PIDs go to DIR/run/*.pid and `stop` kills exactly
# those PIDs, never processes found by name. Ports: the first free pair from 6817 (or
# $LONGVQ_SLURM_PORT), so two instances with different DIRs can coexist.
#
# The node is this host (`hostname -s`, address 127.0.0.1) with the CPUs and memory slurmd detects,
# one partition `debug` (default), ProctrackType=proctrack/linuxproc, TaskPlugin=task/none,
# SelectType=select/cons_tres (CR_Core), MpiDefault=none (LongVQ jobs say `srun --mpi=pmix`),
# JobRequeue=1, SlurmUser=root, KillWait=30 (Slurm's default: the seconds the ranks get between TERM
# and KILL to finish a step and write their stop checkpoint; docs/slurm.md "Stop signals"). No
# accounting database: finished jobs stay visible to `scontrol show job` for MinJobAge (10 min) and
# every ending (also each requeue) is appended to DIR/log/jobcomp.log.
#
# Exit codes: 0 ok; 1 failure (the reason and the daemon logs' tail are printed);
# 77 Slurm cannot run here at all (not root: munged/slurmd need root, and nothing can be installed).
set -u

cmd=${1:-}
DIR=${2:-${LONGVQ_SLURM_DIR:-/tmp/longvq-slurm}}
case "$DIR" in /*) ;; *) DIR="$PWD/$DIR" ;; esac
CONF="$DIR/etc/slurm.conf"
RUN="$DIR/run"
LOG="$DIR/log"
MUNGE_DIR="$DIR/munge"
MUNGE_SOCKET="$MUNGE_DIR/munge.socket"
START_TIMEOUT=${LONGVQ_SLURM_START_TIMEOUT:-90}

say() { echo "slurm-local: $*"; }
die() { echo "slurm-local: error: $*" >&2; exit 1; }

usage() {
  sed -n '2,8p' "$0" | sed 's/^# \{0,1\}//'
  exit 2
}

# PID recorded in $RUN/<name>.pid, if that process is still alive and still that daemon (a PID
# reused by another program after a reboot is never signalled).
alive_pid() {
  local f="$RUN/$1.pid" pid
  [ -f "$f" ] || return 1
  pid=$(cat "$f" 2>/dev/null) || return 1
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  kill -0 "$pid" 2>/dev/null || return 1
  [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "$1" ] || return 1
  echo "$pid"
}

show_logs() {
  local f
  for f in "$LOG/munged.log" "$LOG/slurmctld.log" "$LOG/slurmd.log"; do
    [ -f "$f" ] || continue
    echo "---- tail of $f" >&2
    tail -n 15 "$f" >&2
  done
}

# Installs slurm-wlm and munge when missing (as root); 77 when that is impossible.
ensure_installed() {
  local missing=() p
  for p in slurm-wlm munge; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if [ "$(id -u)" -ne 0 ]; then
    if [ ${#missing[@]} -gt 0 ]; then
      echo "slurm-local: cannot run Slurm here: not root and ${missing[*]} not installed" >&2
    else
      echo "slurm-local: cannot run Slurm here: munged (as user munge) and slurmd need root" >&2
    fi
    exit 77
  fi
  if [ ${#missing[@]} -gt 0 ]; then
    say "installing ${missing[*]} (apt-get)"
    apt-get update -q >/dev/null || die "apt-get update failed"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" \
      > "${TMPDIR:-/tmp}/slurm-local-apt.log" 2>&1 ||
      { tail -n 20 "${TMPDIR:-/tmp}/slurm-local-apt.log" >&2; die "apt-get install ${missing[*]} failed"; }
  fi
  for p in slurmctld slurmd munged sinfo sbatch srun scontrol; do
    command -v "$p" >/dev/null || die "$p not found after installing slurm-wlm munge"
  done
  # The shared munge key (Debian's postinst normally creates it).
  if [ ! -s /etc/munge/munge.key ]; then
    say "creating /etc/munge/munge.key"
    install -d -o munge -g munge -m 0700 /etc/munge
    ( umask 077; dd if=/dev/urandom of=/etc/munge/munge.key bs=1 count=1024 status=none ) ||
      die "cannot create /etc/munge/munge.key"
    chown munge:munge /etc/munge/munge.key && chmod 0400 /etc/munge/munge.key
  fi
}

port_free() { ! ss -Htln "sport = :$1" 2>/dev/null | grep -q .; }

pick_ports() {
  local p=${LONGVQ_SLURM_PORT:-6817}
  while [ "$p" -lt 7817 ]; do
    if port_free "$p" && port_free $((p + 1)); then
      CTLD_PORT=$p; SLURMD_PORT=$((p + 1)); return 0
    fi
    p=$((p + 2))
  done
  die "no free port pair found in 6817..7817"
}

write_conf() {
  local node cpus sockets cores threads mem hw
  node=$(hostname -s)
  # slurmd -C prints the hardware as slurmd sees it; the config must not claim more.
  hw=$(slurmd -C 2>/dev/null | head -n 1)
  cpus=$(sed -n 's/.* CPUs=\([0-9]*\).*/\1/p' <<<"$hw"); cpus=${cpus:-$(nproc)}
  sockets=$(sed -n 's/.* SocketsPerBoard=\([0-9]*\).*/\1/p' <<<"$hw")
  cores=$(sed -n 's/.* CoresPerSocket=\([0-9]*\).*/\1/p' <<<"$hw")
  threads=$(sed -n 's/.* ThreadsPerCore=\([0-9]*\).*/\1/p' <<<"$hw")
  local topo=""
  [ -n "$sockets" ] && [ -n "$cores" ] && [ -n "$threads" ] &&
    topo=" Sockets=$sockets CoresPerSocket=$cores ThreadsPerCore=$threads"
  # Memory: 90% of what free reports, so a fluctuation never drains the node as "low memory".
  mem=$(free -m | awk '/^Mem:/ { printf "%d", $2 * 0.9 }')
  cat > "$CONF" <<EOF
# Written by launch/slurm-local.sh: a one-node Slurm for tests (see that script).
ClusterName=longvq$CTLD_PORT
SlurmctldHost=$node(127.0.0.1)
SlurmctldPort=$CTLD_PORT
SlurmdPort=$SLURMD_PORT
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$MUNGE_SOCKET
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/spool
SlurmctldPidFile=$RUN/slurmctld.daemon.pid
SlurmdPidFile=$RUN/slurmd.daemon.pid
SlurmctldLogFile=$LOG/slurmctld.log
SlurmdLogFile=$LOG/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/backfill
MpiDefault=none
SwitchType=switch/none
JobRequeue=1
ReturnToService=2
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/filetxt
JobCompLoc=$LOG/jobcomp.log
MinJobAge=600
KillWait=30
InactiveLimit=0
SlurmctldTimeout=60
SlurmdTimeout=60
MessageTimeout=20
PlugStackConfig=$DIR/etc/plugstack.conf
NodeName=$node NodeAddr=127.0.0.1 NodeHostname=$node CPUs=$cpus$topo RealMemory=$mem State=UNKNOWN
PartitionName=debug Nodes=$node Default=YES MaxTime=INFINITE State=UP OverSubscribe=NO
EOF
  : > "$DIR/etc/plugstack.conf"
}

start_munged() {
  if alive_pid munged >/dev/null; then return 0; fi
  install -d -o munge -g munge -m 0755 "$MUNGE_DIR"   # munged: the socket dir must be 0755
  rm -f "$MUNGE_SOCKET" "$MUNGE_SOCKET.lock"
  local as_munge
  if command -v setpriv >/dev/null; then
    as_munge=(setpriv --reuid=munge --regid=munge --init-groups)   # execs: $! is munged itself
  else
    as_munge=(runuser -u munge --)
  fi
  setsid "${as_munge[@]}" munged -F --socket="$MUNGE_SOCKET" --pid-file="$MUNGE_DIR/munged.pid" \
    --log-file="$MUNGE_DIR/munged.log" --seed-file="$MUNGE_DIR/munged.seed" \
    > "$LOG/munged.log" 2>&1 < /dev/null &
  echo $! > "$RUN/munged.pid"
  wait_exec munged $!
  for _ in $(seq 1 100); do
    if [ -S "$MUNGE_SOCKET" ] && munge -n --socket="$MUNGE_SOCKET" 2>/dev/null |
         unmunge --socket="$MUNGE_SOCKET" >/dev/null 2>&1; then
      # With runuser, $! was runuser: record munged's own PID instead.
      alive_pid munged >/dev/null || cp "$MUNGE_DIR/munged.pid" "$RUN/munged.pid" 2>/dev/null
      alive_pid munged >/dev/null && return 0
      break
    fi
    sleep 0.1
  done
  cat "$MUNGE_DIR/munged.log" >> "$LOG/munged.log" 2>/dev/null
  show_logs
  stop_pid munged 5
  die "munged did not start (socket $MUNGE_SOCKET)"
}

# After `setsid ... &` the child is setsid (then setpriv) for a moment before it execs the daemon.
wait_exec() { # name pid
  for _ in $(seq 1 100); do
    [ "$(cat "/proc/$2/comm" 2>/dev/null)" = "$1" ] && return 0
    kill -0 "$2" 2>/dev/null || return 1
    sleep 0.05
  done
  return 1
}

start_daemon() { # name command...
  local name=$1; shift
  if alive_pid "$name" >/dev/null; then return 0; fi
  setsid "$@" > "$LOG/$name.out" 2>&1 < /dev/null &
  echo $! > "$RUN/$name.pid"
  wait_exec "$name" $!
}

node_state() { sinfo -h -N -o '%T' 2>/dev/null | head -n 1; }

do_start() {
  ensure_installed
  install -d -m 0755 "$DIR" "$DIR/etc" "$RUN" "$LOG" "$DIR/state" "$DIR/spool"
  if alive_pid slurmctld >/dev/null && alive_pid slurmd >/dev/null && [ -f "$CONF" ]; then
    say "already running in $DIR"
  else
    [ -f "$CONF" ] && alive_pid slurmctld >/dev/null || { pick_ports; write_conf; }
    start_munged
    # -i: ignore state left by an earlier instance in this DIR (no stale jobs after a crash).
    start_daemon slurmctld slurmctld -D -i -f "$CONF"
    start_daemon slurmd slurmd -D -f "$CONF" -N "$(hostname -s)"
  fi
  export SLURM_CONF="$CONF"
  local t0=$SECONDS st=""
  while [ $((SECONDS - t0)) -lt "$START_TIMEOUT" ]; do
    alive_pid slurmctld >/dev/null || { show_logs; stop_daemons; die "slurmctld exited (log: $LOG/slurmctld.log)"; }
    alive_pid slurmd >/dev/null || { show_logs; stop_daemons; die "slurmd exited (log: $LOG/slurmd.log)"; }
    st=$(node_state)
    case "$st" in
      idle*|mixed*|allocated*) break ;;
      down*|drain*|fail*|inval*)
        # A node that registers after slurmctld restarted can be DOWN "Not responding": resume it.
        scontrol update nodename="$(hostname -s)" state=resume >/dev/null 2>&1 ;;
    esac
    sleep 0.5
  done
  case "$st" in
    idle*|mixed*|allocated*) ;;
    *) show_logs; sinfo -N -l >&2 2>&1; stop_daemons
       die "the node did not become idle within ${START_TIMEOUT}s (state '$st')" ;;
  esac
  say "running: $(sinfo -h -N -o '%N %T cpus=%c mem=%mMB') ($((SECONDS - t0))s to idle)"
  say "use it with:  export SLURM_CONF=$CONF"
}

stop_pid() { # name timeout_s
  local pid
  pid=$(alive_pid "$1") || { rm -f "$RUN/$1.pid"; return 0; }
  kill -TERM "$pid" 2>/dev/null
  for _ in $(seq 1 $(($2 * 10))); do
    kill -0 "$pid" 2>/dev/null || { rm -f "$RUN/$1.pid"; return 0; }
    sleep 0.1
  done
  say "$1 (pid $pid) ignored SIGTERM for $2 s: SIGKILL"
  kill -KILL "$pid" 2>/dev/null
  rm -f "$RUN/$1.pid"
}

stop_daemons() {
  stop_pid slurmd 20
  stop_pid slurmctld 20
  stop_pid munged 10
}

do_stop() {
  [ -d "$DIR" ] || { say "nothing in $DIR"; return 0; }
  export SLURM_CONF="$CONF"
  if alive_pid slurmctld >/dev/null && alive_pid slurmd >/dev/null; then
    # Cancel every job of this private cluster and let their steps end before slurmd goes.
    local jobs
    jobs=$(squeue -h -o '%i' 2>/dev/null | tr '\n' ' ')
    if [ -n "${jobs// }" ]; then
      say "cancelling jobs: $jobs"
      # shellcheck disable=SC2086
      scancel $jobs 2>/dev/null
      for _ in $(seq 1 120); do
        [ -z "$(squeue -h -o '%i' 2>/dev/null)" ] && break
        sleep 0.5
      done
    fi
  fi
  stop_daemons
  say "stopped ($DIR)"
}

do_status() {
  local n rc=0 pid
  for n in munged slurmctld slurmd; do
    if pid=$(alive_pid "$n"); then say "$n running (pid $pid)"; else say "$n not running"; rc=1; fi
  done
  if [ "$rc" -eq 0 ]; then
    export SLURM_CONF="$CONF"
    sinfo -N -l
    squeue
  fi
  return $rc
}

case "$cmd" in
  start) do_start ;;
  stop) do_stop ;;
  status) do_status ;;
  env) echo "export SLURM_CONF=$CONF" ;;
  *) usage ;;
esac
