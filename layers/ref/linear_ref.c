/* Reference linear layer in double. */
#include "layers/ref/linear_ref.h"

#include "layers/ref/act_ref.h"
#include "trainer/base/check.h"

void linear_forward_ref(double *y, const double *x, const double *W, const double *b, double *pre,
                        const linear_desc *d) {
  int64_t ldx = d->ldx ? d->ldx : d->in, ldy = d->ldy ? d->ldy : d->out;
  int act = d->act != MM_ACT_NONE;
  if (act && !pre) DIE("linear_forward_ref: an activation needs pre");
  for (int64_t r = 0; r < d->rows; r++)
    for (int64_t o = 0; o < d->out; o++) {
      double acc = d->bias ? b[o] : 0.0;
      for (int64_t i = 0; i < d->in; i++) acc += x[r * ldx + i] * W[o * d->in + i];
      double *dst = act ? &pre[r * d->out + o] : &y[r * ldy + o];
      *dst = d->accumulate ? *dst + acc : acc;
    }
  if (act) act_forward_2d_ref(d->act, y, ldy, pre, d->out, d->rows, d->out);
}

void linear_backward_ref(double *dx, double *dW, double *db, const double *dy, const double *x, const double *W,
                         const double *pre, const linear_desc *d) {
  int64_t ldx = d->ldx ? d->ldx : d->in, ldy = d->ldy ? d->ldy : d->out;
  int act = d->act != MM_ACT_NONE;
  if (act && !pre) DIE("linear_backward_ref: an activation needs pre");
  for (int64_t r = 0; r < d->rows; r++)
    for (int64_t o = 0; o < d->out; o++) {
      double g = dy[r * ldy + o];
      if (act) {
        double gd = 0;
        act_backward_ref(d->act, &gd, &g, &pre[r * d->out + o], 1);
        g = gd;
      }
      if (dx)
        for (int64_t i = 0; i < d->in; i++) dx[r * ldx + i] += g * W[o * d->in + i];
      if (dW)
        for (int64_t i = 0; i < d->in; i++) dW[o * d->in + i] += g * x[r * ldx + i];
      if (d->bias && db) db[o] += g;
    }
}
