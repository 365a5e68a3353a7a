/* Threads per rank (train.threads) and where each rank runs, reported once at start-up.
 *
 * train.threads > 0 sets this rank's OpenMP threads with omp_set_num_threads before the first
 * parallel region (ours or oneDNN's: oneDNN runs on the same OpenMP runtime and asks it for the
 * thread count), so the key wins over OMP_NUM_THREADS; 0 leaves OMP_NUM_THREADS or, without it,
 * the runtime's default (libgomp: one thread per CPU the rank may run on). The count is then
 * measured in a parallel region: what is reported is what runs (OMP_THREAD_LIMIT can lower it).
 *
 * Start-up log (rank 0), e.g. `mpirun -np 2 --bind-to core ... train.threads=1` with OMP_NUM_THREADS=2:
 *   placement: 2 ranks x 1 thread (train.threads=1; OMP_NUM_THREADS=2 overridden), 1 host
 *     rank  host       pid  cpus  threads  bind
 *        0  vm       28425  0           1  false
 *        1  vm       28426  1           1  false
 * one line per rank up to PLACEMENT_RANK_LINES ranks, one line per host above. `cpus` is where the
 * rank's OpenMP threads may run: the union of their affinity masks (sched_getaffinity in each
 * thread), i.e. the rank's binding (mpirun, srun) narrowed by OpenMP's (OMP_PROC_BIND: libgomp
 * pins the main thread to the first place at start and each worker to its own). `bind` is
 * OMP_PROC_BIND with the number of places. A warning follows when a host runs more threads (its
 * ranks x threads) than it has CPUs (the union of its ranks' lists), or a rank more threads than
 * its own CPUs: timings then measure function, not speed.
 */
#ifndef LONGVQ_PLACEMENT_H
#define LONGVQ_PLACEMENT_H

#include <sched.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* Above this many ranks the start-up log prints one line per host instead of one per rank. */
#define PLACEMENT_RANK_LINES 64

/* One rank's placement, gathered to rank 0 as a fixed-size record (every rank runs the same binary). */
typedef struct {
  int32_t rank, pid;
  int32_t threads;      /* OpenMP threads a parallel region gets */
  int32_t bind, places; /* omp_get_proc_bind(), omp_get_num_places() */
  char host[64];        /* gethostname */
  cpu_set_t cpus;       /* union of the OpenMP threads' affinity masks */
} placement_rank;

/* Collective. Applies `threads` (train.threads; 0 = leave the runtime's count) to this rank, then
 * gathers every rank's host, pid, CPU list and measured thread count, and rank 0 logs them (above).
 * Call from the train/eval setup, before any OpenMP or oneDNN work. */
void placement_setup(int64_t threads);

/* Local. This rank's OpenMP thread count as measured by placement_setup (before it:
 * omp_get_max_threads()). For metrics, e.g. a "threads" field in metrics.jsonl. */
int placement_threads(void);

/* Local. This rank's CPUs as placement_setup measured them (the union of its OpenMP threads'
 * masks), or NULL before it. Threads the trainer starts itself (the communication thread) run on
 * these: they would otherwise inherit the main thread's mask, which OMP_PROC_BIND narrows to the
 * first place, and share one core with OpenMP thread 0. */
const cpu_set_t *placement_cpus(void);

/* Local (rank 0's part of placement_setup, separate for tests). Prints the report of `world` records
 * (in rank order) to `out`: the "placement: W ranks x T threads (source), H hosts" line, then one
 * line per rank if world <= rank_lines, else one per host. `threads` is train.threads, `omp_env` the
 * OMP_NUM_THREADS rank 0 sees (NULL: unset). Puts the oversubscription warning into `warning` (cap
 * bytes; "" if none) and returns 1 if there is one. */
int placement_report(FILE *out, const placement_rank *all, int world, int64_t threads, const char *omp_env,
                     int rank_lines, char *warning, size_t cap);

/* Pure. The CPUs of `set` as ascending ranges, e.g. "0-3", "0,2-3" ("" for none). A list that
 * does not fit in `cap` bytes ends in "..."; cap >= 4. Returns `out`. */
char *placement_cpu_list(const cpu_set_t *set, char *out, size_t cap);

#endif
