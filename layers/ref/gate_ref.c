/* Reference gated residual in double. */
#include "layers/ref/gate_ref.h"

#include <stddef.h>

void gate_forward_ref(double *y, const double *x, const double *u, const double *h, int64_t n) {
  for (int64_t i = 0; i < n; i++) y[i] = (1.0 - u[i]) * x[i] + u[i] * h[i];
}

void gate_backward_ref(double *dx, double *du, double *dh, const double *dy, const double *x, const double *u,
                       const double *h, int64_t n) {
  for (int64_t i = 0; i < n; i++) {
    if (dx) dx[i] += dy[i] * (1.0 - u[i]);
    if (du) du[i] += dy[i] * (h[i] - x[i]);
    if (dh) dh[i] += dy[i] * u[i];
  }
}
