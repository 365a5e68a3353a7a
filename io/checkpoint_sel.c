/* Which elements of a tensor a rank holds, and how that becomes an HDF5 selection. */
#include <stdlib.h>

#include "io/checkpoint_internal.h"
#include "trainer/base/check.h"
#include "trainer/base/dist.h"
#include "trainer/base/hash.h"

int64_t lv_ckpt_chunk_floats = (int64_t)1 << 20;

static int by_a(const void *x, const void *y) {
  const lv_ckpt_piece *p = x, *q = y;
  return (p->a > q->a) - (p->a < q->a);
}

int lv_ckpt_pieces(const lv_tensor *t, const lv_range *ranges, const size_t *range_off, int n_ranges,
                   lv_ckpt_piece *out) {
  int n = 0;
  size_t lo_t = t->offset, hi_t = t->offset + (size_t)t->numel;
  for (int k = 0; k < n_ranges; k++) {
    size_t lo = ranges[k].lo > lo_t ? ranges[k].lo : lo_t, hi = ranges[k].hi < hi_t ? ranges[k].hi : hi_t;
    if (lo >= hi) continue;
    out[n++] = (lv_ckpt_piece){(int64_t)(lo - lo_t), (int64_t)(hi - lo_t), range_off[k] + (lo - ranges[k].lo)};
  }
  qsort(out, (size_t)n, sizeof *out, by_a);
  return n;
}

static void add_block(hid_t space, int ndim, hsize_t r, hsize_t c, hsize_t nr, hsize_t nc, int *first) {
  hsize_t start[2] = {r, c}, count[2] = {nr, nc};
  if (ndim == 1) start[0] = c, count[0] = nc;
  CHECK_H5(H5Sselect_hyperslab(space, *first ? H5S_SELECT_SET : H5S_SELECT_OR, start, NULL, count, NULL));
  *first = 0;
}

int64_t lv_ckpt_select(hid_t space, const lv_tensor *t, const lv_ckpt_piece *p, int n, int64_t shift) {
  int first = 1;
  int64_t total = 0;
  hsize_t cols = t->ndim == 2 ? (hsize_t)t->shape[1] : (hsize_t)t->numel;
  for (int i = 0; i < n; i++) {
    if (p[i].b <= p[i].a) continue;
    total += p[i].b - p[i].a;
    if (t->ndim == 1) {
      add_block(space, 1, 0, (hsize_t)(p[i].a - shift), 1, (hsize_t)(p[i].b - p[i].a), &first);
      continue;
    }
    hsize_t a = (hsize_t)(p[i].a - shift), b = (hsize_t)(p[i].b - shift);
    hsize_t r0 = a / cols, c0 = a % cols, r1 = b / cols, c1 = b % cols;
    if (r0 == r1) { /* within one row */
      add_block(space, 2, r0, c0, 1, c1 - c0, &first);
      continue;
    }
    if (c0 > 0) add_block(space, 2, r0, c0, 1, cols - c0, &first), r0++;
    if (r1 > r0) add_block(space, 2, r0, 0, r1 - r0, cols, &first);
    if (c1 > 0) add_block(space, 2, r1, 0, 1, c1, &first);
  }
  if (first) CHECK_H5(H5Sselect_none(space));
  return total;
}

int64_t lv_ckpt_chunk_dims(const lv_tensor *t, hsize_t *dims) {
  if (t->ndim == 1) {
    dims[0] = (hsize_t)(t->numel < lv_ckpt_chunk_floats ? t->numel : lv_ckpt_chunk_floats);
    return (int64_t)dims[0];
  }
  int64_t rows = lv_ckpt_chunk_floats / t->shape[1];
  if (rows < 1) rows = 1;
  if (rows > t->shape[0]) rows = t->shape[0];
  dims[0] = (hsize_t)rows;
  dims[1] = (hsize_t)t->shape[1];
  return rows * t->shape[1];
}

int64_t lv_ckpt_span(const lv_tensor *t, const lv_ckpt_piece *p, int n, hsize_t *dims) {
  int64_t cols = t->ndim == 2 ? t->shape[1] : 1, lo = t->numel, hi = 0;
  for (int i = 0; i < n; i++) {
    if (p[i].a < lo) lo = p[i].a;
    if (p[i].b > hi) hi = p[i].b;
  }
  if (hi <= lo) lo = hi = 0;
  int64_t r0 = lo / cols, r1 = (hi + cols - 1) / cols;
  dims[0] = (hsize_t)(r1 > r0 ? r1 - r0 : 1);
  dims[1] = (hsize_t)cols;
  return r0 * cols;
}

int lv_ckpt_contiguous(const lv_ckpt_piece *p, int n, int64_t *base) {
  *base = n > 0 ? (int64_t)p[0].mem - p[0].a : 0;
  for (int i = 1; i < n; i++)
    if ((int64_t)p[i].mem - p[i].a != *base) return 0;
  return 1;
}

int lv_ckpt_ranges_replicated(const lv_range *ranges, int n_ranges) {
  uint64_t h = lv_fnv1a(LV_FNV1A_INIT, &n_ranges, sizeof n_ranges);
  return dist_all_equal_u64(lv_fnv1a(h, ranges, sizeof(lv_range) * (size_t)n_ranges));
}
