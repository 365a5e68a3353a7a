/* Stop signals. SIGTERM / SIGUSR1 (Slurm's warning before the time limit, preemption, scancel, a
 * launcher's forwarded stop) and a first SIGINT (Ctrl-C): the handler only sets a flag; the trainer
 * folds it into the next step's statistics reduction, so all ranks agree to stop at the same step
 * boundary, write a checkpoint and exit with LV_EXIT_REQUEUE. Repeated TERM / USR1 change nothing
 * (SA_RESTART: no system call of the write fails with EINTR): schedulers may send them more than
 * once. A SIGINT while a stop is already pending (the second Ctrl-C) ends this process at once,
 * killed by SIGINT (exit status 130 in a shell), without a checkpoint: the previous checkpoint
 * stays the newest complete one (an interrupted write leaves only a .tmp, never picked).
 * Which launcher delivers which signal to the ranks: docs/distributed.md "Stopping a run". */
#ifndef LONGVQ_SIGNALS_H
#define LONGVQ_SIGNALS_H

/* Installs the handlers (SIGTERM, SIGUSR1, SIGINT). */
void lv_signals_install(void);
/* True once a stop signal arrived on this rank. */
int lv_signal_pending(void);
/* Testing only: LONGVQ_TEST_SIGNAL_AT="STEP:RANK" makes rank RANK raise SIGUSR1 at the start of
 * step STEP, so tests can stop a run at a known step on one rank (the others learn it through the
 * vote). The variable is read once, by lv_signals_install. Does nothing when it is unset.
 * (The other test hook of the stop path, LONGVQ_TEST_CKPT_WRITE_S, slows checkpoint writes:
 * io/checkpoint_write.c.) */
void lv_signal_test_hook(long long step, int rank);
/* The number of the first signal received (0 if none). */
int lv_signal_number(void);

#endif
