/* Reference activations in double: the textbook formulas. */
#include "layers/ref/act_ref.h"

#include <math.h>

static double sig(double a) { return 1.0 / (1.0 + exp(-a)); }

static double fwd1(mm_act act, double a) {
  switch (act) {
    case MM_ACT_SILU: return a * sig(a);
    case MM_ACT_SIGMOID: return sig(a);
    case MM_ACT_GELU_ERF: return 0.5 * a * erfc(-a / sqrt(2.0));
    default: return a;
  }
}

static double deriv1(mm_act act, double a) {
  double s = sig(a);
  switch (act) {
    case MM_ACT_SILU: return s + a * s * (1.0 - s);
    case MM_ACT_SIGMOID: return s * (1.0 - s);
    case MM_ACT_GELU_ERF: return 0.5 * erfc(-a / sqrt(2.0)) + a * exp(-0.5 * a * a) / sqrt(2.0 * M_PI);
    default: return 1.0;
  }
}

void act_forward_ref(mm_act act, double *y, const double *x, int64_t n) {
  for (int64_t i = 0; i < n; i++) y[i] = fwd1(act, x[i]);
}
void act_backward_ref(mm_act act, double *dx, const double *dy, const double *x, int64_t n) {
  for (int64_t i = 0; i < n; i++) dx[i] += dy[i] * deriv1(act, x[i]);
}

void silu_forward_ref(double *y, const double *x, int64_t n) { act_forward_ref(MM_ACT_SILU, y, x, n); }
void silu_backward_ref(double *dx, const double *dy, const double *x, int64_t n) { act_backward_ref(MM_ACT_SILU, dx, dy, x, n); }
void sigmoid_forward_ref(double *y, const double *x, int64_t n) { act_forward_ref(MM_ACT_SIGMOID, y, x, n); }
void sigmoid_backward_ref(double *dx, const double *dy, const double *x, int64_t n) { act_backward_ref(MM_ACT_SIGMOID, dx, dy, x, n); }
void gelu_erf_forward_ref(double *y, const double *x, int64_t n) { act_forward_ref(MM_ACT_GELU_ERF, y, x, n); }
void gelu_erf_backward_ref(double *dx, const double *dy, const double *x, int64_t n) { act_backward_ref(MM_ACT_GELU_ERF, dx, dy, x, n); }

void act_forward_2d_ref(mm_act act, double *y, int64_t ldy, const double *x, int64_t ldx, int64_t rows, int64_t cols) {
  if (!ldy) ldy = cols;
  if (!ldx) ldx = cols;
  for (int64_t r = 0; r < rows; r++) act_forward_ref(act, y + r * ldy, x + r * ldx, cols);
}
void act_backward_2d_ref(mm_act act, double *dx, int64_t lddx, const double *dy, int64_t lddy, const double *x,
                         int64_t ldx, int64_t rows, int64_t cols) {
  if (!lddx) lddx = cols;
  if (!lddy) lddy = cols;
  if (!ldx) ldx = cols;
  for (int64_t r = 0; r < rows; r++) act_backward_ref(act, dx + r * lddx, dy + r * lddy, x + r * ldx, cols);
}
