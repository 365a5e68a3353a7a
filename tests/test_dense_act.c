/* Activations: act_expf accuracy, gradcheck of the double twins, float vs reference (1-D and
 * strided 2-D, in place, across the OpenMP threshold), NaN propagation, and a throughput print. */
#include <float.h>
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "layers/act.h"
#include "layers/ref/act_ref.h"
#include "tests/gradcheck.h"
#include "tests/compare.h"
#include "tests/test_util.h"


/* ---- gradcheck ---------------------------------------------------------------------------- */
typedef struct {
  mm_act act;
  double *x, *y, *R;
  int64_t n;
} gc_ctx;

static double loss_act(void *p) {
  gc_ctx *c = p;
  act_forward_ref(c->act, c->y, c->x, c->n);
  double s = 0;
  for (int64_t i = 0; i < c->n; i++) s += c->R[i] * c->y[i];
  return s;
}

static const char *act_name(mm_act a) {
  return a == MM_ACT_SILU ? "silu" : a == MM_ACT_SIGMOID ? "sigmoid" : a == MM_ACT_GELU_ERF ? "gelu_erf" : "none";
}

static void gradcheck_act(mm_act act) {
  enum { N = 41 };
  double x[N], y[N], R[N], g[N] = {0};
  gc_fill(x, N, 1, 4.0); /* |x| <= 4: gradients >= 5e-4, well above the fd round-off floor */
  gc_fill(R, N, 2, 1.0);
  gc_ctx c = {act, x, y, R, N};
  act_backward_ref(act, g, R, x, N);
  char name[64];
  snprintf(name, sizeof name, "%s_ref dx", act_name(act));
  double e = gc_check(name, loss_act, &c, x, g, N, 1e-5);
  EXPECT(e < 1e-6, "%s gradcheck rel err %.3e", name, e);
}

/* ---- fast vs reference -------------------------------------------------------------------- */
static void compare_act(mm_act act, int64_t n) {
  float *x = malloc(sizeof(float) * n), *y = malloc(sizeof(float) * n), *dy = malloc(sizeof(float) * n);
  float *dx = malloc(sizeof(float) * n);
  double *xd = malloc(sizeof(double) * n), *yd = malloc(sizeof(double) * n), *dyd = malloc(sizeof(double) * n);
  double *dxd = malloc(sizeof(double) * n);
  fill_pair(x, xd, n, 3, 12.0);
  fill_pair(dy, dyd, n, 4, 1.0);
  fill_pair(dx, dxd, n, 5, 1.0); /* backward accumulates onto these */
  act_forward(act, y, x, n);
  act_forward_ref(act, yd, xd, n);
  act_backward(act, dx, dy, x, n);
  act_backward_ref(act, dxd, dyd, xd, n);
  /* Same float inputs on both sides: the only error is float evaluation of the formula, a few ulp
   * of the result (act_expf <= 2 ulp, one division, one product): rtol 2e-6. The derivatives cross
   * zero (silu' at -1.28) and the backward adds onto O(1) values, so an absolute floor of a few
   * float ulps of O(1) terms: atol 5e-7. */
  char name[64];
  snprintf(name, sizeof name, "%s forward (n %lld)", act_name(act), (long long)n);
  cmp(name, y, yd, n, 5e-7, 2e-6);
  snprintf(name, sizeof name, "%s backward (n %lld)", act_name(act), (long long)n);
  cmp(name, dx, dxd, n, 5e-7, 2e-6);
  /* In place gives the same bits. */
  float *xi = malloc(sizeof(float) * n);
  memcpy(xi, x, sizeof(float) * n);
  act_forward(act, xi, xi, n);
  EXPECT(memcmp(xi, y, sizeof(float) * n) == 0, "%s in-place forward differs", act_name(act));
  free(xi);
  free(x); free(y); free(dy); free(dx); free(xd); free(yd); free(dyd); free(dxd);
}

/* Column slice [c0, c0+cols) of wide (rows, ld) matrices; the rest must stay untouched. */
static void compare_act_2d(mm_act act) {
  enum { ROWS = 300, LD = 37, C0 = 5, COLS = 19 };
  int64_t n = ROWS * LD;
  float *x = malloc(sizeof(float) * n), *y = malloc(sizeof(float) * n), *dy = malloc(sizeof(float) * n);
  float *dx = malloc(sizeof(float) * n);
  double *xd = malloc(sizeof(double) * n), *yd = malloc(sizeof(double) * n), *dyd = malloc(sizeof(double) * n);
  double *dxd = malloc(sizeof(double) * n);
  fill_pair(x, xd, n, 6, 8.0);
  fill_pair(dy, dyd, n, 7, 1.0);
  fill_pair(y, yd, n, 8, 1.0);
  fill_pair(dx, dxd, n, 9, 1.0);
  act_forward_2d(act, y + C0, LD, x + C0, LD, ROWS, COLS);
  act_forward_2d_ref(act, yd + C0, LD, xd + C0, LD, ROWS, COLS);
  act_backward_2d(act, dx + C0, LD, dy + C0, LD, x + C0, LD, ROWS, COLS);
  act_backward_2d_ref(act, dxd + C0, LD, dyd + C0, LD, xd + C0, LD, ROWS, COLS);
  char name[64];
  /* Outside the slice the ref leaves the initial values too, so whole-matrix comparison also checks
   * that nothing outside the slice was written. Tolerance as in compare_act. */
  snprintf(name, sizeof name, "%s forward 2d slice", act_name(act));
  cmp(name, y, yd, n, 5e-7, 2e-6);
  snprintf(name, sizeof name, "%s backward 2d slice", act_name(act));
  cmp(name, dx, dxd, n, 5e-7, 2e-6);
  free(x); free(y); free(dy); free(dx); free(xd); free(yd); free(dyd); free(dxd);
}

static void check_expf(void) {
  /* 4M points across the whole range and 2M points near 0: max relative error vs double exp. */
  double worst = 0, worst_x = 0;
  for (int64_t i = 0; i < (6 << 20); i++) {
    float x = i < (4 << 20) ? (float)(-87.3 + 175.3 * (double)i / (4 << 20)) : (float)((i - (5 << 20)) * 1e-6);
    double e = fabs((double)act_expf(x) - exp((double)x)) / exp((double)x);
    if (e > worst) { worst = e; worst_x = x; }
  }
  printf("act_expf max rel err %.3e (%.2f ulp of 2^-24) at x = %.9g\n", worst, worst / 0x1p-24, worst_x);
  /* Cephes-style expf: about 1.5 ulp; 4 ulp (2.4e-7) would signal a broken reduction or polynomial. */
  EXPECT(worst < 4 * 0x1p-24, "act_expf rel err %.3e", worst);
  EXPECT(act_expf(0.0f) == 1.0f, "exp(0) = %.9g", act_expf(0.0f));
  EXPECT(isfinite(act_expf(1000.0f)) && act_expf(-1000.0f) > 0.0f, "clamps keep results finite and positive");
  EXPECT(isnan(act_expf(NAN)), "NaN propagates through act_expf");
}

static void check_nan(void) {
  float x[3] = {NAN, 1.0f, -INFINITY}, y[3], dx[3] = {0, 0, 0}, dy[3] = {1, 1, 1};
  mm_act acts[3] = {MM_ACT_SILU, MM_ACT_SIGMOID, MM_ACT_GELU_ERF};
  for (int a = 0; a < 3; a++) {
    act_forward(acts[a], y, x, 3);
    act_backward(acts[a], dx, dy, x, 3);
    EXPECT(isnan(y[0]) && isnan(dx[0]), "%s: NaN input must give NaN", act_name(acts[a]));
  }
  act_forward(MM_ACT_SIGMOID, y, x, 3);
  EXPECT(y[2] >= 0.0f && y[2] < 1e-37f, "sigmoid(-inf) = %g", y[2]);
}

static void bench(void) {
  int64_t n = (int64_t)8 << 20;
  float *x = malloc(sizeof(float) * n), *y = malloc(sizeof(float) * n), *d = malloc(sizeof(float) * n);
  for (int64_t i = 0; i < n; i++) { x[i] = (float)((i % 2001) - 1000) * 0.01f; d[i] = 0; }
  silu_forward(y, x, n); /* warm up */
  double t0 = omp_get_wtime();
  for (int r = 0; r < 5; r++) silu_forward(y, x, n);
  double t1 = omp_get_wtime();
  for (int r = 0; r < 5; r++) silu_backward(d, y, x, n);
  double t2 = omp_get_wtime();
  printf("bench: silu forward %.2f ns/elem (%.1f GB/s), backward %.2f ns/elem, %d threads\n",
         (t1 - t0) / 5 / n * 1e9, 8.0 * n * 5 / (t1 - t0) / 1e9, (t2 - t1) / 5 / n * 1e9, omp_get_max_threads());
  free(x); free(y); free(d);
}

int main(void) {
  check_expf();
  mm_act acts[3] = {MM_ACT_SILU, MM_ACT_SIGMOID, MM_ACT_GELU_ERF};
  for (int a = 0; a < 3; a++) {
    gradcheck_act(acts[a]);
    compare_act(acts[a], 1001);    /* serial */
    compare_act(acts[a], 100003);  /* OpenMP, ragged last block */
    compare_act_2d(acts[a]);
  }
  /* MM_ACT_NONE: copy and dx += dy. */
  compare_act(MM_ACT_NONE, 5003);
  check_nan();
  bench();
  return tu_finish("test_dense_act");
}
