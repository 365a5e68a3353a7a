/* Collective helpers for file I/O (part of the MPI boundary, with trainer/dist.h): agreeing on an
 * error that only some ranks saw, so that every rank takes the same branch with the same message. */
#ifndef LONGVQ_DIST_IO_H
#define LONGVQ_DIST_IO_H

#include <stddef.h>

/* Collective. Returns 1 on every rank if `local_bad` is set on any rank; then `err` (capacity cap,
 * NUL-terminated) holds, on every rank, the message of the lowest-numbered failing rank. */
int dist_io_agree_error(int local_bad, char *err, size_t cap);

/* Collective: n bytes from rank `root` to every rank (any size: sent in pieces below 1 GiB). */
void dist_io_bcast_from(void *buf, size_t n, int root);

/* Collective. Broadcasts a NUL-terminated string from rank 0: returns a malloc'd copy on every
 * rank (NULL on every rank if rank 0 passed NULL). */
char *dist_io_bcast_str(const char *s);

#endif
