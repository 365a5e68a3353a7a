# The config input limits through the command line (docs/config.md "Input limits"): issue 13's
# 600 KB of nested `[`, a file over 1 MiB and an override over 8192 bytes each end `longvq train`
# with exit 2 and one message naming the place (file:line:col, or the override) and the limit;
# 2 ranks print it once. The loader's own cases are in test_config_limits and config_fuzz.
set -u
. "$SRC/tests/script_lib.sh"
: "${LONGVQ:?}" "${WORK:?}" "${MPIRUN:?}"
rm -rf "$WORK" && mkdir -p "$WORK" && cd "$WORK"
CFG="$SRC/configs/tiny.yaml"

{ printf 'model:\n  d_model: '; head -c $((600 * 1024)) /dev/zero | tr '\0' '['; echo; } >nest.yaml
{ printf 'model:\n  d_model: 64\n#'; head -c $((1 << 20)) /dev/zero | tr '\0' 'x'; echo; } >big.yaml
long="run.name=$(head -c 9000 /dev/zero | tr '\0' 'n')"

$MPIRUN -np 2 "$LONGVQ" train nest.yaml --print-config >/dev/null 2>nest2.err
rc=$?
check "2 ranks: exit 2, the message once" '[ $rc = 2 ] && [ $(grep -c "nested more than 64" nest2.err) = 1 ]'
singleton_env # single processes from here on

"$LONGVQ" train "$CFG" --print-config >ok.out 2>ok.err
check "tiny.yaml builds (exit 0)" '[ $? = 0 ] && [ ! -s ok.err ]'
"$LONGVQ" train nest.yaml --print-config >/dev/null 2>nest.err
rc=$?
check "600 KB of nested [: exit 2 at the 65th level, naming the limit" \
  '[ $rc = 2 ] && grep -q "nest.yaml:2:74: nested more than 64 levels deep, the limit" nest.err'
"$LONGVQ" train big.yaml --print-config >/dev/null 2>big.err
rc=$?
check "a file over 1 MiB: exit 2 at the first byte beyond, naming the limit" \
  '[ $rc = 2 ] && grep -q "big.yaml:3:1048556: more than 1048576 bytes (1 MiB), the limit for a config" big.err'
"$LONGVQ" train "$CFG" "$long" --print-config >/dev/null 2>long.err
rc=$?
check "an override over 8192 bytes: exit 2, the override named and cut short" \
  '[ $rc = 2 ] && grep -q "override '"'"'run.name=nnnn.*\.\.\.'"'"': longer than 8192 bytes, the limit for an override" long.err &&
   [ $(wc -c <long.err) -lt 400 ]'
for f in nest big long nest2; do echo "--- $f.err"; head -c 300 $f.err; echo; done
echo "config_limits_cli: $fail failed"
exit $fail
