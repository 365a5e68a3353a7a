# Exact resume, signals, world-size changes (trainer/ckpt_run.c, trainer/signals.c).
lv_script_test(ckpt_resume ckpt_resume.sh mpi)
set_tests_properties(ckpt_resume PROPERTIES RUN_SERIAL TRUE)
