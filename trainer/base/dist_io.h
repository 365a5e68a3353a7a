/* Collective helpers for file I/O (part of the MPI boundary, with trainer/dist.h): agreeing on an
 * error that only some ranks saw, so that every rank takes the same branch with the same message. */
#ifndef LONGVQ_DIST_IO_H
#define LONGVQ_DIST_IO_H

#include <stddef.h>

/* Collective. Broadcasts a NUL-terminated string from rank 0: returns a malloc'd copy on every
 * rank (NULL on every rank if rank 0 passed NULL). */
char *dist_io_bcast_str(const char *s);

#endif
