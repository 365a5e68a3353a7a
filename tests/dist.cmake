# Data parallelism over MPI (trainer/reducer.c, trainer/step.c): 1/2/4 ranks, micro-batches, ZeRO-1,
# replica consistency, bad distributed setups, a killed rank.
lv_script_test(dist_train dist_train.sh mpi)
set_tests_properties(dist_train PROPERTIES RUN_SERIAL TRUE)
# Benchmark (not a test): mpirun -np 2 build/tests/bench_allreduce [MiB ...]
add_executable(bench_allreduce ${CMAKE_CURRENT_SOURCE_DIR}/bench_allreduce.c)
target_link_libraries(bench_allreduce PRIVATE longvq_core)
# Many ranks: 1/8/16 ranks oversubscribed, 16 with ZeRO-1 and awkward sizes, 16 -> 3 resume
# (about 15 s on 2 cores).
lv_script_test(dist_scale dist_scale.sh mpi)
set_tests_properties(dist_scale PROPERTIES RUN_SERIAL TRUE)
