/* Gated residual: gradcheck of the double twin for x, u, h; float path vs twin; NULL gradients. */
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "layers/gate.h"
#include "layers/ref/gate_ref.h"
#include "tests/gradcheck.h"
#include "tests/compare.h"
#include "tests/test_util.h"


typedef struct {
  double *x, *u, *h, *y, *R;
  int64_t n;
} gc_ctx;

static double loss_gate(void *p) {
  gc_ctx *c = p;
  gate_forward_ref(c->y, c->x, c->u, c->h, c->n);
  double s = 0;
  for (int64_t i = 0; i < c->n; i++) s += c->R[i] * c->y[i];
  return s;
}

static void gradcheck_gate(void) {
  enum { N = 12 };
  double x[N], u[N], h[N], y[N], R[N], dx[N] = {0}, du[N] = {0}, dh[N] = {0};
  gc_fill(x, N, 61, 2.0);
  gc_fill(u, N, 62, 0.5);
  for (int i = 0; i < N; i++) u[i] += 0.5; /* a sigmoid output in (0, 1) */
  gc_fill(h, N, 63, 2.0);
  gc_fill(R, N, 64, 1.0);
  gc_ctx c = {x, u, h, y, R, N};
  gate_backward_ref(dx, du, dh, R, x, u, h, N);
  double e;
  e = gc_check("gate_ref dx", loss_gate, &c, x, dx, N, 1e-5);
  EXPECT(e < 1e-6, "gate dx %.3e", e);
  e = gc_check("gate_ref du", loss_gate, &c, u, du, N, 1e-5);
  EXPECT(e < 1e-6, "gate du %.3e", e);
  e = gc_check("gate_ref dh", loss_gate, &c, h, dh, N, 1e-5);
  EXPECT(e < 1e-6, "gate dh %.3e", e);
}

static void compare_gate(int64_t n) {
  float *x = malloc(4 * n), *u = malloc(4 * n), *h = malloc(4 * n), *y = malloc(4 * n), *dy = malloc(4 * n);
  float *dx = malloc(4 * n), *du = malloc(4 * n), *dh = malloc(4 * n);
  double *xd = malloc(8 * n), *ud = malloc(8 * n), *hd = malloc(8 * n), *yd = malloc(8 * n), *dyd = malloc(8 * n);
  double *dxd = malloc(8 * n), *dud = malloc(8 * n), *dhd = malloc(8 * n);
  fill_pair(x, xd, n, 65, 2.0);
  fill_pair(u, ud, n, 66, 0.5);
  for (int64_t i = 0; i < n; i++) ud[i] = u[i] = u[i] + 0.5f;
  fill_pair(h, hd, n, 67, 2.0);
  fill_pair(dy, dyd, n, 68, 1.0);
  fill_pair(dx, dxd, n, 69, 1.0);
  fill_pair(du, dud, n, 70, 1.0);
  fill_pair(dh, dhd, n, 71, 1.0);
  gate_forward(y, x, u, h, n);
  gate_forward_ref(yd, xd, ud, hd, n);
  gate_backward(dx, du, dh, dy, x, u, h, n);
  gate_backward_ref(dxd, dud, dhd, dyd, xd, ud, hd, n);
  /* Three float operations on O(1) values (|x|, |h| <= 2): atol 4 eps * 4, rtol 2 eps. */
  double at = 16 * FLT_EPSILON, rt = 2 * FLT_EPSILON;
  char nm[64];
  snprintf(nm, sizeof nm, "gate n %lld: y", (long long)n);
  cmp(nm, y, yd, n, at, rt);
  snprintf(nm, sizeof nm, "gate n %lld: dx", (long long)n);
  cmp(nm, dx, dxd, n, at, rt);
  snprintf(nm, sizeof nm, "gate n %lld: du", (long long)n);
  cmp(nm, du, dud, n, at, rt);
  snprintf(nm, sizeof nm, "gate n %lld: dh", (long long)n);
  cmp(nm, dh, dhd, n, at, rt);
  /* NULL gradients are skipped; the others still accumulate. */
  float *dh2 = malloc(4 * n);
  memcpy(dh2, dh, 4 * n);
  gate_backward(NULL, NULL, dh2, dy, x, u, h, n);
  gate_backward_ref(NULL, NULL, dhd, dyd, xd, ud, hd, n);
  snprintf(nm, sizeof nm, "gate n %lld: dh only (twice)", (long long)n);
  cmp(nm, dh2, dhd, n, 2 * at, rt);
  free(dh2);
  free(x); free(u); free(h); free(y); free(dy); free(dx); free(du); free(dh);
  free(xd); free(ud); free(hd); free(yd); free(dyd); free(dxd); free(dud); free(dhd);
}

int main(void) {
  gradcheck_gate();
  compare_gate(1000);
  compare_gate(200003);
  return tu_finish("test_dense_gate");
}
