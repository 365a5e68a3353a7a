# One run per run directory (trainer/runlock.c): a second training refused naming the holder, locks
# of dead, stale or requeued runs taken over, the lock removed at every end.
lv_script_test(runlock runlock.sh mpi)
set_tests_properties(runlock PROPERTIES RUN_SERIAL TRUE)
