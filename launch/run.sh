#!/usr/bin/env bash
# Runs a LongVQ job under mpirun or srun with the documented stop: TERM, INT (Ctrl-C) or HUP sent to
# this script make every rank checkpoint at the next step boundary and the job exit 3, as USR1 does.
#
#   launch/run.sh mpirun [mpirun options] longvq train CONFIG [key=value ...]
#   launch/run.sh srun --mpi=pmix [srun options] longvq train CONFIG [key=value ...]
#   e.g. launch/run.sh mpirun -np 4 ./build/longvq train configs/listops.yaml checkpoint.resume=auto
#
# Why not the launcher alone: both answer TERM by ending the ranks before a checkpoint can be written.
# Open MPI 4.1's mpirun treats TERM, INT and HUP as "abort": it sets its own exit code to 1 whatever
# the ranks return, sends them SIGTERM only after odls_base_sigkill_timeout seconds (1) and SIGKILL
# after as long again, and its event loop sleeps meanwhile (rank output stalls); TERM cannot be added
# to its forwarded signals (ess_base_forward_signals refuses it). srun answers TERM and HUP with
# SIGKILL to the tasks ("forcing job termination"), and a Ctrl-C only prints the tasks' state. Both
# forward USR1 to every rank on every node. So this script stands in front of the launcher and
# translates (docs/distributed.md "Stopping a run"):
#   TERM, HUP, the first INT  -> USR1 to the launcher -> each rank: stop at the next step boundary,
#                                checkpoint, exit 3; this script exits with the launcher's code (3).
#                                Repeats wait for that checkpoint (a scheduler may signal twice).
#   a second INT (Ctrl-C)     -> TERM to the launcher: its abort (mpirun: the ranks get TERM, then
#                                KILL; srun: KILL), no new checkpoint; this script exits 130.
#   USR1                      -> passed on as it is.
# The launcher runs in its own process group (job control, `set -m`), so a Ctrl-C in the terminal
# reaches this script only, never the launcher's own abort. Signal this script, not the launcher:
# `kill -TERM <its pid>` (printed at the start, with the launcher's). The launcher's stdin is
# /dev/null (the trainer reads none). Under Slurm, scancel and the time limit signal every process
# of the job step: use launch/longvq.sbatch, which does the same translation for srun (docs/slurm.md).
#
# Exit codes: the launcher's (0 finished, 3 checkpointed on a stop signal, 2 bad input, 1 failure,
# 128+N a rank died of signal N; docs/slurm.md "Exit codes"); 130 after a second Ctrl-C.
# Environment: launch/env.sh is sourced (the MPI settings of this kind of machine).
set -u
set -m # background jobs get their own process group: a terminal's Ctrl-C reaches only this script
[ $# -ge 2 ] || { sed -n '2,7p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }
. "$(dirname "$0")/env.sh"

log() { printf 'launch/run.sh: %s\n' "$*" >&2; }
LAUNCHER=$(basename "$1")
MP="" STOPPING="" INTS=0 FORCED=0
on_signal() { # NAME
  [ -n "$MP" ] || { STOPPING=${STOPPING:-$1}; return; } # before the launch: remembered below
  if [ "$1" = INT ]; then INTS=$((INTS + 1)); fi
  if [ "$1" = INT ] && [ $INTS -ge 2 ]; then
    FORCED=1
    log "second SIGINT: stopping at once (the ${LAUNCHER}'s abort, no new checkpoint)"
    kill -TERM "$MP" 2>/dev/null
    return
  fi
  if [ -n "$STOPPING" ] && [ "$1" != USR1 ]; then
    log "SIG$1: the ranks are already checkpointing on SIG$STOPPING; waiting (Ctrl-C again to stop at once)"
    return
  fi
  STOPPING=${STOPPING:-$1}
  log "got SIG$1: asking the ranks to checkpoint at the next step boundary and exit 3 (SIGUSR1 to $LAUNCHER $MP)"
  kill -USR1 "$MP" 2>/dev/null
}
trap 'on_signal TERM' TERM
trap 'on_signal INT' INT
trap 'on_signal HUP' HUP
trap 'on_signal USR1' USR1

if [ -n "$STOPPING" ]; then log "SIG$STOPPING before the launch: not starting"; exit 3; fi
"$@" < /dev/null &
MP=$!
log "pid $$, $LAUNCHER pid $MP: signal $$ (TERM/INT/HUP) to checkpoint and stop"
# `wait` returns early (128+signal) when a trapped signal arrives: wait again until the launcher ended.
while :; do
  wait "$MP"; rc=$?
  kill -0 "$MP" 2>/dev/null || break
done
# A signal at the moment the launcher ended: its status is still unread (a consumed one gives 127).
if [ "$rc" -gt 128 ]; then wait "$MP" 2>/dev/null; r=$?; [ "$r" -ne 127 ] && rc=$r; fi
[ $FORCED = 1 ] && exit 130
exit "$rc"
