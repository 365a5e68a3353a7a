/* MPI behind one boundary (see dist.h). */
#include "trainer/base/dist.h"

#include <limits.h>
#include <mpi.h>
#include <stdlib.h>

#include "trainer/base/check.h"

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
}

void dist_finalize(void) { CHECK_MPI(MPI_Finalize()); }
int dist_rank(void) { return g_rank; }
int dist_size(void) { return g_size; }
void dist_barrier(void) { CHECK_MPI(MPI_Barrier(MPI_COMM_WORLD)); }

int dist_any(int local_failed) {
  int in = local_failed ? 1 : 0, out = 0;
  CHECK_MPI(MPI_Allreduce(&in, &out, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD));
  return out;
}

void dist_bcast_from(void *buf, size_t n, int root) {
  char *p = buf;
  while (n > 0) { /* MPI counts are int: send in pieces below 2 GiB */
    int c = n > (size_t)INT_MAX ? INT_MAX : (int)n;
    CHECK_MPI(MPI_Bcast(p, c, MPI_BYTE, root, MPI_COMM_WORLD));
    p += c;
    n -= (size_t)c;
  }
}

int dist_first_error(int local_bad, char *err, size_t cap, int *n_bad) {
  int world = dist_size(), me = local_bad ? dist_rank() : world, first = world, count = local_bad != 0;
  CHECK_MPI(MPI_Allreduce(MPI_IN_PLACE, &count, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD));
  if (n_bad) *n_bad = count;
  if (count == 0) return -1;
  CHECK_MPI(MPI_Allreduce(&me, &first, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD));
  if (cap == 0) return first;
  err[cap - 1] = '\0';
  dist_bcast_from(err, cap, first);
  return first;
}

void dist_gather_bytes(const void *mine, void *all, size_t n) {
  if (n > (size_t)INT_MAX) DIE("dist_gather_bytes: %zu bytes per rank, more than an MPI count holds", n);
  CHECK_MPI(MPI_Gather(mine, (int)n, MPI_BYTE, all, (int)n, MPI_BYTE, 0, MPI_COMM_WORLD));
}

void dist_sum_f64(double *buf, size_t n) {
  CHECK_MPI(MPI_Allreduce(MPI_IN_PLACE, buf, (int)n, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD));
}
void dist_sum_i64(int64_t *buf, size_t n) {
  CHECK_MPI(MPI_Allreduce(MPI_IN_PLACE, buf, (int)n, MPI_INT64_T, MPI_SUM, MPI_COMM_WORLD));
}
void dist_sum_f32(float *buf, size_t n) {
  while (n > 0) { /* int counts: reduce in pieces below 2^30 floats */
    int c = n > ((size_t)1 << 30) ? 1 << 30 : (int)n;
    CHECK_MPI(MPI_Allreduce(MPI_IN_PLACE, buf, c, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD));
    buf += c;
    n -= (size_t)c;
  }
}
void dist_max_f64(double *buf, size_t n) {
  CHECK_MPI(MPI_Allreduce(MPI_IN_PLACE, buf, (int)n, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD));
}

int dist_all_equal_u64(uint64_t value) {
  uint64_t lo = value, hi = value;
  CHECK_MPI(MPI_Allreduce(MPI_IN_PLACE, &lo, 1, MPI_UINT64_T, MPI_MIN, MPI_COMM_WORLD));
  CHECK_MPI(MPI_Allreduce(MPI_IN_PLACE, &hi, 1, MPI_UINT64_T, MPI_MAX, MPI_COMM_WORLD));
  return lo == hi;
}
