/* Softmax cross-entropy (see xent.h). */
#include "layers/xent.h"

#include <math.h>

#include "layers/act.h"
#include "trainer/base/check.h"

#define NCHUNK 256

size_t xent_saved_floats(int64_t R) { return (size_t)(2 * R); }

static int counted(const int32_t *targets, const float *mask, int64_t r) {
  return (!mask || mask[r] != 0.0f) && targets[r] >= 0;
}

void xent_forward(xent_stats *stats, double *nll, const float *logits, const int32_t *targets, const float *mask,
                  float *saved, int64_t R, int64_t K) {
  for (int64_t r = 0; r < R; r++)
    if (counted(targets, mask, r) && targets[r] >= K)
      DIE("xent_forward: target %d of row %lld is not a class in [0, %lld)", (int)targets[r], (long long)r,
          (long long)K);
  float *mx = saved, *ls = saved + R;
  double part_loss[NCHUNK];
  int64_t part_cnt[NCHUNK], part_ok[NCHUNK];
#pragma omp parallel for schedule(static) if (R * K >= 32768)
  for (int64_t c = 0; c < NCHUNK; c++) {
    int64_t r0 = c * R / NCHUNK, r1 = (c + 1) * R / NCHUNK;
    double loss = 0;
    int64_t cnt = 0, ok = 0;
    for (int64_t r = r0; r < r1; r++) {
      const float *l = logits + r * K;
      /* the max vectorizes; then its first index (ties to the lowest class), an early-exit scan */
      float m = l[0];
#pragma omp simd reduction(max : m)
      for (int64_t j = 1; j < K; j++) m = l[j] > m ? l[j] : m;
      int64_t am = 0;
      while (am < K - 1 && l[am] != m) am++; /* bounded: a NaN row never matches */
      float s = 0; /* float lanes: each term is in (0, 1], K terms; the log is taken in double */
#pragma omp simd reduction(+ : s)
      for (int64_t j = 0; j < K; j++) s += act_expf(l[j] - m);
      double lg = log((double)s);
      mx[r] = m;
      ls[r] = (float)lg;
      if (nll) nll[r] = 0;
      if (!counted(targets, mask, r)) continue;
      double row = (double)m + lg - (double)l[targets[r]];
      if (nll) nll[r] = row;
      loss += row;
      cnt++;
      ok += am == targets[r];
    }
    part_loss[c] = loss;
    part_cnt[c] = cnt;
    part_ok[c] = ok;
  }
  xent_stats st = {0, 0, 0};
  for (int c = 0; c < NCHUNK; c++) {
    st.loss_sum += part_loss[c];
    st.count += part_cnt[c];
    st.correct += part_ok[c];
  }
  *stats = st;
}

void xent_backward(float *dlogits, double scale, const float *logits, const int32_t *targets, const float *mask,
                   const float *saved, int64_t R, int64_t K) {
  const float *mx = saved, *ls = saved + R;
  float sc = (float)scale;
#pragma omp parallel for schedule(static) if (R * K >= 32768)
  for (int64_t r = 0; r < R; r++) {
    if (!counted(targets, mask, r)) continue;
    const float *l = logits + r * K;
    float *d = dlogits + r * K;
    float m = mx[r], lg = ls[r];
#pragma omp simd
    for (int64_t j = 0; j < K; j++) d[j] += sc * act_expf((l[j] - m) - lg);
    d[targets[r]] -= sc;
  }
}
