#!/usr/bin/env bash
# launch/scaling.sh --launcher slurm on a private one-node Slurm (tests/slurm_lib.sh): a strong
# sweep of the tiny model as one exclusive job per point, through launch/submit.sh and
# launch/longvq.sbatch: 1x1x1 1x2x1 1x1x2; 1x3x1 (8 does not divide over 3 ranks: bad-input);
# 1x4x1 and 1x2x2 oversubscribed on the 2-CPU node (srun --overcommit); 2x1x1 (two nodes of a
# one-node cluster: the job would pend for ever, reason PartitionNodeLimit: cancelled, failed).
# tests/scaling_check.py recomputes the csv from the metrics. The jobs ran one at a time. Then a
# --no-wait sweep, collected by the report alone from the sbatch template's own record.
source "$(dirname "$0")/slurm_lib.sh"
SCALING="$SRC/launch/scaling.sh"
export LONGVQ_PYTHON=/usr/bin/python3
set -- $TINY
CFG=(--config "$1" "${@:2}" --steps 5 --warmup 2 --mode strong --global-batch 8 --launcher slurm)

"$SCALING" "${CFG[@]}" --points "1x1x1 1x2x1 1x1x2 1x3x1 1x4x1 1x2x2 2x1x1" --out sweep > sweep.log 2>&1
rc=$?
cat sweep.log
check "slurm sweep: exit 0 ($(elapsed) s)" '[ $rc -eq 0 ]'
check "cores per node: the node's CPUs from sinfo ($(sinfo -h -o %c))" \
  'grep -qx "cores_per_node=$(sinfo -h -o %c)" sweep/sweep.info'
/usr/bin/python3 "$SRC/tests/scaling_check.py" sweep "$SRC/docs/scaling.md" 1x1x1=ok 1x2x1=ok 1x1x2=ok \
  "1x3x1=bad-input:does not divide over 3 ranks" 1x4x1=ok 1x2x2=ok "2x1x1=failed:cannot start job" > check.log; r=$?
cat check.log; fail=$((fail + r))
check "each point's Slurm log is in its run dir; 4 and 2x2 ran as 4 and 2 ranks" \
  'for p in 1x1x1 1x2x1 1x1x2 1x3x1 1x4x1 1x2x2; do [ -s sweep/$p/slurm.out ] || exit 1; done &&
   grep -q "batch 8 = 4 ranks" sweep/1x4x1/slurm.out && grep -q "batch 8 = 2 ranks" sweep/1x2x2/slurm.out'
# Exclusive jobs: no two points ran at the same time (StartTime/EndTime have 1 s resolution).
spans=$(for p in 1x1x1 1x2x1 1x1x2 1x3x1 1x4x1 1x2x2; do
          id=$(sed -n 's/^job_id=//p' sweep/$p/point.info)
          echo "$(date -d "$(job_field "$id" StartTime)" +%s) $(date -d "$(job_field "$id" EndTime)" +%s)"
        done | sort -n)
check "the points' jobs ran one after another: $(tr '\n' ' ' <<<"$spans")" \
  '[ $(wc -l <<<"$spans") -eq 6 ] && awk "NR > 1 && \$1 < prev_end { exit 1 } { prev_end = \$2 }" <<<"$spans"'

# --no-wait: submitted and returned; the report alone reads the exit code from slurm-history.tsv.
"$SCALING" "${CFG[@]}" --points "1x2x1" --no-wait --out later > later.log 2>&1; rc=$?
id=$(sed -n 's/^job_id=//p' later/1x2x1/point.info)
check "--no-wait: exit 0 at once, job $id submitted" '[ $rc -eq 0 ] && [ -n "$id" ] && [ ! -e later/scaling.csv ]'
wait_done "$id" 120
/usr/bin/python3 "$SRC/launch/scaling_report.py" later > later-report.log 2>&1; rc=$?
check "the report alone, after the job: 1x2x1 ok from the job's own record" \
  '[ $rc -eq 0 ] && grep -q "^1x2x1,ok," later/scaling.csv && ! grep -q "^exit_code" later/1x2x1/point.info'

echo "scaling_slurm: $fail failed ($(elapsed) s)"
exit $fail
