/* Reference dropout: element (b, t, f) is dropped iff rng_uniform(stream(b), t*W + f) < p. */
#include "layers/ref/dropout_ref.h"

#include "trainer/base/rng.h"

static double factor(const dropout_cfg *c, int64_t b, int64_t t, int64_t f, int64_t W) {
  if (c->p == 0.0f) return 1.0;
  rng_stream s = rng_make(c->seed, c->domain, c->step, (uint32_t)(c->sample0 + b));
  if (rng_uniform(&s, (uint64_t)(t * W + f)) < (double)c->p) return 0.0;
  return 1.0 / (1.0 - (double)c->p);
}

void dropout_forward_ref(double *y, const double *x, const dropout_cfg *cfg, int64_t B, int64_t L, int64_t W) {
  for (int64_t b = 0; b < B; b++)
    for (int64_t t = 0; t < L; t++)
      for (int64_t f = 0; f < W; f++) {
        int64_t i = (b * L + t) * W + f;
        y[i] = x[i] * factor(cfg, b, t, f, W);
      }
}

void dropout_backward_ref(double *dx, const double *dy, const dropout_cfg *cfg, int64_t B, int64_t L, int64_t W) {
  for (int64_t b = 0; b < B; b++)
    for (int64_t t = 0; t < L; t++)
      for (int64_t f = 0; f < W; f++) {
        int64_t i = (b * L + t) * W + f;
        dx[i] += dy[i] * factor(cfg, b, t, f, W);
      }
}
