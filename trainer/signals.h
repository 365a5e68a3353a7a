/* SIGTERM / SIGUSR1 (Slurm's warning before the time limit, preemption): the handler only sets a
 * flag; the trainer folds it into the next step's statistics reduction, so all ranks agree to stop
 * at the same step boundary, write a checkpoint and exit with LV_EXIT_REQUEUE. A second signal
 * during the write changes nothing (SA_RESTART: no system call of the write fails with EINTR). */
#ifndef LONGVQ_SIGNALS_H
#define LONGVQ_SIGNALS_H

/* Installs the handlers (SIGTERM, SIGUSR1, SIGINT). */
void lv_signals_install(void);
/* True once a stop signal arrived on this rank. */
int lv_signal_pending(void);
/* Testing only: LONGVQ_TEST_SIGNAL_AT="STEP:RANK" makes rank RANK raise SIGUSR1 at the start of
 * step STEP, so tests can stop a run at a known step on one rank (the others learn it through the
 * vote). The variable is read once, by lv_signals_install. Does nothing when it is unset. */
void lv_signal_test_hook(long long step, int rank);
/* The number of the first signal received (0 if none). */
int lv_signal_number(void);

#endif
