# Stop signals (trainer/signals.c, launch/run.sh; docs/distributed.md "Stopping a run"), each
# with a checkpoint write slowed to seconds (LONGVQ_TEST_CKPT_WRITE_S):
#   signal_stop   mpirun: TERM to launch/run.sh, Ctrl-C on a pseudo-terminal (once: checkpoint,
#                 exit 3, bitwise identical resume; twice: exit 130 at once), Ctrl-C on one process,
#                 TERM to plain mpirun (Open MPI's abort: exit 1)
# The srun and sbatch paths are tests/slurm_signals.sh (tests/slurm.cmake).
lv_script_test(signal_stop signal_stop.sh mpi)
set_tests_properties(signal_stop PROPERTIES RUN_SERIAL TRUE)
