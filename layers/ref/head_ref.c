/* Reference heads in double. */
#include "layers/ref/head_ref.h"

#include <math.h>
#include <stddef.h>

#include "layers/ref/act_ref.h"

void head_forward_ref(double *logits, const double *x, const double *m, const double *dense_w, const double *dense_b,
                      const double *out_w, const double *out_b, double *saved, int64_t B, int64_t L, int64_t D,
                      int64_t K) {
  double *pooled = saved, *pre = saved + B * D, *hid = saved + 2 * B * D, *cnt = saved + 3 * B * D;
  for (int64_t b = 0; b < B; b++) {
    cnt[b] = 0;
    for (int64_t t = 0; t < L; t++) cnt[b] += m[b * L + t];
    for (int64_t j = 0; j < D; j++) {
      double s = 0;
      for (int64_t t = 0; t < L; t++) s += m[b * L + t] * x[(b * L + t) * D + j];
      pooled[b * D + j] = s / cnt[b];
    }
    for (int64_t i = 0; i < D; i++) {
      double s = dense_b[i];
      for (int64_t j = 0; j < D; j++) s += dense_w[i * D + j] * pooled[b * D + j];
      pre[b * D + i] = s;
    }
    gelu_erf_forward_ref(hid + b * D, pre + b * D, D);
    for (int64_t k = 0; k < K; k++) {
      double s = out_b[k];
      for (int64_t i = 0; i < D; i++) s += out_w[k * D + i] * hid[b * D + i];
      logits[b * K + k] = s;
    }
  }
}

void head_backward_ref(double *dx, double *d_dense_w, double *d_dense_b, double *d_out_w, double *d_out_b,
                       const double *dlogits, const double *m, const double *dense_w, const double *out_w,
                       const double *saved, int64_t B, int64_t L, int64_t D, int64_t K) {
  const double *pooled = saved, *pre = saved + B * D, *hid = saved + 2 * B * D, *cnt = saved + 3 * B * D;
  for (int64_t b = 0; b < B; b++) {
    for (int64_t k = 0; k < K; k++) {
      double g = dlogits[b * K + k];
      d_out_b[k] += g;
      for (int64_t i = 0; i < D; i++) d_out_w[k * D + i] += g * hid[b * D + i];
    }
    for (int64_t i = 0; i < D; i++) {
      double dh = 0, dp = 0;
      for (int64_t k = 0; k < K; k++) dh += dlogits[b * K + k] * out_w[k * D + i];
      gelu_erf_backward_ref(&dp, &dh, &pre[b * D + i], 1);
      d_dense_b[i] += dp;
      for (int64_t j = 0; j < D; j++) {
        d_dense_w[i * D + j] += dp * pooled[b * D + j];
        double dpool = dp * dense_w[i * D + j];
        if (dx)
          for (int64_t t = 0; t < L; t++) dx[(b * L + t) * D + j] += dpool * m[b * L + t] / cnt[b];
      }
    }
  }
}

void lm_head_forward_ref(double *logits, const double *x, const double *E, int64_t rows, int64_t D, int64_t V) {
  for (int64_t r = 0; r < rows; r++)
    for (int64_t v = 0; v < V; v++) {
      double s = 0;
      for (int64_t j = 0; j < D; j++) s += x[r * D + j] * E[v * D + j];
      logits[r * V + v] = s;
    }
}

void lm_head_backward_ref(double *dx, double *dE, const double *dlogits, const double *x, const double *E,
                          int64_t rows, int64_t D, int64_t V) {
  for (int64_t r = 0; r < rows; r++)
    for (int64_t v = 0; v < V; v++) {
      double g = dlogits[r * V + v];
      for (int64_t j = 0; j < D; j++) {
        if (dx) dx[r * D + j] += g * E[v * D + j];
        dE[v * D + j] += g * x[r * D + j];
      }
    }
}
