/* Linear layer: gradcheck of the double twin (x, W, b) for every variant (bias, activation,
 * accumulate, strided column slices), float32 oneDNN path against the twin for forward (training
 * and fused eval paths) and backward, untouched columns outside slices, deterministic bias grads. */
#include <float.h>
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "layers/act.h"
#include "layers/linear.h"
#include "layers/ref/act_ref.h"
#include "layers/ref/linear_ref.h"
#include "tests/gradcheck.h"
#include "tests/compare.h"
#include "tests/test_util.h"


/* Buffer sizes of a desc: x (rows, ldx), y (rows, ldy). */
static int64_t ldx_of(const linear_desc *d) { return d->ldx ? d->ldx : d->in; }
static int64_t ldy_of(const linear_desc *d) { return d->ldy ? d->ldy : d->out; }

/* ---- gradcheck of the twin ---------------------------------------------------------------- */
typedef struct {
  const linear_desc *d;
  double *x, *W, *b, *y, *pre, *y0, *R;
} gc_ctx;

/* loss = sum R * y over the whole y buffer; the accumulate addend y0 is restored before each
 * evaluation (it goes to pre with an activation, else to y). */
static double loss_linear(void *p) {
  gc_ctx *c = p;
  const linear_desc *d = c->d;
  int64_t ny = d->rows * ldy_of(d), np = d->rows * d->out;
  memcpy(c->y, c->y0, sizeof(double) * ny);
  if (d->act != MM_ACT_NONE) memcpy(c->pre, c->y0, sizeof(double) * np);
  linear_forward_ref(c->y, c->x, c->W, c->b, c->pre, d);
  double s = 0;
  for (int64_t i = 0; i < ny; i++) s += c->R[i] * c->y[i];
  return s;
}

static void gradcheck_linear(const char *name, linear_desc d) {
  int64_t nx = d.rows * ldx_of(&d), ny = d.rows * ldy_of(&d), nw = d.out * d.in;
  double *x = calloc(nx, 8), *W = calloc(nw, 8), *b = calloc(d.out, 8), *y = calloc(ny, 8), *y0 = calloc(ny, 8);
  double *pre = calloc(d.rows * d.out, 8), *R = calloc(ny, 8);
  double *dx = calloc(nx, 8), *dW = calloc(nw, 8), *db = calloc(d.out, 8);
  gc_fill(x, nx, 11, 1.0);
  gc_fill(W, nw, 12, 0.7);
  gc_fill(b, d.out, 13, 0.5);
  gc_fill(y0, ny, 14, d.accumulate ? 0.5 : 0.0);
  gc_fill(R, ny, 15, 1.0);
  /* With an output slice, only the slice is the layer's output: R outside it does not matter. */
  gc_ctx c = {&d, x, W, d.bias ? b : NULL, y, pre, y0, R};
  loss_linear(&c); /* fills pre */
  linear_backward_ref(dx, dW, db, R, x, W, d.act != MM_ACT_NONE ? pre : NULL, &d);
  char nm[96];
  double e;
  /* Only the x slice columns are inputs; the columns outside it have zero gradient and are not read. */
  snprintf(nm, sizeof nm, "linear_ref %s dx", name);
  e = gc_check(nm, loss_linear, &c, x, dx, nx, 1e-5);
  EXPECT(e < 1e-6, "%s rel err %.3e", nm, e);
  snprintf(nm, sizeof nm, "linear_ref %s dW", name);
  e = gc_check(nm, loss_linear, &c, W, dW, nw, 1e-5);
  EXPECT(e < 1e-6, "%s rel err %.3e", nm, e);
  if (d.bias) {
    snprintf(nm, sizeof nm, "linear_ref %s db", name);
    e = gc_check(nm, loss_linear, &c, b, db, d.out, 1e-5);
    EXPECT(e < 1e-6, "%s rel err %.3e", nm, e);
  }
  free(x); free(W); free(b); free(y); free(y0); free(pre); free(R); free(dx); free(dW); free(db);
}

/* ---- float path vs twin ------------------------------------------------------------------- */
static void compare_linear(const dnn_ctx *ctx, const char *name, linear_desc d) {
  linear_plan p;
  linear_plan_init(&p, ctx, d);
  int64_t nx = d.rows * ldx_of(&d), ny = d.rows * ldy_of(&d), nw = d.out * d.in, np = d.rows * d.out;
  float *x = malloc(4 * nx), *W = malloc(4 * nw), *b = malloc(4 * d.out), *y = malloc(4 * ny), *dy = malloc(4 * ny);
  float *pre = malloc(4 * (np + 1)), *scratch = malloc(4 * (linear_scratch_floats(&d) + 1));
  float *dx = malloc(4 * nx), *dW = malloc(4 * nw), *db = malloc(4 * d.out), *ye = malloc(4 * ny);
  double *xd = malloc(8 * nx), *Wd = malloc(8 * nw), *bd = malloc(8 * d.out), *yd = malloc(8 * ny);
  double *dyd = malloc(8 * ny), *pred = malloc(8 * (np + 1)), *dxd = malloc(8 * nx), *dWd = malloc(8 * nw);
  double *dbd = malloc(8 * d.out), *yed = malloc(8 * ny), *pred2 = malloc(8 * (np + 1));
  fill_pair(x, xd, nx, 21, 1.0);
  fill_pair(W, Wd, nw, 22, 0.5);
  fill_pair(b, bd, d.out, 23, 1.0);
  fill_pair(y, yd, ny, 24, 1.0);   /* initial y: accumulate addend, and the columns outside a slice */
  memcpy(ye, y, 4 * ny);
  memcpy(yed, yd, 8 * ny);
  fill_pair(pre, pred, np, 24, 1.0); /* the addend with an activation */
  memcpy(pred2, pred, 8 * np);
  fill_pair(dy, dyd, ny, 25, 1.0);
  fill_pair(dx, dxd, nx, 26, 1.0); /* gradients accumulate onto existing values */
  fill_pair(dW, dWd, nw, 27, 1.0);
  fill_pair(db, dbd, d.out, 28, 1.0);

  int act = d.act != MM_ACT_NONE;
  linear_forward(&p, ctx, y, x, W, b, act ? pre : NULL);
  linear_forward_ref(yd, xd, Wd, bd, act ? pred : NULL, &d);
  /* Same float inputs on both sides. oneDNN sums K = in products in float32 (|x| <= 1, |W| <= 0.5):
   * rounding error <= K eps * 0.5 in the worst case (sequential summation bound), much less in
   * practice; plus act_expf's few ulp (rtol). A wrong index or a missing term is O(0.1) or more. */
  double eps = FLT_EPSILON;
  char nm[96];
  snprintf(nm, sizeof nm, "linear %s forward y", name);
  cmp(nm, y, yd, ny, 0.5 * eps * d.in + 1e-6, 4e-6);
  if (act) {
    snprintf(nm, sizeof nm, "linear %s forward pre", name);
    cmp(nm, pre, pred, np, 0.5 * eps * d.in + 1e-6, 4e-6);
    /* Eval path: activation fused into the matmul (oneDNN post-op), pre = NULL. */
    /* The fused path accumulates into y: put the addend (initial pre) into the y slice. */
    for (int64_t r = 0; r < d.rows && d.accumulate; r++)
      for (int64_t o = 0; o < d.out; o++) ye[r * ldy_of(&d) + o] = (float)pred2[r * d.out + o];
    linear_forward(&p, ctx, ye, x, W, b, NULL);
    snprintf(nm, sizeof nm, "linear %s fused-act forward (eval)", name);
    cmp(nm, ye, yd, ny, 0.5 * eps * d.in + 1e-6, 4e-6);
  }

  linear_backward(&p, ctx, dx, dW, b ? db : NULL, dy, x, W, act ? pre : NULL, scratch);
  linear_backward_ref(dxd, dWd, dbd, dyd, xd, Wd, act ? pred : NULL, &d);
  /* Reduction lengths: dx over out, dW over rows, db over rows (double sums in colsum_acc). The
   * fast backward uses the float pre (itself rounded), so G carries ~1e-6 relative error too. */
  snprintf(nm, sizeof nm, "linear %s backward dx", name);
  cmp(nm, dx, dxd, nx, eps * d.out + 1e-6, 4e-6);
  snprintf(nm, sizeof nm, "linear %s backward dW", name);
  cmp(nm, dW, dWd, nw, eps * d.rows + 1e-6, 4e-6);
  snprintf(nm, sizeof nm, "linear %s backward db", name);
  cmp(nm, db, dbd, d.out, 1e-5 * sqrt((double)d.rows) + 1e-6, 4e-6);
  if (act) {
    /* scratch = dpre = dy * act'(pre): the gradient of an accumulate addend. */
    double *dpre = calloc(np, 8);
    act_backward_2d_ref(d.act, dpre, d.out, dyd, ldy_of(&d), pred, d.out, d.rows, d.out);
    snprintf(nm, sizeof nm, "linear %s backward dpre (scratch)", name);
    cmp(nm, scratch, dpre, np, 1e-6, 4e-6);
    free(dpre);
  }
  linear_plan_free(&p);
  free(x); free(W); free(b); free(y); free(dy); free(pre); free(scratch); free(dx); free(dW); free(db); free(ye);
  free(xd); free(Wd); free(bd); free(yd); free(dyd); free(pred); free(dxd); free(dWd); free(dbd); free(yed);
  free(pred2);
}

/* colsum_acc gives the same bits with 1 and 2 threads (fixed summation order). */
static void check_colsum_determinism(void) {
  int64_t rows = 3000, cols = 200;
  float *g = malloc(4 * rows * cols), *a = calloc(cols, 4), *b2 = calloc(cols, 4);
  for (int64_t i = 0; i < rows * cols; i++) g[i] = (float)sin(0.37 * (double)i) * 1e3f;
  int nt = omp_get_max_threads();
  omp_set_num_threads(1);
  colsum_acc(a, g, 0, rows, cols);
  omp_set_num_threads(nt > 1 ? nt : 2);
  colsum_acc(b2, g, 0, rows, cols);
  omp_set_num_threads(nt);
  EXPECT(memcmp(a, b2, 4 * cols) == 0, "colsum_acc differs between 1 and %d threads", nt > 1 ? nt : 2);
  free(g); free(a); free(b2);
}

/* dx = NULL (input needs no gradient) leaves dW, db as with dx. */
static void check_null_dx(const dnn_ctx *ctx) {
  linear_desc d = {.rows = 50, .in = 12, .out = 9, .bias = 1, .act = MM_ACT_SILU};
  linear_plan p;
  linear_plan_init(&p, ctx, d);
  float x[50 * 12], W[9 * 12], b[9], y[50 * 9], pre[50 * 9], dy[50 * 9], sc[50 * 9], dx[50 * 12] = {0};
  float dW1[9 * 12] = {0}, dW2[9 * 12] = {0}, db1[9] = {0}, db2[9] = {0};
  for (int i = 0; i < 50 * 12; i++) x[i] = (float)sin(i);
  for (int i = 0; i < 9 * 12; i++) W[i] = (float)cos(i) * 0.3f;
  for (int i = 0; i < 9; i++) b[i] = 0.1f * (float)i;
  for (int i = 0; i < 50 * 9; i++) dy[i] = (float)sin(0.5 * i);
  linear_forward(&p, ctx, y, x, W, b, pre);
  linear_backward(&p, ctx, dx, dW1, db1, dy, x, W, pre, sc);
  linear_backward(&p, ctx, NULL, dW2, db2, dy, x, W, pre, sc);
  EXPECT(memcmp(dW1, dW2, sizeof dW1) == 0 && memcmp(db1, db2, sizeof db1) == 0, "dx = NULL changes dW/db");
  linear_plan_free(&p);
}

/* Throughput at a model-like shape (ffn.fc1: BT 8192, D 512 -> F 1024, silu): printed, not asserted. */
static void bench(const dnn_ctx *ctx) {
  linear_desc d = {.rows = 8192, .in = 512, .out = 1024, .bias = 1, .act = MM_ACT_SILU};
  linear_plan p;
  linear_plan_init(&p, ctx, d);
  float *x = calloc(d.rows * d.in, 4), *W = calloc(d.out * d.in, 4), *b = calloc(d.out, 4);
  float *y = calloc(d.rows * d.out, 4), *pre = calloc(d.rows * d.out, 4), *dy = calloc(d.rows * d.out, 4);
  float *sc = calloc(linear_scratch_floats(&d), 4), *dx = calloc(d.rows * d.in, 4), *dW = calloc(d.out * d.in, 4);
  float *db = calloc(d.out, 4);
  for (int64_t i = 0; i < d.rows * d.in; i++) x[i] = (float)(i % 17) * 0.01f;
  linear_forward(&p, ctx, y, x, W, b, pre);
  linear_backward(&p, ctx, dx, dW, db, dy, x, W, pre, sc);
  double t0 = omp_get_wtime();
  for (int r = 0; r < 3; r++) linear_forward(&p, ctx, y, x, W, b, pre);
  double t1 = omp_get_wtime();
  for (int r = 0; r < 3; r++) linear_backward(&p, ctx, dx, dW, db, dy, x, W, pre, sc);
  double t2 = omp_get_wtime();
  printf("bench: linear %lldx%lld->%lld silu: forward %.2f ms (%.0f GFLOP/s), backward %.2f ms (%.0f GFLOP/s)\n",
         (long long)d.rows, (long long)d.in, (long long)d.out, (t1 - t0) / 3 * 1e3,
         linear_forward_flops(&d) * 3 / (t1 - t0) / 1e9, (t2 - t1) / 3 * 1e3,
         linear_backward_flops(&d) * 3 / (t2 - t1) / 1e9);
  linear_plan_free(&p);
  free(x); free(W); free(b); free(y); free(pre); free(dy); free(sc); free(dx); free(dW); free(db);
}

int main(void) {
  /* Gradchecks: tiny shapes, every input and parameter of every variant. */
  gradcheck_linear("plain+bias", (linear_desc){.rows = 4, .in = 5, .out = 3, .bias = 1});
  gradcheck_linear("no bias", (linear_desc){.rows = 3, .in = 4, .out = 6});
  gradcheck_linear("silu", (linear_desc){.rows = 4, .in = 5, .out = 3, .bias = 1, .act = MM_ACT_SILU});
  gradcheck_linear("sigmoid+acc", (linear_desc){.rows = 3, .in = 4, .out = 5, .bias = 1, .accumulate = 1,
                                                .act = MM_ACT_SIGMOID});
  gradcheck_linear("gelu", (linear_desc){.rows = 3, .in = 4, .out = 3, .act = MM_ACT_GELU_ERF});
  gradcheck_linear("acc, strided", (linear_desc){.rows = 3, .in = 4, .out = 3, .ldx = 7, .ldy = 6, .bias = 1,
                                                 .accumulate = 1});

  dnn_ctx ctx;
  dnn_ctx_init(&ctx);
  compare_linear(&ctx, "plain", (linear_desc){.rows = 300, .in = 96, .out = 80, .bias = 1});
  compare_linear(&ctx, "no bias", (linear_desc){.rows = 77, .in = 33, .out = 129});
  compare_linear(&ctx, "silu", (linear_desc){.rows = 1000, .in = 64, .out = 130, .bias = 1, .act = MM_ACT_SILU});
  compare_linear(&ctx, "sigmoid", (linear_desc){.rows = 200, .in = 48, .out = 40, .bias = 1, .act = MM_ACT_SIGMOID});
  compare_linear(&ctx, "gelu", (linear_desc){.rows = 8, .in = 48, .out = 48, .bias = 1, .act = MM_ACT_GELU_ERF});
  compare_linear(&ctx, "silu+acc (h_proj)", (linear_desc){.rows = 256, .in = 40, .out = 32, .bias = 1,
                                                         .accumulate = 1, .act = MM_ACT_SILU});
  compare_linear(&ctx, "acc", (linear_desc){.rows = 100, .in = 20, .out = 30, .bias = 1, .accumulate = 1});
  /* Column slices: x is columns [0, 24) of a (rows, 31) matrix, y columns [0, 16) of (rows, 50):
   * e.g. one of mx_proj's outputs written straight into base. The compare covers the whole y buffer,
   * so columns outside the slice must keep their initial values. */
  compare_linear(&ctx, "strided slices", (linear_desc){.rows = 500, .in = 24, .out = 16, .ldx = 31, .ldy = 50,
                                                       .bias = 1});
  compare_linear(&ctx, "strided slices silu", (linear_desc){.rows = 120, .in = 24, .out = 16, .ldx = 31,
                                                            .ldy = 50, .bias = 1, .act = MM_ACT_SILU});
  check_colsum_determinism();
  check_null_dx(&ctx);
  bench(&ctx);
  dnn_ctx_free(&ctx);
  return tu_finish("test_dense_linear");
}
