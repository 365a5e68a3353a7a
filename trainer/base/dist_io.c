/* Collective helpers for file I/O (see dist_io.h). */
#include "trainer/base/dist_io.h"

#include <mpi.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "trainer/base/check.h"
#include "trainer/base/dist.h"

char *dist_io_bcast_str(const char *s) {
  int64_t n = dist_is_root() ? (s ? (int64_t)strlen(s) + 1 : 0) : 0;
  dist_bcast_from(&n, sizeof n, 0);
  if (n == 0) return NULL;
  char *out = malloc((size_t)n);
  CHECK_ALLOC(out);
  if (dist_is_root()) memcpy(out, s, (size_t)n);
  dist_bcast_from(out, (size_t)n, 0);
  return out;
}
