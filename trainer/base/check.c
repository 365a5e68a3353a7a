/* Abort path shared by all check macros: report with the rank, then MPI_Abort. */
#include "trainer/base/check.h"

#include <hdf5.h>
#include <mpi.h>
#include <oneapi/dnnl/dnnl_debug.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "trainer/base/dist.h"

static int current_rank(void) {
  int init = 0, fin = 0, rank = 0;
  MPI_Initialized(&init);
  MPI_Finalized(&fin);
  if (init && !fin) MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  return rank;
}

static void (*g_on_abort)(void);

void lv_on_abort(void (*fn)(void)) { g_on_abort = fn; }

_Noreturn static void abort_all(int code) {
  int init = 0, fin = 0, size = 1;
  void (*on_abort)(void) = g_on_abort;
  g_on_abort = NULL; /* once, even if it fails a check itself */
  if (on_abort) on_abort();
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

/* The collective form (check.h): the lowest bad rank's message reaches rank 0, which prints it. */
static void check_all_v(int code, int bad, const char *fmt, va_list ap) {
  char msg[4096] = ""; /* one rank's message: a config's list of errors fits */
  if (bad) vsnprintf(msg, sizeof msg, fmt, ap);
  int n_bad = 0, world = dist_size();
  int first = dist_first_error(bad, msg, sizeof msg, &n_bad);
  if (first < 0) return;
  if (dist_is_root()) {
    char where[64] = "";
    if (world > 1 && (first > 0 || n_bad < world))
      snprintf(where, sizeof where, " (rank %d%s of %d)", first, n_bad > 1 ? " and others" : "", world);
    fprintf(stderr, "longvq: error: %s%s\n", msg, where);
    fflush(stderr);
  }
  fflush(stdout);
  dist_finalize();
  exit(code);
}

void lv_check_all(int code, int bad, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  check_all_v(code, bad, fmt, ap);
  va_end(ap);
}

_Noreturn void lv_fail_all(int code, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  check_all_v(code, 1, fmt, ap);
  va_end(ap);
  exit(code); /* not reached: check_all_v exits when bad */
}

const char *lv_mpi_errstr(int err) {
  static char buf[MPI_MAX_ERROR_STRING + 1];
  int len = 0;
  if (MPI_Error_string(err, buf, &len) != MPI_SUCCESS) snprintf(buf, sizeof buf, "MPI error %d", err);
  return buf;
}

const char *lv_dnnl_errstr(int status) { return dnnl_status2str((dnnl_status_t)status); }

/* Walking upward, entry 0 is where the error started: the most specific message. */
static herr_t innermost_cb(unsigned n, const H5E_error2_t *e, void *data) {
  if (n == 0) snprintf(data, 512, "%s", e->desc ? e->desc : "HDF5 error");
  return 0;
}

const char *lv_h5_errstr(void) {
  static char buf[512];
  strcpy(buf, "HDF5 error");
  H5Ewalk2(H5E_DEFAULT, H5E_WALK_UPWARD, innermost_cb, buf);
  return buf;
}
