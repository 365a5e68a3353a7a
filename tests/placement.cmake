# Threads per rank and placement (trainer/placement.c): the CPU-list formatter; train.threads
# against OMP_NUM_THREADS at 2 ranks, checked against the kernel's thread counts; the start-up log;
# oversubscription warnings; --bind-to core. Serial: it counts threads and uses both cores.
lv_unit_test(test_placement)
lv_script_test(placement placement.sh mpi)
set_tests_properties(placement PROPERTIES RUN_SERIAL TRUE TIMEOUT 300)
