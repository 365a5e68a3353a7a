/* Abort path shared by all check macros: report with the rank, then MPI_Abort. */
#include "trainer/check.h"

#include <hdf5.h>
#include <mpi.h>
#include <oneapi/dnnl/dnnl_debug.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

static int current_rank(void) {
  int init = 0, fin = 0, rank = 0;
  MPI_Initialized(&init);
  MPI_Finalized(&fin);
  if (init && !fin) MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  return rank;
}

_Noreturn static void abort_all(int code) {
  int init = 0, fin = 0, size = 1;
  fflush(stdout);
  fflush(stderr);
  MPI_Initialized(&init);
  MPI_Finalized(&fin);
  if (init && !fin) {
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    /* A single process exits quietly; with several ranks only MPI_Abort is sure to stop them all. */
    if (size > 1) MPI_Abort(MPI_COMM_WORLD, code);
  }
  exit(code);
}

_Noreturn void lv_fail(int code, const char *file, int line, const char *call, const char *msg) {
  fprintf(stderr, "[rank %d] %s:%d: %s: %s\n", current_rank(), file, line, call, msg);
  abort_all(code);
}

_Noreturn void lv_failf(int code, const char *file, int line, const char *fmt, ...) {
  char buf[2048];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  (void)file;
  (void)line;
  /* Our own messages already name the file/field at fault; the source location is noise for users
   * but useful for us, so it goes last. */
  fprintf(stderr, "[rank %d] error: %s (%s:%d)\n", current_rank(), buf, file, line);
  abort_all(code);
}

const char *lv_mpi_errstr(int err) {
  static char buf[MPI_MAX_ERROR_STRING + 1];
  int len = 0;
  if (MPI_Error_string(err, buf, &len) != MPI_SUCCESS) snprintf(buf, sizeof buf, "MPI error %d", err);
  return buf;
}

const char *lv_dnnl_errstr(int status) { return dnnl_status2str((dnnl_status_t)status); }

static herr_t walk_cb(unsigned n, const H5E_error2_t *e, void *data) {
  char *buf = data;
  if (n == 0) snprintf(buf, 512, "%s (in %s)", e->desc ? e->desc : "?", e->func_name ? e->func_name : "?");
  return 0;
}

const char *lv_h5_errstr(void) {
  static char buf[512];
  strcpy(buf, "HDF5 error");
  H5Ewalk2(H5E_DEFAULT, H5E_WALK_DOWNWARD, walk_cb, buf);
  return buf;
}

float *lv_alloc_floats(size_t n) {
  float *p = NULL;
  if (posix_memalign((void **)&p, 64, sizeof(float) * (n ? n : 1)) != 0) p = NULL;
  CHECK_ALLOC(p);
  memset(p, 0, sizeof(float) * n);
  return p;
}
