#!/usr/bin/env bash
# Sweeps as job arrays on a real (local, one-node) Slurm:
#   1. `launch/submit.sh CONFIG --sweep train.lr=1e-3,3e-3 --sweep run.seed=1,2` submits one array of
#      4 tasks; each trains its own combination in its own run directory, with its own output file;
#   2. an array task that gets the warning signal requeues only itself (`scontrol requeue
#      ARRAYID_TASK`), the other task runs meanwhile, and the requeued task resumes (restart 1).
source "$(dirname "$0")/slurm_lib.sh"

# 1. Four combinations, a few steps each.
# shellcheck disable=SC2086
arr=$("$SUBMIT" $TINY train.steps=4 train.eval_every=0 run.dir="$WORK/sweep" \
      --sweep train.lr=1e-3,3e-3 --sweep run.seed=1,2 2>submit.log)
check "array submitted: $(cat submit.log)" '[ -n "$arr" ]'
wait_done "$arr" 400
i=0
for lr in 1e-3 3e-3; do
  for seed in 1 2; do
    d="$WORK/sweep/lr-${lr}_seed-$seed"
    o="$WORK/slurm-logs/longvq-tiny-${arr}_$i.out"
    check "task $i: COMPLETED in its own dir lr-${lr}_seed-$seed with train.lr=$lr run.seed=$seed" \
      '[ "$(job_field ${arr}_$i JobState)" = COMPLETED ] && [ $(last_step $d/metrics.jsonl) -eq 4 ] &&
       grep -q "sweep: array task $i of 4: train.lr=$lr run.seed=$seed" $o &&
       grep -q "run.dir=$d checkpoint.resume=auto" $o'
    i=$((i + 1))
  done
done
# The learning rate shows in the metrics (step 1 of 2 warmup steps: lr / 2), the seed in the losses.
lr1() { grep -o '"lr": [0-9.e+-]*' "$WORK/sweep/$1/metrics.jsonl" | head -n 1 | grep -o '[0-9.e+-]*$'; }
check "the sweep's learning rates reach the trainer" \
  '/usr/bin/python3 -c "import sys; a, b = map(float, sys.argv[1:]); assert abs(a - 5e-4) < 1e-9 and abs(b - 1.5e-3) < 1e-9" \
     "$(lr1 lr-1e-3_seed-1)" "$(lr1 lr-3e-3_seed-2)"'
check "the two seeds give different losses" \
  '! diff -q <(loss_lines sweep/lr-1e-3_seed-1/metrics.jsonl) <(loss_lines sweep/lr-1e-3_seed-2/metrics.jsonl) >/dev/null'

# 2. Requeue of one array task.
M="$WORK/req/seed-1/metrics.jsonl"
# shellcheck disable=SC2086
arr2=$("$SUBMIT" $TINY $MID train.steps=120 train.eval_every=0 run.dir="$WORK/req" --sweep run.seed=1,2 2>>submit.log)
o0="$WORK/slurm-logs/longvq-tiny-${arr2}_0.out"
o1="$WORK/slurm-logs/longvq-tiny-${arr2}_1.out"
wait_for "[ \$(last_step $M) -ge 2 ] || ! queued ${arr2}_0" 300
s=$(last_step "$M")
scancel --signal=USR1 "${arr2}_0"
check "task 0 (signalled at step $s) requeued itself as ${arr2}_0" \
  'wait_for "grep -q \"requeued: scontrol requeue ${arr2}_0\" $o0 || ! queued ${arr2}_0" 120 && grep -q "requeued: scontrol requeue ${arr2}_0" $o0'
check "task 1 ran (only task 0 was requeued)" 'wait_for "grep -qs \"job ${arr2}_1 \" $o1" 300'
check "task 0 pending again" 'release "${arr2}_0" 300'
wait_done "$arr2" 400
check "task 0 resumed (SLURM_RESTART_COUNT=1, restart 1) and COMPLETED ($(elapsed) s)" \
  '[ "$(job_field ${arr2}_0 JobState)" = COMPLETED ] && [ "$(job_field ${arr2}_0 Restarts)" = 1 ] &&
   grep -q SLURM_RESTART_COUNT=1 $o0 && grep -q "restart 1: continuing at step" $o0 && [ $(last_step $M) -eq 120 ]'
check "task 1 COMPLETED without a restart" \
  '[ "$(job_field ${arr2}_1 JobState)" = COMPLETED ] && [ "$(job_field ${arr2}_1 Restarts)" = 0 ] && [ $(last_step req/seed-2/metrics.jsonl) -eq 120 ]'
check "task 0's metrics read as one run (steps 1..120 once each)" \
  '[ "$(grep -o "\"step\": [0-9]*, \"loss\"" $M | grep -o "[0-9]\+" | tr "\n" " ")" = "$(seq -s " " 1 120) " ]'

if [ $fail -ne 0 ]; then
  for f in "$WORK"/slurm-logs/*.out; do echo "---- $f"; grep -v '^step ' "$f" | tail -n 25; done
fi
echo "slurm_sweep: $fail failed ($(elapsed) s)"
exit $fail
