/* Linear layer on oneDNN matmul plans (see linear.h). */
#include "layers/linear.h"

#include <string.h>

#include "layers/act.h"
#include "trainer/base/check.h"

void linear_plan_init(linear_plan *p, const dnn_ctx *ctx, linear_desc d) {
  if (d.rows < 1 || d.in < 1 || d.out < 1)
    DIE("linear_plan_init: bad shape rows %lld in %lld out %lld", (long long)d.rows, (long long)d.in,
        (long long)d.out);
  if (!d.ldx) d.ldx = d.in;
  if (!d.ldy) d.ldy = d.out;
  if (d.ldx < d.in || d.ldy < d.out)
    DIE("linear_plan_init: row stride smaller than the row (ldx %lld < in %lld or ldy %lld < out %lld)",
        (long long)d.ldx, (long long)d.in, (long long)d.ldy, (long long)d.out);
  memset(p, 0, sizeof *p);
  p->d = d;
  /* y (rows, out) = x (rows, in) @ W^T (in, out): B = W stored (out, in), trans_b. */
  mm_plan_init(&p->fwd, ctx, (mm_desc){.batch = 1, .M = d.rows, .N = d.out, .K = d.in, .trans_b = 1,
                                       .lda = d.ldx, .ldc = d.ldy, .bias = d.bias,
                                       .accumulate = d.accumulate, .act = d.act});
  int64_t ldg = d.ldy;
  if (d.act != MM_ACT_NONE) {
    mm_plan_init(&p->fwd_pre, ctx, (mm_desc){.batch = 1, .M = d.rows, .N = d.out, .K = d.in, .trans_b = 1,
                                             .lda = d.ldx, .ldc = d.out, .bias = d.bias,
                                             .accumulate = d.accumulate});
    ldg = d.out; /* G = dpre, dense scratch */
  }
  /* dx (rows, in) += G (rows, out) @ W (out, in) */
  mm_plan_init(&p->bwd_dx, ctx, (mm_desc){.batch = 1, .M = d.rows, .N = d.in, .K = d.out, .lda = ldg,
                                          .ldc = d.ldx, .accumulate = 1});
  /* dW (out, in) += G^T (out, rows) @ x (rows, in): A = G stored (rows, out), trans_a. */
  mm_plan_init(&p->bwd_dw, ctx, (mm_desc){.batch = 1, .M = d.out, .N = d.in, .K = d.rows, .trans_a = 1,
                                          .lda = ldg, .ldb = d.ldx, .accumulate = 1});
}

void linear_plan_free(linear_plan *p) {
  mm_plan_free(&p->fwd);
  mm_plan_free(&p->fwd_pre);
  mm_plan_free(&p->bwd_dx);
  mm_plan_free(&p->bwd_dw);
}

size_t linear_saved_floats(const linear_desc *d) {
  return d->act == MM_ACT_NONE ? 0 : (size_t)(d->rows * d->out);
}

size_t linear_scratch_floats(const linear_desc *d) { return linear_saved_floats(d); }

double linear_forward_flops(const linear_desc *d) { return 2.0 * (double)d->rows * (double)d->in * (double)d->out; }
double linear_backward_flops(const linear_desc *d) { return 2.0 * linear_forward_flops(d); }

void linear_forward(const linear_plan *p, const dnn_ctx *ctx, float *y, const float *x, const float *W,
                    const float *b, float *pre) {
  const linear_desc *d = &p->d;
  if (d->bias && !b) DIE("linear_forward: the plan has a bias but b is NULL");
  if (d->act == MM_ACT_NONE || !pre) {
    mm_exec(&p->fwd, ctx, y, x, W, d->bias ? b : NULL);
    return;
  }
  mm_exec(&p->fwd_pre, ctx, pre, x, W, d->bias ? b : NULL);
  act_forward_2d(d->act, y, d->ldy, pre, d->out, d->rows, d->out);
}

void colsum_acc(float *out, const float *g, int64_t ldg, int64_t rows, int64_t cols) {
  enum { CB = 64 };
  if (!ldg) ldg = cols;
  int64_t nb = (cols + CB - 1) / CB;
  /* Threads over 64-column blocks; each column is summed over rows in order, so the result does not
   * depend on the thread count. */
#pragma omp parallel for schedule(static) if (rows * cols >= 65536 && nb > 1)
  for (int64_t blk = 0; blk < nb; blk++) {
    int64_t c0 = blk * CB, nc = cols - c0 < CB ? cols - c0 : CB;
    double acc[CB] = {0};
    for (int64_t r = 0; r < rows; r++) {
      const float *gr = g + r * ldg + c0;
#pragma omp simd
      for (int64_t j = 0; j < nc; j++) acc[j] += gr[j];
    }
    for (int64_t j = 0; j < nc; j++) out[c0 + j] += (float)acc[j];
  }
}

void linear_backward(const linear_plan *p, const dnn_ctx *ctx, float *dx, float *dW, float *db, const float *dy,
                     const float *x, const float *W, const float *pre, float *scratch) {
  const linear_desc *d = &p->d;
  const float *G = dy;
  int64_t ldg = d->ldy;
  if (d->act != MM_ACT_NONE) {
    if (!pre || !scratch) DIE("linear_backward: an activation needs the saved pre-activation and scratch");
    memset(scratch, 0, sizeof(float) * (size_t)(d->rows * d->out));
    act_backward_2d(d->act, scratch, d->out, dy, d->ldy, pre, d->out, d->rows, d->out);
    G = scratch;
    ldg = d->out;
  }
  if (dx) mm_exec(&p->bwd_dx, ctx, dx, G, W, NULL);
  if (dW) mm_exec(&p->bwd_dw, ctx, dW, G, x, NULL);
  if (d->bias && db) colsum_acc(db, G, ldg, d->rows, d->out);
}
