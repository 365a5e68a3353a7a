/* AdamW exactly as torch.optim.AdamW, gradient clipping and the LR schedule (spec: Optimization). */
#ifndef LONGVQ_OPTIM_H
#define LONGVQ_OPTIM_H

#include <stddef.h>
#include <stdint.h>

#include "layers/params.h"

#define ADAMW_BETA1 0.9
#define ADAMW_BETA2 0.98
#define ADAMW_EPS 1e-8

/* Learning rate at step s = 1..steps: linear warmup, then linear or cosine decay to min_lr. */
double lr_at(int64_t s, int64_t steps, int64_t warmup, double lr, double min_lr, int cosine);

/* Sum of squares of g over floats [lo, hi) of the flat buffer (in double). */
double grad_sumsq(const float *g, size_t lo, size_t hi);

/* Clipping coefficient min(1, clip / (norm + 1e-6)); 1 when clip <= 0. */
double clip_coef(double norm, double clip);

/* One AdamW step on floats [lo, hi) of the flat buffers p and g (a bucket, or a ZeRO-1 segment);
 * m and v hold the moments of that range only: m[i - lo] belongs to p[i].
 *   g' = coef * g;  p *= 1 - lr*wd (decayed tensors only);  m = b1 m + (1-b1) g';  v = b2 v + (1-b2) g'^2;
 *   p -= lr * (m / (1 - b1^s)) / (sqrt(v / (1 - b2^s)) + eps)
 * step s counts from 1. Padding floats between tensors stay 0 (their gradient is 0). */
void adamw_update(const lv_layout *lay, float *p, const float *g, float *m, float *v, size_t lo, size_t hi,
                  double lr, double wd, double coef, int64_t s);

#endif
