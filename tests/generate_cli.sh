#!/usr/bin/env bash
# `longvq generate` end to end (docs/generate.md) on tiny models trained here for a few steps:
# (b) determinism: the same seed gives the same bytes, another seed other bytes, top-k 1 the same bytes
#     for any seed; --prompt and --prompt-file agree; the requested number of bytes arrives on stdout
#     and the speed on stderr. (c) bad input, each exit 2 with a message naming what is wrong: an
#     encoder model, a prompt byte outside the vocabulary (a model of a 70-token vocabulary), a
#     temperature <= 0 or not a number, a top-k outside 1..V, a model file of another shape, and the
#     command line's own mistakes. Exactness of the logits is tests/test_decode.c's.
set -u
. "$SRC/tests/script_lib.sh"
singleton_env
rm -rf "$WORK" && mkdir -p "$WORK" && cd "$WORK"

# A byte-level text set from the repository's own docs, a tiny decoder trained on it (V = 256).
"$LONGVQ" data text --out text.h5 "$SRC/README.md" "$SRC"/docs/*.md > /dev/null 2>&1
T="$SRC/configs/tiny.yaml model.mode=decoder data.seq_len=32 data.val= checkpoint.every=0 train.eval_every=0"
"$LONGVQ" train $T data.train=text.h5 train.steps=6 run.dir=dec > dec.log 2>&1
check "tiny decoder trained" '[ -f dec/model_final.h5 ]'
G="$LONGVQ generate $SRC/configs/tiny.yaml model.mode=decoder --model dec/model_final.h5"

$G --prompt "The model " --tokens 200 --seed 5 > a.bin 2> a.err; rc=$?
check "generate exits 0" '[ $rc -eq 0 ]'
check "200 bytes on stdout" '[ $(wc -c < a.bin) -eq 200 ]'
check "speed and memory on stderr" 'grep -Eq "200 tokens in [0-9.]+ s: [0-9]+ tokens/s \([0-9]+ per CPU-second\); sequence length 210; peak RSS" a.err'
check "state size printed" 'grep -q "decoder state (fixed, any position)" a.err'
$G --prompt "The model " --tokens 200 --seed 5 > b.bin 2> /dev/null
check "same seed, same bytes" 'cmp -s a.bin b.bin'
$G --prompt "The model " --tokens 200 --seed 6 > c.bin 2> /dev/null
check "another seed, other bytes" '! cmp -s a.bin c.bin'
printf 'The model ' > prompt.txt
$G --prompt-file prompt.txt --tokens 200 --seed 5 > d.bin 2> /dev/null
check "--prompt-file = --prompt" 'cmp -s a.bin d.bin'
$G --prompt "The model " --tokens 100 --seed 1 --top-k 1 > g1.bin 2> /dev/null
$G --prompt "The model " --tokens 100 --seed 2 --top-k 1 > g2.bin 2> /dev/null
check "top-k 1 does not depend on the seed" '[ $(wc -c < g1.bin) -eq 100 ] && cmp -s g1.bin g2.bin'
# The bytes do not depend on the thread count: a model wide enough (D 512) that its mx_proj is split
# over the threads (layers/decode.c: 2^19 weights or more), one training step, 1 vs 2 threads.
"$LONGVQ" train $T model.d_model=512 data.train=text.h5 train.steps=1 train.warmup=1 run.dir=wide > wide.log 2>&1
W="$LONGVQ generate $SRC/configs/tiny.yaml model.mode=decoder model.d_model=512 --model wide/model_final.h5"
OMP_NUM_THREADS=1 $W --tokens 100 --seed 3 > w1.bin 2> /dev/null
OMP_NUM_THREADS=2 $W --tokens 100 --seed 3 > w2.bin 2> /dev/null
check "1 and 2 threads give the same bytes" '[ $(wc -c < w1.bin) -eq 100 ] && cmp -s w1.bin w2.bin'
$G --tokens 120 --progress 40 > /dev/null 2> p.err
check "--progress: a line every 40 tokens" '[ $(grep -Ec "length (41|81|121): [0-9]+ tokens/s over the last 40, [0-9]+ per CPU-second \| RSS" p.err) -eq 3 ]'
$G --tokens 0 > z.bin 2> /dev/null; rc=$?
check "--tokens 0: the prompt only" '[ $rc -eq 0 ] && [ ! -s z.bin ]'

# bad BAD_NAME PATTERN COMMAND...: exit 2, stderr matches PATTERN, nothing on stdout.
bad() {
  local name=$1 pat=$2; shift 2
  "$@" > bad.out 2> bad.err; local rc=$?
  check "$name: exit 2, clear message" '[ $rc -eq 2 ] && grep -Eq -- "$pat" bad.err && [ ! -s bad.out ]'
  [ $rc -eq 2 ] || { echo "  exit $rc, stderr:"; sed 's/^/    /' bad.err; }
}

# An encoder model (tiny ListOps) and a decoder of a 70-token vocabulary (MQAR).
tiny_listops lo.h5 32
"$LONGVQ" train "$SRC/configs/tiny.yaml" data.train=lo.h5 data.val= data.seq_len=64 train.steps=2 \
  checkpoint.every=0 train.eval_every=0 run.dir=enc > enc.log 2>&1
"$LONGVQ" data mqar --out mqar.h5 --train 16 --val 4 --test 4 --seq-len 32 --chunk 8 --far-chunks 2 > /dev/null 2>&1
"$LONGVQ" train $T data.train=mqar.h5 train.steps=2 run.dir=small > small.log 2>&1
check "encoder and small-vocabulary models trained" '[ -f enc/model_final.h5 ] && [ -f small/model_final.h5 ]'
V=$(/usr/bin/python3 -c 'import h5py; print(h5py.File("small/model_final.h5", "r")["/model/embed/weight"].shape[0])')

bad "encoder model" "enc/model_final.h5: an encoder \(classification\) model" \
  $LONGVQ generate "$SRC/configs/tiny.yaml" --model enc/model_final.h5
bad "encoder config" "model.mode: encoder; generate needs a decoder" \
  $LONGVQ generate "$SRC/configs/tiny.yaml" --model dec/model_final.h5
printf '\x01\x02\xf0\x03' > highbyte.txt
bad "prompt byte outside the vocabulary" "highbyte.txt: byte 0xf0 at offset 2 is outside the model's vocabulary \[0, $V\)" \
  $LONGVQ generate "$SRC/configs/tiny.yaml" model.mode=decoder --model small/model_final.h5 --prompt-file highbyte.txt
bad "temperature 0" "--temperature: '0' is not a number > 0" $G --temperature 0
bad "temperature -1" "--temperature: '-1' is not a number > 0" $G --temperature -1
bad "temperature nan" "--temperature: 'nan' is not a number > 0" $G --temperature nan
bad "temperature not a number" "--temperature: 'warm'" $G --temperature warm
bad "top-k 0" "--top-k: '0' is not a whole number in 1..256" $G --top-k 0
bad "top-k V+1" "--top-k: '257' is not a whole number in 1..256" $G --top-k 257
bad "top-k V+1 (small vocabulary)" "--top-k: '$((V + 1))' is not a whole number in 1..$V" \
  $LONGVQ generate "$SRC/configs/tiny.yaml" model.mode=decoder --model small/model_final.h5 --top-k $((V + 1))
bad "tokens -1" "--tokens: '-1' is not a whole number" $G --tokens -1
bad "model of another shape" "dec/model_final.h5.*embed.weight has shape \(256, 16\), the config needs \(256, 32\)" \
  $LONGVQ generate "$SRC/configs/tiny.yaml" model.mode=decoder model.d_model=32 --model dec/model_final.h5
bad "model of another chunk size" "rel_pos_bias has shape \(16\), the config needs \(32\)" \
  $LONGVQ generate "$SRC/configs/tiny.yaml" model.mode=decoder model.chunk_size=16 --model dec/model_final.h5
bad "no such model file" "nothere.h5: no such file" $LONGVQ generate "$SRC/configs/tiny.yaml" model.mode=decoder --model nothere.h5
bad "prompt and prompt-file" "--prompt and --prompt-file: give one of them" $G --prompt x --prompt-file prompt.txt
bad "empty prompt" "--prompt: empty" $G --prompt ""
bad "missing prompt file" "--prompt-file nothere.txt: cannot open" $G --prompt-file nothere.txt
bad "missing --model" "missing --model" $LONGVQ generate "$SRC/configs/tiny.yaml"
bad "unknown option" "unknown option '--tokenz'" $G --tokenz 5
bad "option without value" "--seed needs a value" $G --seed

[ $fail -eq 0 ] && echo "generate_cli: passed" || echo "generate_cli: $fail failed"
exit $fail
