# Sourced by the script tests: the verdict helper, timing-free metric lines, a tiny data set.

fail=0
# check NAME EXPR: evaluates EXPR, prints ok/FAIL, counts failures in $fail.
check() { if eval "$2"; then echo "ok   $1"; else echo "FAIL $1"; fail=$((fail+1)); fi; }

# The metric lines of FILE without the wall-clock and memory fields (what must be identical between
# runs).
strip_timing() {
  sed -E 's/"(tokens_per_s|gflops|step_s|comm_s|data_s|compute_s|exposed_comm_s|optimizer_s|busbw_gbs|slowest_compute_s|eta_s|peak_rss_mib)": [0-9.e+-]+,? ?//g' "$1"
}

# The metric lines of FILE with a loss (training steps, evaluations), timing fields removed.
loss_lines() { strip_timing "$1" | grep '"loss"'; }

# tiny_listops OUT [N_TRAIN]: a small, fast ListOps set (lengths 20..60, depth 3, seed 7).
tiny_listops() {
  "$LONGVQ" data listops --out "$1" --train "${2:-96}" --val 16 --test 16 --min-len 20 --max-len 60 \
    --max-depth 3 --seed 7 >/dev/null 2>&1
}

# train_np NAME NP [key=value ...]: `longvq train $CFG` on NP ranks through $MPI (both set by the
# test) into run.dir=NAME, output in NAME.log; returns the job's exit code.
train_np() {
  local name=$1 np=$2; shift 2
  $MPI -np "$np" "$LONGVQ" train $CFG run.dir="$name" "$@" > "$name.log" 2>&1
}

# cmp_runs --steps N [--from S] [--tol T] REF RUN...: loss and grad_norm of every step of the RUN
# dirs against REF's, within the multi-rank tolerance (tests/cmp_runs.py).
cmp_runs() { /usr/bin/python3 "$SRC/tests/cmp_runs.py" "$@"; }

# resume_exact REF LABEL: exact resume of the job REF ran straight through ($CFG on 2 ranks via $MPI),
# into run.dir=sig: a stop signal on rank 1 at step 9 (test hook) ends it with exit 3 and the step-9
# checkpoint, checkpoint.resume=auto finishes it from there, and its parameters (bitwise) and metric
# lines (timing fields aside) equal REF's. Four checks, named after LABEL; logs sig1.log, sig2.log.
resume_exact() {
  local ref=$1 label=$2 rc
  LONGVQ_TEST_SIGNAL_AT=9:1 $MPI -x LONGVQ_TEST_SIGNAL_AT -np 2 "$LONGVQ" train $CFG run.dir=sig > sig1.log 2>&1; rc=$?
  check "$label: stopped by a signal on one rank at step 9 (exit 3, checkpointed, requeue)" \
    "[ $rc -eq 3 ] && grep -q 'stop requested by signal' sig1.log && [ -f sig/ckpt_00000009.h5 ]"
  $MPI -np 2 "$LONGVQ" train $CFG run.dir=sig checkpoint.resume=auto > sig2.log 2>&1; rc=$?
  check "$label: resume auto finishes" "[ $rc -eq 0 ] && grep -q 'resumed from .*ckpt_00000009' sig2.log"
  check "$label: resumed parameters bitwise identical (and f32 in the file)" "same_model $ref/model_final.h5 sig/model_final.h5"
  check "$label: resumed metric lines identical" \
    "diff <(loss_lines $ref/metrics.jsonl) <(loss_lines sig/metrics.jsonl) >/dev/null"
}

# Exit 0 when two model files hold the same tensors bitwise (every one float32, as model files are);
# prints the first that differs.
same_model() { /usr/bin/python3 - "$1" "$2" <<'PY'
import h5py, numpy as np, sys
a, b = h5py.File(sys.argv[1]), h5py.File(sys.argv[2])
names = []
a["model"].visit(lambda n: names.append(n) if isinstance(a["model"][n], h5py.Dataset) else None)
for n in names:
    x, y = a["model"][n][()], b["model"][n][()]
    if x.dtype != np.float32 or not np.array_equal(x.view(np.uint32), y.view(np.uint32)):
        print("differs or not f32:", n); sys.exit(1)
print(f"{len(names)} f32 tensors bitwise identical")
PY
}

# rank_pids MPIRUN_PID: the PIDs of the longvq ranks that this mpirun started (its children), so that
# a test signals exactly the processes it started, never processes found by a name pattern.
rank_pids() { pgrep -P "$1" -x longvq; }

# singleton_env: for tests that run single processes without mpirun (MPI singletons) from here on:
# no supporting daemon, no UCX; each process then starts in 0.09 s instead of 0.6 on this machine.
# Not for mpirun jobs (btl self only talks to itself).
singleton_env() { export OMPI_MCA_ess_singleton_isolated=1 OMPI_MCA_pml=ob1 OMPI_MCA_btl=self OMPI_MCA_osc=^ucx; }
