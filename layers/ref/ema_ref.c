/* EMA reference twin: the spec's recurrence and its adjoint written out directly (unscaled states,
 * one (b, c, direction, n) recurrence at a time), in double. */
#include "layers/ref/ema_ref.h"

#include <math.h>

static double sigm(double a) { return 1 / (1 + exp(-a)); }

size_t ema_saved_doubles_ref(int64_t B, int64_t L, int64_t D, int64_t N, int bidir) {
  return (size_t)(B * L * D + B * (bidir ? 2 : 1) * L * D * N);
}

/* Time index of step i of direction dir (dir 1 runs from t = L-1 down to 0). */
static int64_t tmap(int dir, int64_t L, int64_t i) { return dir ? L - 1 - i : i; }

void ema_forward_ref(double *out, const double *x, const double *delta, const double *alpha,
                     const double *beta, const double *gamma, const double *omega, double *saved,
                     int64_t B, int64_t L, int64_t D, int64_t N, int bidir) {
  const int ndir = bidir ? 2 : 1;
  const double s = 1 / sqrt((double)N);
  double *pre = saved, *H = saved + B * L * D;
  for (int64_t b = 0; b < B; b++)
    for (int64_t t = 0; t < L; t++)
      for (int64_t c = 0; c < D; c++) pre[(b * L + t) * D + c] = omega[c] * x[(b * L + t) * D + c];
  for (int64_t b = 0; b < B; b++)
    for (int dir = 0; dir < ndir; dir++)
      for (int64_t c = 0; c < D; c++)
        for (int64_t n = 0; n < N; n++) {
          const int64_t i = (dir * D + c) * N + n;
          const double p = sigm(delta[i]), phi = 1 - p * sigm(alpha[i]);
          double h = 0;
          for (int64_t k = 0; k < L; k++) {
            const int64_t t = tmap(dir, L, k);
            h = phi * h + p * beta[i] * x[(b * L + t) * D + c];
            H[(((b * ndir + dir) * L + t) * D + c) * N + n] = h;
            pre[(b * L + t) * D + c] += s * gamma[i] * h;
          }
        }
  for (int64_t j = 0; j < B * L * D; j++) out[j] = pre[j] * sigm(pre[j]);
}

void ema_backward_ref(double *dx, double *ddelta, double *dalpha, double *dbeta, double *dgamma,
                      double *domega, const double *dout, const double *x, const double *delta,
                      const double *alpha, const double *beta, const double *gamma, const double *omega,
                      const double *saved, int64_t B, int64_t L, int64_t D, int64_t N, int bidir) {
  const int ndir = bidir ? 2 : 1;
  const double s = 1 / sqrt((double)N);
  const double *pre = saved, *H = saved + B * L * D;
  /* dy = dout * silu'(pre): recomputed wherever needed to keep the twin allocation-free. */
#define DY(j) (dout[j] * sigm(pre[j]) * (1 + pre[j] * (1 - sigm(pre[j]))))
  for (int64_t b = 0; b < B; b++)
    for (int64_t t = 0; t < L; t++)
      for (int64_t c = 0; c < D; c++) {
        const int64_t j = (b * L + t) * D + c;
        dx[j] += omega[c] * DY(j);
        domega[c] += DY(j) * x[j];
      }
  for (int64_t b = 0; b < B; b++)
    for (int dir = 0; dir < ndir; dir++)
      for (int64_t c = 0; c < D; c++)
        for (int64_t n = 0; n < N; n++) {
          const int64_t i = (dir * D + c) * N + n;
          const double p = sigm(delta[i]), d = sigm(alpha[i]), phi = 1 - p * d;
          /* lam_k = dL/dh at step k = s*gamma*dy + phi*lam_{k+1}, run from the last step back. */
          double lam = 0, dpb = 0, dphi = 0;
          for (int64_t k = L - 1; k >= 0; k--) {
            const int64_t t = tmap(dir, L, k), j = (b * L + t) * D + c;
            const double h = H[(((b * ndir + dir) * L + t) * D + c) * N + n];
            const double hprev = k > 0 ? H[(((b * ndir + dir) * L + tmap(dir, L, k - 1)) * D + c) * N + n] : 0;
            const double dy = DY(j);
            lam = s * gamma[i] * dy + phi * lam;
            dgamma[i] += s * dy * h;
            dx[j] += lam * p * beta[i];
            dpb += lam * x[j];
            dphi += lam * hprev;
          }
          /* h_k = phi h_{k-1} + p beta x_k, phi = 1 - p d, p = sigmoid(delta), d = sigmoid(alpha). */
          const double dp = beta[i] * dpb - d * dphi, dd = -p * dphi;
          dbeta[i] += p * dpb;
          ddelta[i] += dp * p * (1 - p);
          dalpha[i] += dd * d * (1 - d);
        }
#undef DY
}
