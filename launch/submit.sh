#!/usr/bin/env bash
# Submits a LongVQ training job (launch/longvq.sbatch) to Slurm; sweeps become job arrays.
#
#   launch/submit.sh [--sbatch-option=value ...] CONFIG [key=value ...] [--sweep key=v1,v2,... ...]
#   launch/submit.sh --dry-run ...        print the sbatch command instead of submitting
#
# Examples:
#   launch/submit.sh configs/listops.yaml train.steps=20000
#   launch/submit.sh --nodes=4 --ntasks-per-node=8 --cpus-per-task=4 --time=24:00:00 configs/listops.yaml
#   launch/submit.sh configs/listops.yaml --sweep train.lr=1e-3,3e-3 --sweep run.seed=1,2   # 4 array tasks
#
# sbatch options come first, each as one `--name=value` word (or `--flag`); `--` may separate them
# from CONFIG. The config and overrides are checked here before anything is submitted (exit 2 with
# the trainer's message). Each sweep combination trains in its own directory
# <run.dir>/<key>-<value>_... (see launch/longvq.sbatch); Slurm's output goes to
# $LONGVQ_LOG_DIR (default slurm-logs/) as <job name>-<job id>.out, or -<array id>_<task>.out.
# Prints the job id. LONGVQ (the binary) defaults to this checkout's build/longvq.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SBATCH_SCRIPT="$HERE/longvq.sbatch"

die() { echo "submit.sh: error: $*" >&2; exit 2; }

dry=0
opts=()
while [ $# -gt 0 ]; do
  case "$1" in
    --dry-run) dry=1; shift ;;
    --) shift; break ;;
    -h|--help) sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    -*) opts+=("$1"); shift ;;
    *) break ;;
  esac
done
[ $# -ge 1 ] || die "usage: launch/submit.sh [--sbatch-option=value ...] CONFIG [key=value ...] [--sweep key=v1,v2,...]"
config=$1; shift
[ -r "$config" ] || die "config '$config' not found"
args=() overrides=() sweep_first=() n=1 sweeps=0
while [ $# -gt 0 ]; do
  case "$1" in
    --sweep|--sweep=*)
      if [ "$1" = --sweep ]; then [ $# -ge 2 ] || die "--sweep needs key=v1,v2,..."; spec=$2; shift 2
      else spec=${1#--sweep=}; shift; fi
      [[ "$spec" == ?*=?* ]] || die "--sweep '$spec': expected key=v1,v2,..."
      IFS=, read -r -a vals <<<"${spec#*=}"
      for v in "${vals[@]}"; do [ -n "$v" ] || die "--sweep '$spec': an empty value"; done
      n=$((n * ${#vals[@]})); sweeps=$((sweeps + 1))
      sweep_first+=("${spec%%=*}=${vals[0]}")   # the first combination, for the check below
      args+=(--sweep "$spec") ;;
    *=*) overrides+=("$1"); args+=("$1"); shift ;;
    *) die "argument '$1': expected key=value or --sweep key=v1,v2,..." ;;
  esac
done

if [ -z "${LONGVQ:-}" ]; then
  if [ -x "$HERE/../build/longvq" ]; then LONGVQ=$(cd "$HERE/../build" && pwd)/longvq
  elif command -v longvq >/dev/null 2>&1; then LONGVQ=$(command -v longvq)
  else die "no longvq binary: build it (launch/build.sh) or set LONGVQ=/path/to/longvq"; fi
fi
export LONGVQ
[ -x "$LONGVQ" ] || die "LONGVQ='$LONGVQ' is not executable"

# Check the config (and the first sweep combination) now rather than in the queue.
if [ "$(id -u)" -eq 0 ]; then export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1; fi
if ! cfg=$("$LONGVQ" train "$config" "${overrides[@]}" "${sweep_first[@]}" --print-config 2>&1); then
  printf '%s\n' "$cfg" >&2
  die "the config does not load: $config ${overrides[*]} ${sweep_first[*]} (nothing submitted)"
fi
run_dir=$(awk '/^[^ #]/ { sec = $1 } sec == "run:" && $1 == "dir:" { sub(/^[ \t]*dir:[ \t]*/, ""); gsub(/^"|"$/, ""); print; exit }' <<<"$cfg")

logdir=${LONGVQ_LOG_DIR:-slurm-logs}
name=$(basename "$config"); name="longvq-${name%.*}"
have() { local o; for o in "${opts[@]+"${opts[@]}"}"; do case "$o" in "$1"|"$1"=*) return 0 ;; esac; done; return 1; }
have --job-name || have -J || opts+=(--job-name="$name")
if [ "$sweeps" -gt 0 ]; then
  have --array || have -a || opts+=(--array="0-$((n - 1))")
  have --output || have -o || opts+=(--output="$logdir/%x-%A_%a.out")
else
  have --output || have -o || opts+=(--output="$logdir/%x-%j.out")
fi
cmd=(sbatch --parsable "${opts[@]}" "$SBATCH_SCRIPT" "$config" "${args[@]+"${args[@]}"}")
if [ $dry = 1 ]; then
  printf 'LONGVQ=%q' "$LONGVQ"; printf ' %q' "${cmd[@]}"; echo
  exit 0
fi
mkdir -p "$logdir"
command -v sbatch >/dev/null || die "sbatch not found (no Slurm here; launch/slurm-local.sh starts a local one)"
jobid=$("${cmd[@]}")
jobid=${jobid%%;*}
if [ "$sweeps" -gt 0 ]; then
  echo "submit.sh: job array $jobid: $n task(s) (0-$((n - 1))), run dirs under $run_dir/, logs $logdir/${name}-${jobid}_<task>.out" >&2
else
  echo "submit.sh: job $jobid: run dir $run_dir, log $logdir/${name}-${jobid}.out" >&2
fi
echo "$jobid"
