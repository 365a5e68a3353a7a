/* A half-open range [lo, hi) of elements of a buffer: the unit in which the reducer shards the
 * gradients (ZeRO-1) and in which checkpoints store each rank's optimizer state; and the rounding
 * of sizes to a multiple. */
#ifndef LONGVQ_RANGE_H
#define LONGVQ_RANGE_H

#include <stddef.h>

typedef struct {
  size_t lo, hi;
} lv_range;

/* n rounded up to a multiple of m (m > 0): padded sizes of buffers, lanes and chunks. */
static inline size_t lv_round_up(size_t n, size_t m) { return (n + m - 1) / m * m; }

#endif
