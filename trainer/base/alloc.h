/* The allocator of every float arena (parameters, gradients, moments, activations, scratch). */
#ifndef LONGVQ_ALLOC_H
#define LONGVQ_ALLOC_H

#include <stddef.h>

/* n floats, 64-byte aligned, zeroed here so pages are first touched at setup, not in the step; dies
 * (CHECK_ALLOC) if memory runs out. Release with free(). */
float *lv_alloc_floats(size_t n);

#endif
