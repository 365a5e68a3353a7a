/* MPI behind one boundary (see dist.h). */
#include "trainer/base/dist.h"

#include <limits.h>
#include <mpi.h>
#include <stdlib.h>

#include "trainer/base/check.h"
#include "trainer/base/watchdog.h"

static int g_rank = 0, g_size = 1;

void dist_init(int *argc, char ***argv) {
  int provided = 0;
  CHECK_MPI(MPI_Init_thread(argc, argv, MPI_THREAD_MULTIPLE, &provided));
  /* Without this the default handler aborts before CHECK_MPI can say what failed. */
  CHECK_MPI(MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN));
  CHECK_MPI(MPI_Comm_rank(MPI_COMM_WORLD, &g_rank));
  CHECK_MPI(MPI_Comm_size(MPI_COMM_WORLD, &g_size));
  if (provided < MPI_THREAD_MULTIPLE)
    DIE("MPI provides thread level %d, the trainer needs MPI_THREAD_MULTIPLE", provided);
  if (g_size > 1) watchdog_start(); /* a stuck rank must not leave the others waiting forever */
}

void dist_finalize(void) {
  if (g_size > 1) { /* every rank got here alive: the watchdog has nothing left to watch */
    watchdog_phase(LV_PHASE_END, -1);
    dist_barrier();
    watchdog_stop();
  }
  CHECK_MPI(MPI_Finalize());
}
int dist_rank(void) { return g_rank; }
int dist_size(void) { return g_size; }
/* Every collective below first waits, sleeping, until every rank has arrived (dist_arrive), then
 * runs the blocking collective with every rank present: a rank waiting for a slow or stuck one does
 * not spin, the watchdog sees what it waits for, and the data moves with Open MPI's tuned
 * algorithms. */
void dist_barrier(void) {
  dist_arrive("barrier");
  watchdog_wait_end();
}

/* In-place all-reduce of n elements, waited for as `what`. */
static void allreduce(void *buf, int n, MPI_Datatype type, MPI_Op op, const char *what) {
  dist_arrive(what);
  CHECK_MPI(MPI_Allreduce(MPI_IN_PLACE, buf, n, type, op, MPI_COMM_WORLD));
  watchdog_wait_end();
}

int dist_any(int local_failed) {
  int any = local_failed ? 1 : 0;
  allreduce(&any, 1, MPI_INT, MPI_MAX, "vote over ranks");
  return any;
}

void dist_bcast_from(void *buf, size_t n, int root) {
  char *p = buf;
  dist_arrive("broadcast");
  while (n > 0) { /* MPI counts are int: send in pieces below 2 GiB */
    int c = n > (size_t)INT_MAX ? INT_MAX : (int)n;
    CHECK_MPI(MPI_Bcast(p, c, MPI_BYTE, root, MPI_COMM_WORLD));
    p += c;
    n -= (size_t)c;
  }
  watchdog_wait_end();
}

int dist_first_error(int local_bad, char *err, size_t cap, int *n_bad) {
  int world = dist_size(), me = local_bad ? dist_rank() : world, first = world, count = local_bad != 0;
  allreduce(&count, 1, MPI_INT, MPI_SUM, "error vote");
  if (n_bad) *n_bad = count;
  if (count == 0) return -1;
  first = me;
  allreduce(&first, 1, MPI_INT, MPI_MIN, "error vote");
  if (cap == 0) return first;
  err[cap - 1] = '\0';
  dist_bcast_from(err, cap, first);
  return first;
}

void dist_gather_bytes(const void *mine, void *all, size_t n) {
  if (n > (size_t)INT_MAX) DIE("dist_gather_bytes: %zu bytes per rank, more than an MPI count holds", n);
  dist_arrive("gather");
  CHECK_MPI(MPI_Gather(mine, (int)n, MPI_BYTE, all, (int)n, MPI_BYTE, 0, MPI_COMM_WORLD));
  watchdog_wait_end();
}

void dist_sum_f64(double *buf, size_t n) {
  allreduce(buf, (int)n, MPI_DOUBLE, MPI_SUM, "sum over ranks");
}
void dist_sum_i64(int64_t *buf, size_t n) {
  allreduce(buf, (int)n, MPI_INT64_T, MPI_SUM, "sum over ranks");
}
void dist_sum_f32(float *buf, size_t n) {
  while (n > 0) { /* int counts: reduce in pieces below 2^30 floats */
    int c = n > ((size_t)1 << 30) ? 1 << 30 : (int)n;
    allreduce(buf, c, MPI_FLOAT, MPI_SUM, "sum over ranks");
    buf += c;
    n -= (size_t)c;
  }
}
void dist_max_f64(double *buf, size_t n) {
  allreduce(buf, (int)n, MPI_DOUBLE, MPI_MAX, "max over ranks");
}

int dist_all_equal_u64(uint64_t value) {
  uint64_t lo = value, hi = value;
  allreduce(&lo, 1, MPI_UINT64_T, MPI_MIN, "equality check over ranks");
  allreduce(&hi, 1, MPI_UINT64_T, MPI_MAX, "equality check over ranks");
  return lo == hi;
}
