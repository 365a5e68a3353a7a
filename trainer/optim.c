#include "trainer/optim.h"

#include <math.h>

double lr_at(int64_t s, int64_t steps, int64_t warmup, double lr, double min_lr, int cosine) {
  if (warmup > 0 && s <= warmup) return lr * (double)s / (double)warmup;
  if (steps <= warmup) return lr;
  double p = (double)(s - warmup) / (double)(steps - warmup);
  if (cosine) return min_lr + (lr - min_lr) * (1.0 + cos(M_PI * p)) / 2.0;
  return lr + (min_lr - lr) * p;
}

double grad_sumsq(const float *g, size_t lo, size_t hi) {
  double s = 0;
#pragma omp parallel for reduction(+ : s) schedule(static)
  for (size_t i = lo; i < hi; i++) s += (double)g[i] * g[i];
  return s;
}

double clip_coef(double norm, double clip) {
  if (clip <= 0) return 1.0;
  double c = clip / (norm + 1e-6);
  return c < 1.0 ? c : 1.0;
}

void adamw_update(const lv_layout *lay, float *p, const float *g, float *m, float *v, size_t lo, size_t hi,
                  double lr, double wd, double coef, int64_t s) {
  const double b1 = ADAMW_BETA1, b2 = ADAMW_BETA2;
  const double bc1 = 1.0 - pow(b1, (double)s), bc2 = 1.0 - pow(b2, (double)s);
  /* torch computes step_size = lr / bc1 and denom = sqrt(v)/sqrt(bc2) + eps, in float32 tensors. */
  const float step_size = (float)(lr / bc1), bc2_sqrt = (float)sqrt(bc2);
  const float fb1 = (float)b1, fb2 = (float)b2, fcoef = (float)coef, eps = (float)ADAMW_EPS;
  for (int t = 0; t < lay->n_params; t++) {
    const lv_tensor *T = &lay->params[t];
    size_t a = T->offset > lo ? T->offset : lo;
    size_t b = T->offset + (size_t)T->numel < hi ? T->offset + (size_t)T->numel : hi;
    if (a >= b) continue;
    const float decay = T->decay ? (float)(1.0 - lr * wd) : 1.0f;
#pragma omp parallel for schedule(static) if (b - a > 65536)
    for (size_t i = a; i < b; i++) {
      float gi = g[i] * fcoef;
      float pi = p[i] * decay;
      float mi = fb1 * m[i - lo] + (1.0f - fb1) * gi;
      float vi = fb2 * v[i - lo] + (1.0f - fb2) * gi * gi;
      m[i - lo] = mi;
      v[i - lo] = vi;
      p[i] = pi - step_size * mi / (sqrtf(vi) / bc2_sqrt + eps);
    }
  }
}
