/* Stall watchdog: a stuck rank (stopped, swapping, on a hung file system) must not leave the others
 * waiting forever. Part of the MPI boundary (with dist.h).
 *
 * The phase board: the trainer's thread says which phase it is in (start-up, step N, evaluation,
 * checkpoint, end) and, around every collective it waits for, what it waits for ("gradient
 * reduction", "barrier", "HDF5 collective write"). Marks are cheap: a mutex and a clock read.
 *
 * A watchdog thread per rank (named lv-watchdog, only when the world has more than one rank) wakes
 * every WATCHDOG_PERIOD_S. It answers other ranks' questions ("what phase are you in?") over a
 * private communicator, and when this rank has waited in one collective longer than the limit
 * (watchdog_limit_s) it asks every other rank, waits WATCHDOG_ANSWER_S for the answers, prints one
 * line naming the ranks that did not arrive and the phase, and ends the job (MPI_Abort, exit 1).
 *
 * dist_wait completes a nonblocking MPI request by polling MPI_Test with a growing sleep, and
 * dist_arrive (a barrier completed so, before each blocking collective) makes a rank waiting for a
 * stuck one use under 1% of a core instead of spinning at 100%.
 */
#ifndef LONGVQ_WATCHDOG_H
#define LONGVQ_WATCHDOG_H

#include <mpi.h>
#include <stddef.h>

#define WATCHDOG_PERIOD_S 0.5    /* the thread's wake-up period: answer latency, detection granularity */
#define WATCHDOG_ANSWER_S 3.0    /* how long the diagnosing rank waits for answers */
#define WATCHDOG_STEP_FLOOR_S 300.0  /* auto limit of a wait in a training step: at least this */
#define WATCHDOG_OTHER_FLOOR_S 900.0 /* auto limit of other waits (start-up, checkpoint, evaluation) */
#define WATCHDOG_STEP_FACTOR 20.0    /* auto limit: at least this many times the slowest step so far */

typedef enum { LV_PHASE_STARTUP, LV_PHASE_STEP, LV_PHASE_EVAL, LV_PHASE_CHECKPOINT, LV_PHASE_END } lv_phase;

/* Collective (from dist_init, world > 1): duplicates the world communicator and starts the thread. */
void watchdog_start(void);
/* Collective (from dist_finalize): stops the thread and frees its communicator. */
void watchdog_stop(void);

/* Local. dist.timeout_s: 0 = auto (watchdog_limit_s), > 0 seconds, < 0 off. Every rank sets the same. */
void watchdog_set_timeout(double timeout_s);
/* Local. The trainer's thread enters a phase (step: the step it belongs to, -1 = none). */
void watchdog_phase(lv_phase phase, long long step);
/* Local. A training step took `seconds` (the auto limit follows the slowest step). */
void watchdog_note_step(double seconds);
/* Local, trainer's thread only. The thread waits for a collective named `what` (a string literal)
 * from now until watchdog_wait_end. Nested marks keep the outermost. */
void watchdog_wait_begin(const char *what);
void watchdog_wait_end(void);

/* Local. Completes `rq` without spinning for long: MPI_Test for 1 ms, then sleeps of 1/8 of the time
 * waited so far, at most 1 ms (20 ms once the wait passed 1 s), between tests. what != NULL: marks the wait on the board (the trainer's thread); NULL: unmarked (the
 * communication thread, whose waits the trainer marks as a whole). */
void dist_wait(MPI_Request *rq, const char *what);

/* Collective. Waits, sleeping (dist_wait), until every rank has called it (an MPI_Ibarrier). Then a
 * blocking collective runs with every rank present: Open MPI's tuned algorithms move the data
 * (measured: libnbc's nonblocking ones reached half their bus bandwidth at 4-16 MiB here, even
 * tested without sleeping) and spin only while it moves, or, if a rank stops inside it, until the
 * watchdog ends the job. what != NULL: marks the wait `what` on the board until watchdog_wait_end,
 * which the caller calls after its collective; NULL: unmarked. */
void dist_arrive(const char *what);

/* Pure. The limit of a wait in seconds (0 = no limit): `timeout_s` as in watchdog_set_timeout,
 * `in_step` whether the wait is in a training step, `slowest_step_s` the slowest step so far (0: none). */
double watchdog_limit_s(double timeout_s, int in_step, double slowest_step_s);
/* Pure. "rank 3", "ranks 1, 3-5, 9": the n ranks of `ranks` (ascending), at most about cap bytes
 * ("... and N more" when longer). Returns buf. */
char *watchdog_rank_list(char *buf, size_t cap, const int *ranks, int n);
/* Pure. The phase's text: "start-up", "step 12", "evaluation after step 10", "checkpoint at step 20". */
void watchdog_phase_text(char *buf, size_t cap, lv_phase phase, long long step);

/* One rank's answer (also the diagnosis' input: pure formatting below). */
typedef struct {
  int answered;       /* 0: no answer within WATCHDOG_ANSWER_S */
  int waiting;        /* 1: it waits in a collective */
  double phase_s;     /* seconds in its phase */
  double wait_s;      /* seconds in its wait (waiting) */
  char phase[48];     /* its phase text */
  char what[40];      /* what it waits for (waiting) */
} watchdog_answer;

/* Pure. The diagnosis line of rank `me` that waited `waited_s` in `what` during `phase`, from the
 * answers of all `world` ranks (ans[me] is ignored): who did not arrive and where the others are. */
void watchdog_describe(char *buf, size_t cap, int me, const char *phase, const char *what, double waited_s,
                       const watchdog_answer *ans, int world);

#endif
