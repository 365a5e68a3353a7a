# Stall watchdog (trainer/base/watchdog.c): the limit rule and the message's formatting (unit), and
# a stopped rank at 2 and 4 ranks ending the job in time, named, with the waiting ranks not spinning,
# and ranks stopped in a checkpoint and an evaluation (about 60 s on 2 cores).
lv_unit_test(test_watchdog)
lv_script_test(dist_stall dist_stall.sh mpi)
set_tests_properties(dist_stall PROPERTIES RUN_SERIAL TRUE)
