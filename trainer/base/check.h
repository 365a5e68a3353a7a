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

/* Local. `fn` runs on this rank when a check or DIE ends the job, before MPI_Abort (which skips
 * atexit handlers): e.g. removing a lock file this rank holds. One function, run once; it must not
 * call MPI. */
void lv_on_abort(void (*fn)(void));

/* Library-specific message lookups (defined in check.c). */
const char *lv_mpi_errstr(int err);
const char *lv_dnnl_errstr(int status);
const char *lv_h5_errstr(void); /* the innermost (most specific) entry of HDF5's error stack */

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


/* Our own fatal conditions come in two forms, by who knows:
 *
 * ONLY THIS RANK KNOWS (Local): it prints "[rank r] error: msg (file:line)" and MPI_Abort ends every
 * rank with the code. DIE for an internal invariant or runtime failure, DIE_INPUT for bad user input
 * (a file, a config value, the command line) found on this rank alone (exit code 2).
 *
 * ALL RANKS AGREE (Collective: every rank calls it, each with its own verdict `bad`): if any rank is
 * bad, rank 0 prints the message of the lowest bad rank once, "longvq: error: msg" (followed by
 * "(rank r of W)" when that is not rank 0 or not every rank), and every rank finalizes MPI and exits
 * with the code: an orderly end, no MPI_Abort noise. Returns only if no rank is bad. CHECK_INPUT_ALL
 * for user input some ranks may find bad (a file one rank cannot read), DIE_INPUT_ALL for an error
 * every rank found identically (they all read the same config and files), FAIL_ALL(code, ...) for a
 * runtime condition every rank saw (a non-finite loss after the reduction). */
#define DIE(...) lv_failf(LV_EXIT_FAIL, __FILE__, __LINE__, __VA_ARGS__)
#define DIE_INPUT(...) lv_failf(LV_EXIT_USAGE, __FILE__, __LINE__, __VA_ARGS__)

void lv_check_all(int code, int bad, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
_Noreturn void lv_fail_all(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
#define CHECK_INPUT_ALL(bad, ...) lv_check_all(LV_EXIT_USAGE, (bad), __VA_ARGS__)
#define DIE_INPUT_ALL(...) lv_fail_all(LV_EXIT_USAGE, __VA_ARGS__)
#define FAIL_ALL(code, ...) lv_fail_all((code), __VA_ARGS__)

#endif
