#!/usr/bin/env bash
# launch/plot.py on real runs made here (docs/plots.md): an encoder run stopped by a signal and
# resumed (its restart line, and a last line cut short before the resume that the resume drops),
# a decoder run, and a sweep directory of runs with a repeated run.name; every panel and series of
# each figure is checked against the metrics (tests/plot_check.py). Malformed metrics are errors
# naming FILE:LINE (exit 2, no traceback); a last line cut short is a warning.
set -u
. "$SRC/tests/script_lib.sh"
rm -rf "$WORK" && mkdir -p "$WORK" && cd "$WORK"
singleton_env
PLOT="/usr/bin/python3 $SRC/launch/plot.py"
PCHECK="/usr/bin/python3 $SRC/tests/plot_check.py"
tiny_listops lo.h5 64
cat "$SRC"/docs/*.md > text.txt
"$LONGVQ" data text --out text.h5 --val-fraction 0.1 text.txt > /dev/null 2>&1
ENC="$SRC/configs/tiny.yaml data.train=lo.h5 data.val=lo.h5 data.seq_len=64 train.eval_every=4 checkpoint.every=4"
DEC="$SRC/configs/tiny.yaml data.train=text.h5 data.val=text.h5 model.mode=decoder data.seq_len=32 train.steps=10
     train.eval_every=5 checkpoint.every=0 run.name=beta"

# 1. Real runs: alpha is stopped at step 6 (a signal: checkpoint, exit 3), left with a last line cut
#    short as by a kill during a write, plotted so, then resumed to step 12; beta is a decoder.
LONGVQ_TEST_SIGNAL_AT=6:0 "$LONGVQ" train $ENC train.steps=12 run.name=alpha run.dir=sw/a > a1.log 2>&1; rc=$?
check "alpha stops at step 6 on the signal (exit 3)" '[ $rc -eq 3 ] && [ -f sw/a/ckpt_00000006.h5 ]'
printf '{"step": 6, "split": "val", "lo' >> sw/a/metrics.jsonl
$PLOT sw/a --out cut.png > cut.log 2> cut.err; rc=$?
check "a last line cut short: a warning naming its line, the figure is written" \
  '[ $rc -eq 0 ] && grep -q "plot: warning: sw/a/metrics.jsonl:$(wc -l < sw/a/metrics.jsonl | awk "{print \$1 + 1}"): last line cut short" cut.err && [ -s cut.png ] && ! grep -q Traceback cut.err'
$PCHECK cut.png alpha=sw/a > cut-check.log; r=$?
cat cut-check.log; fail=$((fail + r))
"$LONGVQ" train $ENC train.steps=12 run.name=alpha run.dir=sw/a --resume auto > a2.log 2>&1; rc=$?
check "alpha resumes and finishes (restart 1 after step 6; the cut line dropped)" \
  '[ $rc -eq 0 ] && grep -q "^{\"restart\": 1, \"step\": 6, \"ranks\": 1, \"run\": \"alpha\"}$" sw/a/metrics.jsonl &&
   [ $(grep -c "\"split\"" sw/a/metrics.jsonl) -eq 3 ] && [ $(grep -c "\"tokens_per_s\"" sw/a/metrics.jsonl) -eq 12 ] &&
   [ "$(tail -c 1 sw/a/metrics.jsonl | od -An -c | tr -d " ")" = "\n" ] && ! grep -q "\"lo{" sw/a/metrics.jsonl'
"$LONGVQ" train $DEC run.dir=sw/b > b.log 2>&1; rc=$?
check "beta (decoder) trains" '[ $rc -eq 0 ]'

# 2. Two runs on shared axes: every panel, series, restart line.
$PLOT sw/a sw/b --out two.png > two.log 2>&1; rc=$?
cat two.log
check "plot of two runs: exit 0" '[ $rc -eq 0 ] && grep -q "alpha: .*restart 1 after step 6" two.log'
$PCHECK two.png alpha=sw/a beta=sw/b > two-check.log; r=$?
cat two-check.log; fail=$((fail + r))
# 3. A sweep directory (its subdirectories' runs); a repeated run.name is told apart by directory.
mkdir -p sw/c && cp sw/a/metrics.jsonl sw/c/
$PLOT sw --out sweep.png --title "a sweep" > sweep.log 2>&1; rc=$?
check "plot of a sweep directory: exit 0, 3 runs" '[ $rc -eq 0 ] && grep -q "wrote sweep.png (3 run(s)" sweep.log'
$PCHECK sweep.png "alpha (a)=sw/a" beta=sw/b "alpha (c)=sw/c" > sweep-check.log; r=$?
cat sweep-check.log; fail=$((fail + r))
# The scaling report reads metrics through the same reader (launch/metrics_io.py).
check "scaling_report reads alpha's 12 training steps" \
  '[ "$(cd "$SRC/launch" && /usr/bin/python3 -c "import scaling_report as s, sys; print(sorted(s.read_metrics(sys.argv[1])) == list(range(1, 13)))" "$WORK/sw/a/metrics.jsonl")" = True ]'

# 4. Bad metrics: FILE:LINE and what is wrong, exit 2, no traceback. alpha's lines: 1-4 steps 1-4,
#    5 the evaluation at step 4, 6-7 steps 5-6, 8 the restart, ...
bad() { # name, expected message (regex), file content maker (a command on m/metrics.jsonl)
  local name=$1 re=$2
  rm -rf m bad.png && mkdir m && cp sw/a/metrics.jsonl m/
  eval "$3"
  $PLOT m --out bad.png > bad.log 2> bad.err; local rc=$?
  check "bad: $name" '[ $rc -eq 2 ] && grep -Eq "^plot: error: $re" bad.err && ! grep -q Traceback bad.err && ! [ -e bad.png ]'
}
bad "line cut in the middle of the file" "m/metrics.jsonl:3: malformed metrics line \(" "sed -i '3s/, \"lr\".*//' m/metrics.jsonl"
bad "a field of the wrong type" "m/metrics.jsonl:6: field 'lr' is 'fast', expected a finite number" \
  "sed -i '6s/\"lr\": [0-9.e+-]*/\"lr\": \"fast\"/' m/metrics.jsonl"
bad "a step that is not an integer" "m/metrics.jsonl:2: field 'step' is 1.5, expected a non-negative integer" \
  "sed -i '2s/\"step\": 2,/\"step\": 1.5,/' m/metrics.jsonl"
bad "a line that is not an object" "m/metrics.jsonl:4: malformed metrics line \(not a JSON object\)" "sed -i '4s/.*/[1, 2]/' m/metrics.jsonl"
bad "a training line without its task metric" "m/metrics.jsonl:1: neither 'bits_per_token' nor 'accuracy'" \
  "sed -i '1s/\"accuracy\": [0-9.e+-]*, //' m/metrics.jsonl"
bad "not UTF-8" "m/metrics.jsonl:2: malformed metrics line \(not UTF-8" "sed -i '2s/\"run\"/\"\xff\"/' m/metrics.jsonl"
bad "no training lines" "m/metrics.jsonl: no training lines" "grep -v tokens_per_s sw/a/metrics.jsonl > m/metrics.jsonl"
$PLOT nowhere --out x.png > /dev/null 2> nw.err; rc=$?
check "a run that does not exist: exit 2, named" '[ $rc -eq 2 ] && grep -q "^plot: error: nowhere: no such file or directory" nw.err'
mkdir -p empty
$PLOT empty --out x.png > /dev/null 2> em.err; rc=$?
check "a directory without runs: exit 2, said" '[ $rc -eq 2 ] && grep -q "empty: no metrics.jsonl in it or in its subdirectories" em.err'
$PLOT sw/a --out x.pdf > /dev/null 2> pdf.err; rc=$?
check "--out not a .png: exit 2" '[ $rc -eq 2 ] && grep -q "expected a .png file name" pdf.err'
$PLOT sw/a > /dev/null 2> usage.err; rc=$?
check "no --out: usage, exit 2" '[ $rc -eq 2 ] && grep -q "required: --out" usage.err'
$PLOT sw/a --out no/such/dir/x.png > /dev/null 2> wr.err; rc=$?
check "an unwritable --out: exit 1, named" '[ $rc -eq 1 ] && grep -q "cannot write no/such/dir/x.png" wr.err && ! grep -q Traceback wr.err'
exit $fail
