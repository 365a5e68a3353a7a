/* Finite-difference gradient checks in double precision (ggml-style).
 *
 * A layer's double-precision reference twin is wrapped in a scalar loss
 *   loss(x) = sum_i R_i * out_i(x)        (R: fixed random weights, so every output is exercised)
 * and its analytic gradient is compared with central differences
 *   fd_i = (loss(x + h e_i) - loss(x - h e_i)) / (2h)
 * entry by entry. The error of one entry is |fd - an| / max(|fd| + |an|, floor): relative where the
 * gradient is large, absolute below `floor` (tiny gradients are dominated by O(h^2) truncation). */
#ifndef LONGVQ_GRADCHECK_H
#define LONGVQ_GRADCHECK_H

#include <math.h>
#include <stdint.h>
#include <stdio.h>

/* Evaluates the scalar loss in double from the current contents of the checked arrays. */
typedef double (*gc_loss_fn)(void *ctx);

/* Checks grad (n entries) against central differences on x (perturbed in place, then restored).
 * Prints "name: max rel err E over n entries" and returns E. */
static inline double gc_check(const char *name, gc_loss_fn loss, void *ctx, double *x, const double *grad,
                              int64_t n, double h) {
  const double floor_ = 1e-7;
  double worst = 0;
  int64_t worst_i = -1;
  for (int64_t i = 0; i < n; i++) {
    double x0 = x[i];
    x[i] = x0 + h;
    double lp = loss(ctx);
    x[i] = x0 - h;
    double lm = loss(ctx);
    x[i] = x0;
    double fd = (lp - lm) / (2 * h);
    double den = fabs(fd) + fabs(grad[i]);
    double err = fabs(fd - grad[i]) / (den > floor_ ? den : floor_);
    if (err > worst || isnan(err)) { worst = isnan(err) ? INFINITY : err; worst_i = i; }
  }
  printf("gradcheck %-32s max rel err %.3e over %lld entries (worst at %lld)\n", name, worst, (long long)n,
         (long long)worst_i);
  return worst;
}

/* Deterministic test values in [-scale, scale). */
static inline void gc_fill(double *x, int64_t n, unsigned seed, double scale) {
  uint64_t s = seed * 0x9E3779B97F4A7C15ull + 1;
  for (int64_t i = 0; i < n; i++) {
    s ^= s << 13; s ^= s >> 7; s ^= s << 17;
    x[i] = ((double)(s >> 11) * 0x1p-53 * 2 - 1) * scale;
  }
}

#endif
