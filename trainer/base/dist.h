/* The MPI boundary: every MPI call of the trainer lives behind these intent-named functions.
 * Each says whether it is collective (every rank of the world must call it, in the same order). */
#ifndef LONGVQ_DIST_H
#define LONGVQ_DIST_H

#include <stddef.h>
#include <stdint.h>

/* Collective. MPI_Init_thread(MULTIPLE) and MPI_ERRORS_RETURN on the world communicator so that
 * CHECK_MPI sees every error. Safe without mpirun (singleton). */
void dist_init(int *argc, char ***argv);
/* Collective. */
void dist_finalize(void);
/* Local. */
int dist_rank(void);
int dist_size(void);
static inline int dist_is_root(void) { return dist_rank() == 0; }
/* Collective. */
void dist_barrier(void);
/* Collective: true on every rank if `local_failed` is true on any rank. Lets all ranks leave
 * together after an error that each rank detected for itself (e.g. a bad config). */
int dist_any(int local_failed);
/* Collective: n bytes from rank `root` to every rank (any size: sent in pieces below 2 GiB). */
void dist_bcast_from(void *buf, size_t n, int root);
/* Collective. The lowest rank with `local_bad` set, or -1 if none; then `err` (capacity cap, the same
 * on every rank, NUL-terminated) holds that rank's message on every rank, and *n_bad (may be NULL)
 * how many ranks are bad. */
int dist_first_error(int local_bad, char *err, size_t cap, int *n_bad);
/* Collective: rank r's n bytes at `mine` land at all + r*n on rank 0 (`all` holds world x n bytes
 * there; elsewhere it is unused and may be NULL). Fixed-size records, e.g. per-rank placement. */
void dist_gather_bytes(const void *mine, void *all, size_t n);
/* Collective: in-place sum over ranks. */
void dist_sum_f64(double *buf, size_t n);
void dist_sum_i64(int64_t *buf, size_t n);
void dist_sum_f32(float *buf, size_t n);
/* Collective: in-place max over ranks. */
void dist_max_f64(double *buf, size_t n);
/* Collective: 1 if `value` is the same on every rank, else 0 (replica-consistency checks). */
int dist_all_equal_u64(uint64_t value);

#endif
