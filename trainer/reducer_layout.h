/* The reducer's bucket layout as a pure function (no MPI): trainer/reducer.c builds its buckets from
 * it, `longvq profile` writes it into a step profile, and the SMPI step skeleton
 * (launch/sim/skeleton.c) compiles this same file to issue the same reductions at any world size.
 *
 * Layout (see reducer.h): the gradient buffer is padded to a multiple of unit = world*16 floats and
 * cut into buckets of about `bucket_floats` (rounded up to a multiple of unit), numbered from the END
 * of the buffer (backward finishes the last tensors first); bucket 0 is the statistics buffer
 * (double, padded the same way). */
#ifndef LONGVQ_REDUCER_LAYOUT_H
#define LONGVQ_REDUCER_LAYOUT_H

#include <stddef.h>

typedef struct {
  size_t lo, hi;     /* elements of its buffer; hi - lo is a multiple of world*16 */
  int f64;           /* 1: the statistics (double), 0: gradients (float) */
  int scatter_only;  /* ZeRO-1 gradient bucket: reduce-scatter only (the params are all-gathered later) */
} reducer_span;

/* Floats the gradient buffer must have (padded to world*16). Pure. */
size_t reducer_grad_floats(size_t n_grad, int world);
/* Doubles the statistics buffer must have (padded to world*16). Pure. */
size_t reducer_stat_doubles(size_t n_stat, int world);
/* Pure. The number of buckets (statistics + gradient buckets); fills out[0 .. min(count, cap)) in the
 * order they are reduced. out may be NULL (cap 0) to ask for the count. */
int reducer_layout(size_t n_grad, size_t n_stat, size_t bucket_floats, int world, int zero, reducer_span *out,
                   int cap);

#endif
