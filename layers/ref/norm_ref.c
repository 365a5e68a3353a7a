/* Reference norms in double. */
#include "layers/ref/norm_ref.h"

#include <math.h>

/* Per-row mean (0 if !center) and rstd. */
static void stats(const double *xr, int64_t D, int center, double *mean, double *rstd) {
  double m = 0, v = 0;
  if (center) {
    for (int64_t j = 0; j < D; j++) m += xr[j];
    m /= (double)D;
  }
  for (int64_t j = 0; j < D; j++) v += (xr[j] - m) * (xr[j] - m);
  *mean = m;
  *rstd = 1.0 / sqrt(v / (double)D + NORM_EPS);
}

/* w_j: per-column weight, or the scalar ws when w == NULL. */
static void fwd(double *y, const double *x, const double *w, double ws, const double *b, int center, double *saved,
                int64_t rows, int64_t D) {
  for (int64_t r = 0; r < rows; r++) {
    double m, rs;
    stats(x + r * D, D, center, &m, &rs);
    saved[r] = m;
    saved[rows + r] = rs;
    for (int64_t j = 0; j < D; j++)
      y[r * D + j] = (x[r * D + j] - m) * rs * (w ? w[j] : ws) + (b ? b[j] : 0.0);
  }
}

/* dx_i += sum_j dy_j w_j dxhat_j/dx_i; returns sum over rows of sum_j dy_j xhat_j (for dscale). */
static double bwd_dx(double *dx, const double *dy, const double *x, const double *w, double ws, int center,
                     const double *saved, int64_t rows, int64_t D) {
  double sdx = 0;
  for (int64_t r = 0; r < rows; r++) {
    const double *xr = x + r * D, *gr = dy + r * D;
    double m = saved[r], rs = saved[rows + r];
    for (int64_t j = 0; j < D; j++) sdx += gr[j] * (xr[j] - m) * rs;
    if (!dx) continue;
    for (int64_t i = 0; i < D; i++) {
      double xi = (xr[i] - m) * rs, acc = 0;
      for (int64_t j = 0; j < D; j++) {
        double xj = (xr[j] - m) * rs;
        double jac = rs * ((i == j ? 1.0 : 0.0) - (center ? 1.0 / (double)D : 0.0) - xi * xj / (double)D);
        acc += gr[j] * (w ? w[j] : ws) * jac;
      }
      dx[r * D + i] += acc;
    }
  }
  return sdx;
}

void norm_forward_ref(norm_kind kind, double *y, const double *x, const double *weight, const double *bias,
                      double *saved, int64_t rows, int64_t D) {
  if (kind == NORM_LAYERNORM) fwd(y, x, weight, 0, bias, 1, saved, rows, D);
  else if (kind == NORM_RMSNORM) fwd(y, x, weight, 0, NULL, 0, saved, rows, D);
  else fwd(y, x, NULL, weight[0], NULL, 0, saved, rows, D);
}

void norm_backward_ref(norm_kind kind, double *dx, double *dweight, double *dbias, const double *dy, const double *x,
                       const double *weight, const double *saved, int64_t rows, int64_t D) {
  if (kind == NORM_SCALENORM) {
    double s = bwd_dx(dx, dy, x, NULL, weight[0], 0, saved, rows, D);
    if (dweight) dweight[0] += s;
    return;
  }
  int center = kind == NORM_LAYERNORM;
  bwd_dx(dx, dy, x, weight, 0, center, saved, rows, D);
  for (int64_t r = 0; r < rows; r++)
    for (int64_t j = 0; j < D; j++) {
      double xh = (x[r * D + j] - saved[r]) * saved[rows + r];
      if (dweight) dweight[j] += dy[r * D + j] * xh;
      if (center && dbias) dbias[j] += dy[r * D + j];
    }
}

void lnz_forward_ref(double *y, const double *x, double scale, double *saved, int64_t rows, int64_t Z) {
  fwd(y, x, NULL, scale, NULL, 1, saved, rows, Z);
}

void lnz_backward_ref(double *dx, const double *dy, const double *x, double scale, const double *saved, int64_t rows,
                      int64_t Z) {
  bwd_dx(dx, dy, x, NULL, scale, 1, saved, rows, Z);
}
