# Slurm (launch/longvq.sbatch, launch/submit.sh, launch/slurm-local.sh). Each test starts a private
# one-node Slurm with launch/slurm-local.sh (installing slurm-wlm and munge as root if missing),
# submits real jobs, and stops it (by PID) at the end. They SKIP (exit 77) only where Slurm cannot
# run at all (not root); as root a Slurm that does not come up is a failure.
#   slurm_requeue  warning signal -> checkpoint, requeue, resume (x2), scancel -> not requeued,
#                  resubmit -> resume; metrics and parameters equal to an uninterrupted job
#   slurm_sweep    submit.sh --sweep -> job array, one run dir per task; one array task requeued
#   slurm_crash    a rank killed (SIGKILL, SIGSEGV) -> FAILED within 60 s, not requeued; a rank
#                  stopped (SIGSTOP) -> the stall watchdog: FAILED exit 1 naming it, not requeued
#   slurm_badinput bad config / missing data / no binary -> FAILED fast with the reason, exit 2 / 1
#   slurm_signals  TERM with a checkpoint of seconds: scancel of an srun job, TERM to launch/run.sh
#                  srun, scancel of an sbatch job -> exit 3, complete checkpoint, bitwise resume;
#                  TERM to plain srun -> tasks killed (exit 137)
# Serial: every job takes both cores of this machine, and the timing checks must not compete.
foreach(t slurm_requeue slurm_sweep slurm_crash slurm_badinput slurm_signals)
  lv_script_test(${t} ${t}.sh slurm)
  set_tests_properties(${t} PROPERTIES RUN_SERIAL TRUE SKIP_RETURN_CODE 77 TIMEOUT 900)
endforeach()
