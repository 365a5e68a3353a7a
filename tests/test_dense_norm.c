/* Norms (layernorm, rmsnorm, scalenorm, lnz): gradcheck of the double twins for x and every
 * parameter, float path vs twin (forward, saved stats, backward), bitwise determinism of the
 * parameter gradients across thread counts, a large-offset input, and the lnz scaling. */
#include <float.h>
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "layers/norm.h"
#include "layers/ref/norm_ref.h"
#include "tests/gradcheck.h"
#include "tests/compare.h"
#include "tests/test_util.h"


static const char *kind_name(int k) {
  return k == NORM_LAYERNORM ? "layernorm" : k == NORM_RMSNORM ? "rmsnorm" : k == NORM_SCALENORM ? "scalenorm" : "lnz";
}
#define KIND_LNZ 3 /* test-local: lnz is checked with the same machinery */
#define LNZ_SCALE 0.59460355750136053 /* 8^(-1/4): Z = 8 */

/* ---- gradcheck ---------------------------------------------------------------------------- */
typedef struct {
  int kind;
  int64_t rows, D;
  double *x, *w, *b, *y, *saved, *R;
} gc_ctx;

static void fwd_ref(gc_ctx *c) {
  if (c->kind == KIND_LNZ) lnz_forward_ref(c->y, c->x, LNZ_SCALE, c->saved, c->rows, c->D);
  else norm_forward_ref((norm_kind)c->kind, c->y, c->x, c->w, c->b, c->saved, c->rows, c->D);
}

static double loss_norm(void *p) {
  gc_ctx *c = p;
  fwd_ref(c);
  double s = 0;
  for (int64_t i = 0; i < c->rows * c->D; i++) s += c->R[i] * c->y[i];
  return s;
}

static void gradcheck_norm(int kind) {
  enum { ROWS = 3, D = 8 };
  double x[ROWS * D], w[D], b[D], y[ROWS * D], saved[2 * ROWS], R[ROWS * D];
  double dx[ROWS * D] = {0}, dw[D] = {0}, db[D] = {0};
  gc_fill(x, ROWS * D, 31, 2.0);
  for (int r = 0; r < ROWS; r++) x[r * D] += 3.0 * r; /* non-zero row means */
  gc_fill(w, D, 32, 0.5);
  for (int j = 0; j < D; j++) w[j] += 1.0;
  gc_fill(b, D, 33, 0.5);
  gc_fill(R, ROWS * D, 34, 1.0);
  gc_ctx c = {kind, ROWS, D, x, w, kind == NORM_LAYERNORM ? b : NULL, y, saved, R};
  fwd_ref(&c);
  if (kind == KIND_LNZ) lnz_backward_ref(dx, R, x, LNZ_SCALE, saved, ROWS, D);
  else norm_backward_ref((norm_kind)kind, dx, dw, db, R, x, w, saved, ROWS, D);
  char nm[64];
  double e;
  snprintf(nm, sizeof nm, "%s_ref dx", kind_name(kind));
  e = gc_check(nm, loss_norm, &c, x, dx, ROWS * D, 1e-5);
  EXPECT(e < 1e-6, "%s rel err %.3e", nm, e);
  if (kind == KIND_LNZ) return;
  snprintf(nm, sizeof nm, "%s_ref d%s", kind_name(kind), kind == NORM_SCALENORM ? "scale" : "weight");
  e = gc_check(nm, loss_norm, &c, w, dw, kind == NORM_SCALENORM ? 1 : D, 1e-5);
  EXPECT(e < 1e-6, "%s rel err %.3e", nm, e);
  if (kind == NORM_LAYERNORM) {
    e = gc_check("layernorm_ref dbias", loss_norm, &c, b, db, D, 1e-5);
    EXPECT(e < 1e-6, "layernorm dbias rel err %.3e", e);
  }
}

/* ---- float vs twin ------------------------------------------------------------------------ */
static void compare_norm(int kind, int64_t rows, int64_t D, double offset) {
  int64_t n = rows * D, np = kind == NORM_SCALENORM ? 1 : D;
  float *x = malloc(4 * n), *y = malloc(4 * n), *dy = malloc(4 * n), *dx = malloc(4 * n), *saved = malloc(8 * rows);
  float *w = malloc(4 * D), *b = malloc(4 * D), *dw = malloc(4 * D), *db = malloc(4 * D);
  double *xd = malloc(8 * n), *yd = malloc(8 * n), *dyd = malloc(8 * n), *dxd = malloc(8 * n);
  double *savedd = malloc(16 * rows), *wd = malloc(8 * D), *bd = malloc(8 * D), *dwd = malloc(8 * D), *dbd = malloc(8 * D);
  gc_fill(xd, n, 41, 1.0);
  for (int64_t i = 0; i < n; i++) xd[i] = x[i] = (float)(xd[i] * (1 + (i / D) % 5) + offset);
  fill_pair(w, wd, D, 42, 0.5);
  for (int64_t j = 0; j < D; j++) wd[j] = w[j] = w[j] + 1.0f;
  fill_pair(b, bd, D, 43, 0.5);
  fill_pair(dy, dyd, n, 44, 1.0);
  fill_pair(dx, dxd, n, 45, 1.0);
  fill_pair(dw, dwd, D, 46, 1.0);
  fill_pair(db, dbd, D, 47, 1.0);
  if (kind == KIND_LNZ) {
    lnz_forward(y, x, (float)LNZ_SCALE, saved, rows, D);
    lnz_forward_ref(yd, xd, (double)(float)LNZ_SCALE, savedd, rows, D);
    lnz_backward(dx, dy, x, (float)LNZ_SCALE, saved, rows, D);
    lnz_backward_ref(dxd, dyd, xd, (double)(float)LNZ_SCALE, savedd, rows, D);
  } else {
    norm_forward((norm_kind)kind, y, x, w, kind == NORM_LAYERNORM ? b : NULL, saved, rows, D);
    norm_forward_ref((norm_kind)kind, yd, xd, wd, kind == NORM_LAYERNORM ? bd : NULL, savedd, rows, D);
    norm_backward((norm_kind)kind, dx, dw, kind == NORM_LAYERNORM ? db : NULL, dy, x, w, saved, rows, D);
    norm_backward_ref((norm_kind)kind, dxd, dwd, kind == NORM_LAYERNORM ? dbd : NULL, dyd, xd, wd, savedd, rows, D);
  }
  char nm[96];
  /* Statistics: double sums on both sides, the fast one rounded to float once: rtol 2 eps. The mean
   * is rounded to float, so with an offset the centred values carry |offset| eps/2 absolute error. */
  double eps = FLT_EPSILON, moff = fabs(offset) * eps;
  snprintf(nm, sizeof nm, "%s rows %lld D %lld off %g: mean", kind_name(kind), (long long)rows, (long long)D, offset);
  cmp(nm, saved, savedd, rows, 1e-7, 2 * eps);
  snprintf(nm, sizeof nm, "%s rows %lld D %lld off %g: rstd", kind_name(kind), (long long)rows, (long long)D, offset);
  cmp(nm, saved + rows, savedd + rows, rows, 0, 2 * eps);
  /* y = xhat w + b in float: |xhat| <= sqrt(D), a few roundings: atol 4 eps sqrt(D) (+ the mean's
   * error times rstd), rtol 4 eps. */
  double rmax = 0;
  for (int64_t r = 0; r < rows; r++) rmax = fmax(rmax, savedd[rows + r]);
  snprintf(nm, sizeof nm, "%s rows %lld D %lld off %g: y", kind_name(kind), (long long)rows, (long long)D, offset);
  cmp(nm, y, yd, n, 4 * eps * sqrt((double)D) + 2 * moff * rmax, 4 * eps);
  /* dx = rstd (g - mean g - xhat mean(g xhat)): terms O(rstd |g|), float products, a cancellation:
   * atol 8 eps rstd sqrt(D), plus the mean's shift of xhat. */
  snprintf(nm, sizeof nm, "%s rows %lld D %lld off %g: dx", kind_name(kind), (long long)rows, (long long)D, offset);
  cmp(nm, dx, dxd, n, 8 * eps * rmax * sqrt((double)D) * (1 + moff * rmax * 100), 4 * eps);
  if (kind != KIND_LNZ) {
    /* Parameter sums of dy xhat over rows (dweight) or over all entries (dscale): each term has a
     * few eps relative error (float xhat, |xhat| <~ 3), summed in double with random signs:
     * atol 8 eps sqrt(#terms), plus the float mean's common shift of xhat (moff rstd per term). */
    double terms = kind == NORM_SCALENORM ? (double)rows * D : (double)rows;
    double at = 8 * eps * sqrt(terms) + 4 * moff * rmax * sqrt(terms);
    snprintf(nm, sizeof nm, "%s rows %lld D %lld off %g: d%s", kind_name(kind), (long long)rows, (long long)D,
             offset, kind == NORM_SCALENORM ? "scale" : "weight");
    cmp(nm, dw, dwd, np, at, 4 * eps);
    if (kind == NORM_LAYERNORM) {
      snprintf(nm, sizeof nm, "%s rows %lld D %lld: dbias", kind_name(kind), (long long)rows, (long long)D);
      cmp(nm, db, dbd, D, 2 * eps, 2 * eps); /* exact double sum of float dy, rounded once */
    }
  }
  free(x); free(y); free(dy); free(dx); free(saved); free(w); free(b); free(dw); free(db);
  free(xd); free(yd); free(dyd); free(dxd); free(savedd); free(wd); free(bd); free(dwd); free(dbd);
}

/* The same bits for 1 and 2 threads: dx (row-parallel), and the parameter grads (fixed order). */
static void check_determinism(int kind) {
  int64_t rows = 4000, D = 130, n = rows * D;
  float *x = malloc(4 * n), *dy = malloc(4 * n), *y = malloc(4 * n), *saved = malloc(8 * rows);
  float *dx[2], *dw[2], *db[2], w[130], b[130];
  for (int64_t i = 0; i < n; i++) { x[i] = (float)sin(0.1 * (double)i) + 0.01f * (float)(i % 7); dy[i] = (float)cos(0.3 * (double)i); }
  for (int j = 0; j < D; j++) { w[j] = 1.0f + 0.01f * (float)j; b[j] = 0.1f; }
  int nt = omp_get_max_threads();
  for (int t = 0; t < 2; t++) {
    omp_set_num_threads(t == 0 ? 1 : (nt > 1 ? nt : 2));
    dx[t] = calloc(n, 4);
    dw[t] = calloc(D, 4);
    db[t] = calloc(D, 4);
    norm_forward((norm_kind)kind, y, x, w, kind == NORM_LAYERNORM ? b : NULL, saved, rows, D);
    norm_backward((norm_kind)kind, dx[t], dw[t], kind == NORM_LAYERNORM ? db[t] : NULL, dy, x, w, saved, rows, D);
  }
  omp_set_num_threads(nt);
  EXPECT(memcmp(dx[0], dx[1], 4 * n) == 0, "%s dx differs between thread counts", kind_name(kind));
  EXPECT(memcmp(dw[0], dw[1], 4 * D) == 0, "%s dweight differs between thread counts", kind_name(kind));
  EXPECT(memcmp(db[0], db[1], 4 * D) == 0, "%s dbias differs between thread counts", kind_name(kind));
  for (int t = 0; t < 2; t++) { free(dx[t]); free(dw[t]); free(db[t]); }
  free(x); free(dy); free(y); free(saved);
}

/* lnz output has mean 0 and, with scale Z^-1/4, norm ~ Z^(1/4) per row (the spec's remark). */
static void check_lnz_norm(void) {
  enum { ROWS = 16, Z = 64 };
  float x[ROWS * Z], y[ROWS * Z], saved[2 * ROWS];
  for (int i = 0; i < ROWS * Z; i++) x[i] = (float)sin(1.3 * i) * 3.0f + 1.0f;
  float s = powf((float)Z, -0.25f);
  lnz_forward(y, x, s, saved, ROWS, Z);
  double worst = 0;
  for (int r = 0; r < ROWS; r++) {
    double m = 0, q = 0;
    for (int j = 0; j < Z; j++) { m += y[r * Z + j]; q += (double)y[r * Z + j] * y[r * Z + j]; }
    worst = fmax(worst, fabs(sqrt(q) - pow(Z, 0.25)));
    EXPECT(fabs(m) < 1e-4, "lnz row %d mean %g", r, m);
  }
  EXPECT(worst < 1e-3, "lnz row norm differs from Z^(1/4) by %g", worst);
}

int main(void) {
  for (int k = 0; k < 4; k++) gradcheck_norm(k);
  for (int k = 0; k < 4; k++) {
    compare_norm(k, 7, 24, 0.0);      /* serial */
    compare_norm(k, 2000, 100, 0.0);  /* threads; D not a multiple of the 64-column block */
    compare_norm(k, 300, 64, 30.0);   /* offset rows: mean removal */
  }
  for (int k = 0; k < 3; k++) check_determinism(k);
  check_lnz_norm();
  EXPECT(norm_saved_floats(10) == 20, "saved floats");
  EXPECT(norm_param_floats(NORM_LAYERNORM, 8) == 16 && norm_param_floats(NORM_RMSNORM, 8) == 8 &&
             norm_param_floats(NORM_SCALENORM, 8) == 1, "param floats");
  return tu_finish("test_dense_norm");
}
