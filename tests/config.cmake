# Config system (io/config.*): loader, overrides, printer round trip, errors, diff, tiny.yaml, docs.
lv_unit_test(test_config)
# The test reads configs/tiny.yaml and checks docs/config.md against lv_config_help.
target_compile_definitions(test_config PRIVATE LV_SOURCE_DIR="${CMAKE_SOURCE_DIR}")
# No dead keys: every key of the table is read outside the config code.
lv_script_test(config_keys_read config_keys_read.sh unit)
# Input limits (docs/config.md "Input limits"): size, nesting depth, override length, alias bombs,
# the largest printable config under the limit; issue 13's nested inputs refused (times printed).
lv_unit_test(test_config_limits)
