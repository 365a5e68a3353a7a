/* Collective helpers for file I/O (see dist_io.h). */
#include "trainer/base/dist_io.h"

#include <mpi.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "trainer/base/check.h"
#include "trainer/base/dist.h"

int dist_io_agree_error(int local_bad, char *err, size_t cap) {
  int world = dist_size(), me = local_bad ? dist_rank() : world, first = world;
  CHECK_MPI(MPI_Allreduce(&me, &first, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD));
  if (first == world) return 0;
  if (cap == 0) return 1;
  err[cap - 1] = '\0';
  /* cap is the same on every rank (the callers pass fixed-size buffers) */
  size_t n = cap > (size_t)INT32_MAX ? (size_t)INT32_MAX : cap;
  CHECK_MPI(MPI_Bcast(err, (int)n, MPI_CHAR, first, MPI_COMM_WORLD));
  err[cap - 1] = '\0';
  return 1;
}

void dist_io_bcast_from(void *buf, size_t n, int root) {
  char *p = buf;
  while (n > 0) {
    int c = n > ((size_t)1 << 30) ? 1 << 30 : (int)n;
    CHECK_MPI(MPI_Bcast(p, c, MPI_BYTE, root, MPI_COMM_WORLD));
    p += c;
    n -= (size_t)c;
  }
}

char *dist_io_bcast_str(const char *s) {
  int64_t n = dist_is_root() ? (s ? (int64_t)strlen(s) + 1 : 0) : 0;
  dist_bcast_bytes(&n, sizeof n);
  if (n == 0) return NULL;
  char *out = malloc((size_t)n);
  CHECK_ALLOC(out);
  if (dist_is_root()) memcpy(out, s, (size_t)n);
  dist_bcast_bytes(out, (size_t)n);
  return out;
}
