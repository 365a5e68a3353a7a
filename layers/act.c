/* Elementwise activations (see act.h). Row kernels are `omp simd` loops; the public functions split
 * rows/elements over OpenMP threads when there is enough work. */
#include "layers/act.h"

#include <math.h>

#include "trainer/base/check.h"

#define INV_SQRT2 0.70710678118654752440f
#define INV_SQRT2PI 0.39894228040143267794f

/* ---- row kernels (serial, vectorized) ------------------------------------------------------ */

static void silu_fwd_k(float *y, const float *x, int64_t n) {
#pragma omp simd
  for (int64_t i = 0; i < n; i++) y[i] = x[i] * act_sigmoidf(x[i]);
}

/* silu'(a) = s (1 + a (1 - s)), with 1 - s = e^-a s computed without cancellation. */
static void silu_bwd_k(float *dx, const float *dy, const float *x, int64_t n) {
#pragma omp simd
  for (int64_t i = 0; i < n; i++) {
    float e = act_expf(-x[i]);
    float s = 1.0f / (1.0f + e);
    dx[i] += dy[i] * (s * (1.0f + x[i] * (e * s)));
  }
}

static void sigmoid_fwd_k(float *y, const float *x, int64_t n) {
#pragma omp simd
  for (int64_t i = 0; i < n; i++) y[i] = act_sigmoidf(x[i]);
}

/* sigmoid'(a) = s (1 - s) = s * (e^-a s). */
static void sigmoid_bwd_k(float *dx, const float *dy, const float *x, int64_t n) {
#pragma omp simd
  for (int64_t i = 0; i < n; i++) {
    float e = act_expf(-x[i]);
    float s = 1.0f / (1.0f + e);
    dx[i] += dy[i] * (s * (e * s));
  }
}

/* gelu(a) = a Phi(a) = a/2 erfc(-a/sqrt2): erfc keeps relative accuracy for negative a, where
 * 1 + erf(a/sqrt2) would cancel. gelu'(a) = Phi(a) + a phi(a). */
static void gelu_fwd_k(float *y, const float *x, int64_t n) {
  for (int64_t i = 0; i < n; i++) y[i] = 0.5f * x[i] * erfcf(-x[i] * INV_SQRT2);
}

static void gelu_bwd_k(float *dx, const float *dy, const float *x, int64_t n) {
  for (int64_t i = 0; i < n; i++) {
    float a = x[i];
    float g = 0.5f * erfcf(-a * INV_SQRT2) + a * INV_SQRT2PI * expf(-0.5f * a * a);
    dx[i] += dy[i] * g;
  }
}

static void none_fwd_k(float *y, const float *x, int64_t n) {
  if (y != x) memmove(y, x, sizeof(float) * (size_t)n);
}

static void none_bwd_k(float *dx, const float *dy, const float *x, int64_t n) {
  (void)x;
#pragma omp simd
  for (int64_t i = 0; i < n; i++) dx[i] += dy[i];
}

typedef void (*fwd_k)(float *, const float *, int64_t);
typedef void (*bwd_k)(float *, const float *, const float *, int64_t);

static fwd_k fwd_of(mm_act a) {
  switch (a) {
    case MM_ACT_NONE: return none_fwd_k;
    case MM_ACT_SILU: return silu_fwd_k;
    case MM_ACT_SIGMOID: return sigmoid_fwd_k;
    case MM_ACT_GELU_ERF: return gelu_fwd_k;
  }
  DIE("act: unknown activation %d", (int)a);
}

static bwd_k bwd_of(mm_act a) {
  switch (a) {
    case MM_ACT_NONE: return none_bwd_k;
    case MM_ACT_SILU: return silu_bwd_k;
    case MM_ACT_SIGMOID: return sigmoid_bwd_k;
    case MM_ACT_GELU_ERF: return gelu_bwd_k;
  }
  DIE("act: unknown activation %d", (int)a);
}

/* ---- 1-D: blocks of ACT_BLK elements, split over threads ------------------------------------ */

#define ACT_BLK 4096

static void run_fwd(fwd_k k, float *y, const float *x, int64_t n) {
  int64_t nb = (n + ACT_BLK - 1) / ACT_BLK;
#pragma omp parallel for schedule(static) if (n >= ACT_PAR_MIN)
  for (int64_t b = 0; b < nb; b++) {
    int64_t i0 = b * ACT_BLK, m = n - i0 < ACT_BLK ? n - i0 : ACT_BLK;
    k(y + i0, x + i0, m);
  }
}

static void run_bwd(bwd_k k, float *dx, const float *dy, const float *x, int64_t n) {
  int64_t nb = (n + ACT_BLK - 1) / ACT_BLK;
#pragma omp parallel for schedule(static) if (n >= ACT_PAR_MIN)
  for (int64_t b = 0; b < nb; b++) {
    int64_t i0 = b * ACT_BLK, m = n - i0 < ACT_BLK ? n - i0 : ACT_BLK;
    k(dx + i0, dy + i0, x + i0, m);
  }
}

void silu_forward(float *y, const float *x, int64_t n) { run_fwd(silu_fwd_k, y, x, n); }
void silu_backward(float *dx, const float *dy, const float *x, int64_t n) { run_bwd(silu_bwd_k, dx, dy, x, n); }
void sigmoid_forward(float *y, const float *x, int64_t n) { run_fwd(sigmoid_fwd_k, y, x, n); }
void sigmoid_backward(float *dx, const float *dy, const float *x, int64_t n) { run_bwd(sigmoid_bwd_k, dx, dy, x, n); }
void gelu_erf_forward(float *y, const float *x, int64_t n) { run_fwd(gelu_fwd_k, y, x, n); }
void gelu_erf_backward(float *dx, const float *dy, const float *x, int64_t n) { run_bwd(gelu_bwd_k, dx, dy, x, n); }

void act_forward(mm_act act, float *y, const float *x, int64_t n) { run_fwd(fwd_of(act), y, x, n); }
void act_backward(mm_act act, float *dx, const float *dy, const float *x, int64_t n) {
  run_bwd(bwd_of(act), dx, dy, x, n);
}

/* ---- 2-D strided: threads over rows ------------------------------------------------------- */

void act_forward_2d(mm_act act, float *y, int64_t ldy, const float *x, int64_t ldx, int64_t rows, int64_t cols) {
  if (!ldy) ldy = cols;
  if (!ldx) ldx = cols;
  if (ldy == cols && ldx == cols) { act_forward(act, y, x, rows * cols); return; }
  fwd_k k = fwd_of(act);
#pragma omp parallel for schedule(static) if (rows * cols >= ACT_PAR_MIN)
  for (int64_t r = 0; r < rows; r++) k(y + r * ldy, x + r * ldx, cols);
}

void act_backward_2d(mm_act act, float *dx, int64_t lddx, const float *dy, int64_t lddy, const float *x, int64_t ldx,
                     int64_t rows, int64_t cols) {
  if (!lddx) lddx = cols;
  if (!lddy) lddy = cols;
  if (!ldx) ldx = cols;
  if (lddx == cols && lddy == cols && ldx == cols) { act_backward(act, dx, dy, x, rows * cols); return; }
  bwd_k k = bwd_of(act);
#pragma omp parallel for schedule(static) if (rows * cols >= ACT_PAR_MIN)
  for (int64_t r = 0; r < rows; r++) k(dx + r * lddx, dy + r * lddy, x + r * ldx, cols);
}
