# Data parallelism over MPI (trainer/reducer.c, trainer/step.c): 1/2/4 ranks, micro-batches, ZeRO-1,
# replica consistency, bad distributed setups, a killed rank.
lv_script_test(dist_train dist_train.sh)
set_tests_properties(dist_train PROPERTIES RUN_SERIAL TRUE)
