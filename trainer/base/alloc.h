/* The allocator of every float arena (parameters, gradients, moments, activations, scratch). */
#ifndef LONGVQ_ALLOC_H
#define LONGVQ_ALLOC_H

#include <stddef.h>

/* n floats, 64-byte aligned, zeroed here so pages are first touched at setup, not in the step; dies
 * (CHECK_ALLOC) if memory runs out. Release with free(). */
float *lv_alloc_floats(size_t n);

/* A cursor over an arena: lv_carve hands out slices of n floats, each 64-byte aligned (rounded up to
 * 16 floats) when base is; with base == NULL it only counts, so the same code is the memory plan
 * (pure) and the allocation (layers/model.c, layers/decode.c). */
typedef struct {
  float *base;
  size_t used;
} lv_cursor;

static inline float *lv_carve(lv_cursor *c, size_t n) {
  float *p = c->base ? c->base + c->used : NULL;
  c->used += (n + 15) & ~(size_t)15;
  return p;
}

#endif
