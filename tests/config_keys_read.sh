#!/usr/bin/env bash
# No dead config keys: every key of the table (io/config_keys.c) is read somewhere outside the config
# code, as `<section>.<field>` of the config struct (c->train.steps, cfg.dist.zero, ...). A key that
# is parsed, documented and saved but never read does nothing: this test names it.
set -u
. "$SRC/tests/script_lib.sh"
keys=$(sed -nE 's/^ *(INT|DBL|BOOL|STR|PATH|ENUM)\(([a-z_]+), ([a-z_0-9]+),.*/\2.\3/p' "$SRC/io/config_keys.c")
n=$(echo "$keys" | wc -l)
check "the key table lists keys ($n)" '[ "$n" -ge 40 ]'
readers=$(ls "$SRC"/trainer/*.c "$SRC"/io/*.c "$SRC"/layers/*.c | grep -v '/io/config')
for k in $keys; do
  check "$k is read outside io/config*" 'grep -qE "[.>]${k//./\\.}\b" $readers'
done
echo "config_keys_read: $fail failed"
exit $fail
