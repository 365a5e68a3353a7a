# Config system (io/config.*): loader, overrides, printer round trip, errors, diff, tiny.yaml, docs.
lv_unit_test(test_config)
# The test reads configs/tiny.yaml and checks docs/config.md against lv_config_help.
target_compile_definitions(test_config PRIVATE LV_SOURCE_DIR="${CMAKE_SOURCE_DIR}")
# No dead keys: every key of the table is read outside the config code.
lv_script_test(config_keys_read config_keys_read.sh unit)
# Input limits (docs/config.md "Input limits"): size, nesting depth, override length, alias bombs,
# the largest printable config under the limit; issue 13's nested inputs refused (times printed).
lv_unit_test(test_config_limits)
# Bounded fuzz of the loader (tests/config_fuzz.c): 1500 mutated configs/*.yaml with random
# overrides through lv_config_build in forked children with a 10 s limit each; exit 0 or 2 with
# every message in a form of io/config.h (file:line:col, the override, or a key), never a signal
# or a hang. LONGVQ_FUZZ_TRIALS and LONGVQ_FUZZ_SEED change the run.
lv_unit_test(config_fuzz)
target_compile_definitions(config_fuzz PRIVATE LV_SOURCE_DIR="${CMAKE_SOURCE_DIR}")
# The same limits through `longvq train` (exit 2, one message naming the place and the limit).
lv_script_test(config_limits_cli config_limits_cli.sh)
