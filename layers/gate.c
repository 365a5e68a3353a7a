/* Gated residual (see gate.h). */
#include "layers/gate.h"

#define PAR_MIN 32768

void gate_forward(float *y, const float *x, const float *u, const float *h, int64_t n) {
#pragma omp parallel for simd schedule(static) if (n >= PAR_MIN)
  for (int64_t i = 0; i < n; i++) y[i] = x[i] + u[i] * (h[i] - x[i]);
}

void gate_backward(float *dx, float *du, float *dh, const float *dy, const float *x, const float *u, const float *h,
                   int64_t n) {
  if (dx) {
#pragma omp parallel for simd schedule(static) if (n >= PAR_MIN)
    for (int64_t i = 0; i < n; i++) dx[i] += dy[i] * (1.0f - u[i]);
  }
  if (du) {
#pragma omp parallel for simd schedule(static) if (n >= PAR_MIN)
    for (int64_t i = 0; i < n; i++) du[i] += dy[i] * (h[i] - x[i]);
  }
  if (dh) {
#pragma omp parallel for simd schedule(static) if (n >= PAR_MIN)
    for (int64_t i = 0; i < n; i++) dh[i] += dy[i] * u[i];
  }
}
