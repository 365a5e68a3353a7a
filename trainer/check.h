/* One family of check macros for every library we call.
 *
 * Each failure prints "[rank r] file:line: call: library message" to stderr and aborts the
 * whole MPI job (never a hang: MPI_Abort kills every rank). They stay on in release builds
 * because several guard user input (files, configs). Use DIE for our own fatal conditions.
 */
#ifndef LONGVQ_CHECK_H
#define LONGVQ_CHECK_H

#include <stdio.h>

/* Exit codes (documented in README "Exit codes"). */
enum {
  LV_EXIT_OK = 0,
  LV_EXIT_FAIL = 1,       /* runtime failure (library error, NaN, lost rank) */
  LV_EXIT_USAGE = 2,      /* bad command line, config or input data */
  LV_EXIT_REQUEUE = 3,    /* checkpointed on a signal: please requeue */
};

/* Print "[rank r] file:line: call: msg" and abort every rank with `code`. Never returns. */
_Noreturn void lv_fail(int code, const char *file, int line, const char *call, const char *msg);
/* printf-style variant of lv_fail. */
_Noreturn void lv_failf(int code, const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Library-specific message lookups (defined in check.c). */
const char *lv_mpi_errstr(int err);
const char *lv_dnnl_errstr(int status);
const char *lv_h5_errstr(void);

#define CHECK_MPI(call) do { int lv_e_ = (call); \
    if (lv_e_ != 0 /* MPI_SUCCESS */) lv_fail(LV_EXIT_FAIL, __FILE__, __LINE__, #call, lv_mpi_errstr(lv_e_)); } while (0)

#define CHECK_DNNL(call) do { int lv_e_ = (int)(call); \
    if (lv_e_ != 0 /* dnnl_success */) lv_fail(LV_EXIT_FAIL, __FILE__, __LINE__, #call, lv_dnnl_errstr(lv_e_)); } while (0)

/* HDF5 calls return a negative value on failure (hid_t or herr_t). */
#define CHECK_H5(call) do { if ((long long)(call) < 0) \
    lv_fail(LV_EXIT_FAIL, __FILE__, __LINE__, #call, lv_h5_errstr()); } while (0)

/* Allocation outside the step (arenas, plans). */
#define CHECK_ALLOC(ptr) do { if ((ptr) == NULL) \
    lv_fail(LV_EXIT_FAIL, __FILE__, __LINE__, #ptr, "out of memory"); } while (0)

#include <stddef.h>
/* The allocator of every float arena (parameters, gradients, moments, activations, scratch):
 * 64-byte aligned, zeroed here so pages are first touched at setup, not in the step; dies (via
 * CHECK_ALLOC) if memory runs out. Release with free(). */
float *lv_alloc_floats(size_t n);

/* Internal invariant or runtime failure we detected ourselves. */
#define DIE(...) lv_failf(LV_EXIT_FAIL, __FILE__, __LINE__, __VA_ARGS__)
/* Bad user input (file, config, command line) found on one rank: abort the job with exit code 2. */
#define DIE_INPUT(...) lv_failf(LV_EXIT_USAGE, __FILE__, __LINE__, __VA_ARGS__)

#endif
