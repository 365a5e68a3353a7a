#!/usr/bin/env bash
# launch/scaling.sh with mpirun on this machine, on the tiny model (7 steps per point):
#   1. a weak sweep (4 sequences per rank): 1x1 2x1 1x2, an oversubscribed 2x2, and a 3x1 point
#      whose rank 2 crashes (SIGSEGV, through a wrapper binary): recorded as failed, the sweep goes on;
#   2. a strong sweep (global batch 8): 1x1 2x1 1x2, 3x1 (8 does not divide over 3 ranks: bad-input,
#      with the trainer's message), an oversubscribed 4x1;
#   for both, tests/scaling_check.py recomputes every csv figure from the points' metrics.jsonl and
#   checks the statuses, efficiency, oversubscribed marks, markdown rows and the PNG's panels;
#   3. the report alone over an existing sweep: same csv, --strict exits 4, a malformed metrics line
#      is reported with its file and line (no traceback);
#   4. bad arguments exit 2 with a message and run nothing; SIGTERM mid-sweep exits 130 with a report.
set -u
. "$SRC/tests/script_lib.sh"
rm -rf "$WORK" && mkdir -p "$WORK" && cd "$WORK" || exit 1
export MPIRUN LONGVQ_PYTHON=/usr/bin/python3
SCALING="$SRC/launch/scaling.sh"
REPORT="$SRC/launch/scaling_report.py"
CHECK=(/usr/bin/python3 "$SRC/tests/scaling_check.py")
DOCS="$SRC/docs/scaling.md"
tiny_listops lo.h5
TINY=(--config "$SRC/configs/tiny.yaml" data.train=lo.h5 data.val=lo.h5 data.seq_len=64 --steps 5 --warmup 2)
CORES=$(nproc)
over() { [ $(($1 * $2)) -gt "$CORES" ] && echo yes || echo no; } # ranks threads

# A binary whose rank 2 of 3 dies of SIGSEGV before MPI starts: a run that fails.
cat > crash3.sh <<EOF
#!/bin/bash
[ "\${OMPI_COMM_WORLD_SIZE:-1}" = 3 ] && [ "\${OMPI_COMM_WORLD_RANK:-0}" = 2 ] && kill -SEGV \$\$
exec "$LONGVQ" "\$@"
EOF
chmod +x crash3.sh

# 1. Weak scaling.
LONGVQ="$WORK/crash3.sh" "$SCALING" "${TINY[@]}" --mode weak --batch-per-rank 4 --points "1x1 2x1 1x2 2x2 3x1" \
  --out weak > weak.log 2>&1
rc=$?
check "weak sweep: exit 0 with a failed point ($(tail -n 1 weak.log))" '[ $rc -eq 0 ]'
check "weak sweep: the crashed point is reported and the sweep went on" \
  'grep -q "point 3x1: exit code" weak.log && grep -q "5 point(s): 4 ok, 1 failed" weak.log'
check "weak sweep: each point kept its log and its run dir" \
  'for p in 1x1 2x1 1x2 2x2 3x1; do [ -s weak/$p/train.log ] || [ -s weak/$p/train.err ] || exit 1; done'
check "weak sweep: batch 4 x ranks reached the trainer" \
  'grep -q "batch 4 = 1 ranks" weak/1x2/train.log && grep -q "batch 8 = 2 ranks" weak/2x2/train.log'
"${CHECK[@]}" weak "$DOCS" 1x1=ok 2x1=ok 1x2=ok 2x2=ok "3x1=failed:signal 11" > weak-check.log; r=$?
cat weak-check.log; fail=$((fail + r))
check "weak: 2x2 marked oversubscribed iff 4 > nproc ($CORES)" \
  'grep -q "^2x2,ok,weak,mpirun,1,2,2,2,4,$CORES,$(over 2 2)," weak/scaling.csv'

# 2. Strong scaling.
"$SCALING" "${TINY[@]}" --mode strong --global-batch 8 --points "1x1 2x1 1x2 3x1 4x1" --out strong > strong.log 2>&1
rc=$?
check "strong sweep: exit 0 ($(tail -n 1 strong.log))" '[ $rc -eq 0 ]'
"${CHECK[@]}" strong "$DOCS" 1x1=ok 2x1=ok 1x2=ok "3x1=bad-input:does not divide over 3 ranks" 4x1=ok \
  > strong-check.log; r=$?
cat strong-check.log; fail=$((fail + r))
check "strong: the md says 3x1 did not divide and 4x1 ran oversubscribed (for function, not speed)" \
  'grep -q "^| 3x1 | \*\*bad-input\*\* .*does not divide" strong/scaling.md &&
   { [ "$(over 4 1)" = no ] || grep -q "^| 4x1 | ok .*\*\*oversubscribed\*\* (4 on $CORES cores): function, not speed" strong/scaling.md; }'

# 3. The report on its own.
cp strong/scaling.csv strong.csv
/usr/bin/python3 "$REPORT" strong > report.log 2>&1; rc=$?
check "report alone over the sweep: exit 0, the same csv" '[ $rc -eq 0 ] && cmp -s strong.csv strong/scaling.csv'
/usr/bin/python3 "$REPORT" strong --strict > /dev/null 2>&1; rc=$?
check "report --strict with a bad point: exit 4" '[ $rc -eq 4 ]'
cp -r strong broken
sed -i '4s/.*/{"step": 4, "loss": 2.3, "tokens_per_s": 1e5, "step_s": /' broken/2x1/metrics.jsonl
sed -i '5s/"compute_s": [0-9.]*/"compute_s": "fast"/' broken/1x2/metrics.jsonl
/usr/bin/python3 "$REPORT" broken > broken.log 2>&1; rc=$?
check "malformed metrics: exit 0, no traceback" '[ $rc -eq 0 ] && ! grep -q Traceback broken.log'
check "malformed metrics: 2x1 failed, naming broken/2x1/metrics.jsonl:4" \
  'grep -q "^2x1,failed,.*broken/2x1/metrics.jsonl:4: malformed metrics line" broken/scaling.csv'
check "a non-numeric field: 1x2 failed, naming the line and field" \
  'grep -q "^1x2,failed,.*broken/1x2/metrics.jsonl:5: field .compute_s. is .fast." broken/scaling.csv'
# The fields the trainer is getting (tokens, ranks, threads, peak_rss_mib): used where present; a
# point whose logged threads are not its own is a mismatch, not a measurement of that point.
cp -r strong fields
/usr/bin/python3 - fields <<'PY'
import json, os, sys
for p, (ranks, threads) in {"1x1": (1, 1), "2x1": (2, 1), "1x2": (1, 1), "4x1": (4, 1)}.items():
    f = os.path.join(sys.argv[1], p, "metrics.jsonl")
    rows = [json.loads(l) for l in open(f)]
    for r in rows:
        if "tokens_per_s" in r:
            r.update(tokens=237 + r["step"] % 3, ranks=ranks, threads=threads, peak_rss_mib=40.0 + r["step"])
    open(f, "w").write("".join(json.dumps(r) + "\n" for r in rows))
PY
/usr/bin/python3 "$REPORT" fields > fields.log 2>&1; rc=$?
"${CHECK[@]}" fields "$DOCS" 1x1=ok 2x1=ok "1x2=mismatch:the trainer logged threads = [1], the point asked for 2" \
  "3x1=bad-input:does not divide" 4x1=ok > fields-check.log; r=$?
cat fields-check.log; fail=$((fail + r))
check "new metrics fields: exit 0, peak RSS = the largest timed step's (47.0 MiB), tokens per step from 'tokens'" \
  '[ $rc -eq 0 ] && grep -q "^1x1,ok,.*,47.0,[0-9.]*,0,," fields/scaling.csv && grep -q "^| 2x1 | ok .* 47.0 |" fields/scaling.md'
/usr/bin/python3 "$REPORT" nowhere > nowhere.log 2>&1; rc=$?
check "report over a directory without a sweep: exit 2, says so" '[ $rc -eq 2 ] && grep -q "not a sweep directory" nowhere.log'

# 4. Bad arguments: exit 2, a message, nothing run.
bad() { # name expected-text args...
  local name=$1 text=$2 out rc; shift 2
  out=$("$SCALING" "$@" 2>&1); rc=$?
  check "bad arguments, $name: exit 2, '$text'" '[ $rc -eq 2 ] && grep -q -- "$text" <<<"$out"'
}
bad "no mode" "--mode weak|strong is required" "${TINY[@]}" --points 1x1 --out b1
bad "weak without a per-rank batch" "needs --batch-per-rank" "${TINY[@]}" --mode weak --points 1x1 --out b2
bad "strong with a per-rank batch" "needs --global-batch" "${TINY[@]}" --mode strong --batch-per-rank 2 --points 1x1 --out b3
bad "malformed point" "point '2x': expected" "${TINY[@]}" --mode strong --global-batch 8 --points "1x1 2x" --out b4
bad "nodes with mpirun" "needs 2 nodes" "${TINY[@]}" --mode strong --global-batch 8 --points 2x1x1 --out b5
bad "unknown option" "unknown option '--fast'" "${TINY[@]}" --mode strong --global-batch 8 --points 1x1 --fast 1
bad "an override of a key the sweep sets" "train.steps is set by scaling.sh" "${TINY[@]}" --mode strong \
  --global-batch 8 --points 1x1 train.steps=3 --out b6
bad "an unknown config key" "model.colour" "${TINY[@]}" --mode strong --global-batch 8 --points 1x1 model.colour=1 --out b7
bad "an existing --out" "exists" "${TINY[@]}" --mode strong --global-batch 8 --points 1x1 --out strong
bad "a bad launcher" "expected mpirun or slurm" "${TINY[@]}" --mode strong --global-batch 8 --points 1x1 --launcher ssh
check "bad arguments ran nothing" '! ls -d b? 2>/dev/null'
check "--help: exit 0, the exit codes" '"$SCALING" --help | grep -q "^Exit codes: 0 the report was written"'

# SIGTERM while a point runs: the run is stopped, the report of the sweep so far is written, exit 130.
"$SCALING" "${TINY[@]}" --steps 100000 --mode strong --global-batch 8 --points "1x1 2x1" --out stopped > stopped.log 2>&1 &
pid=$!
for _ in $(seq 1 200); do grep -qs '"step": 3,' stopped/1x1/metrics.jsonl && break; sleep 0.1; done
kill -TERM "$pid"
wait "$pid"; rc=$?
check "SIGTERM mid-sweep: exit 130, report written, 1x1 and 2x1 not-run" \
  '[ $rc -eq 130 ] && grep -q "^1x1,not-run," stopped/scaling.csv && grep -q "^2x1,not-run,.*not started" stopped/scaling.csv'

echo "scaling: $fail failed"
exit $fail
