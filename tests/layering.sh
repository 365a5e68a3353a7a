#!/usr/bin/env bash
# The layering rule (docs/code-layout.md): each folder includes only the folders below it.
#   trainer/base   the shared base (checks, logging, MPI boundary, parallel file I/O, RNG, ranges, allocator)
#   layers         the model maths                      -> trainer/base
#   io             datasets, checkpoints, model files, config   -> layers, trainer/base
#   trainer        step loop, optimizer, reduction, CLI  -> everything
# Project headers are included by their path from the repository root; a file that includes across
# the rule (or by a bare name, which hides where it comes from) is named here.
set -u
. "$SRC/tests/script_lib.sh"
cd "$SRC" || exit 1
allowed() { # folder of the including file -> regex of the headers it may include
  case "$1" in
    trainer/base) echo '^trainer/base/' ;;
    layers|layers/*) echo '^(layers|trainer/base)/' ;;
    io) echo '^(io|layers|trainer/base)/' ;;
    trainer) echo '^(trainer|io|layers)/' ;;
  esac
}
bad=0
for f in $(find trainer layers io -name '*.[ch]' | sort); do
  dir=$(dirname "$f")
  re=$(allowed "$dir")
  while IFS= read -r inc; do
    if [[ "$inc" != */* ]] || ! [[ "$inc" =~ $re ]]; then
      echo "     $f includes \"$inc\" (allowed for $dir/: $re)"
      bad=$((bad + 1))
    fi
  done < <(sed -nE 's/^#include "([^"]+)".*/\1/p' "$f")
done
n=$(find trainer layers io -name '*.[ch]' | wc -l)
check "no include crosses the layering rule ($n files)" '[ $bad -eq 0 ]'
echo "layering: $fail failed"
exit $fail
