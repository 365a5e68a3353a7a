# Exact statistics at any global batch (trainer/stats.h): one step of more than 2^24 tokens on 2 ranks.
lv_script_test(dist_exact dist_exact.sh mpi)
set_tests_properties(dist_exact PROPERTIES RUN_SERIAL TRUE)
