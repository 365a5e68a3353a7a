# `longvq train` / `eval` end to end (trainer/), bad training inputs.
lv_script_test(train_cli train_cli.sh mpi)
lv_unit_test(test_jsonl)
