/* A half-open range [lo, hi) of elements of a buffer: the unit in which the reducer shards the
 * gradients (ZeRO-1) and in which checkpoints store each rank's optimizer state. */
#ifndef LONGVQ_RANGE_H
#define LONGVQ_RANGE_H

#include <stddef.h>

typedef struct {
  size_t lo, hi;
} lv_range;

#endif
