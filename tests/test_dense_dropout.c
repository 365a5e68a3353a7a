/* Dropout: gradcheck of the double twin; the fast Philox path gives exactly the twin's masks (the
 * documented key layout); mask statistics (fraction dropped and pair independence within 5 sigma);
 * determinism; different steps / samples / sites / seeds differ; independence from how the batch is
 * split (sample-index keyed); backward consistent with forward; in place; p = 0 and p = 1; thread
 * counts; and a throughput print. */
#include <float.h>
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "layers/dropout.h"
#include "layers/ref/dropout_ref.h"
#include "tests/gradcheck.h"
#include "tests/compare.h"
#include "tests/test_util.h"
#include "trainer/base/rng.h"


static const char *DOM = "dropout/3/ffn";

/* ---- gradcheck ---------------------------------------------------------------------------- */
typedef struct {
  const dropout_cfg *c;
  double *x, *y, *R;
  int64_t B, L, W;
} gc_ctx;

static double loss_dropout(void *p) {
  gc_ctx *c = p;
  dropout_forward_ref(c->y, c->x, c->c, c->B, c->L, c->W);
  double s = 0;
  for (int64_t i = 0; i < c->B * c->L * c->W; i++) s += c->R[i] * c->y[i];
  return s;
}

static void gradcheck_dropout(void) {
  enum { B = 2, L = 3, W = 5, N = B * L * W };
  dropout_cfg cfg = {.p = 0.3f, .seed = 1234, .domain = DOM, .step = 7, .sample0 = 4};
  double x[N], y[N], R[N], dx[N] = {0};
  gc_fill(x, N, 81, 1.0);
  gc_fill(R, N, 82, 1.0);
  gc_ctx c = {&cfg, x, y, R, B, L, W};
  dropout_backward_ref(dx, R, &cfg, B, L, W);
  double e = gc_check("dropout_ref dx (p 0.3)", loss_dropout, &c, x, dx, N, 1e-5);
  EXPECT(e < 1e-6, "dropout dx %.3e", e);
}

/* ---- fast path vs twin: the same masks, exactly --------------------------------------------- */
static void compare_dropout(float p, int64_t B, int64_t L, int64_t W) {
  int64_t n = B * L * W;
  dropout_cfg cfg = {.p = p, .seed = 0xDEADBEEFCAFEull, .domain = DOM, .step = 11, .sample0 = 100};
  float *x = malloc(4 * n), *y = malloc(4 * n), *dy = malloc(4 * n), *dx = malloc(4 * n);
  double *xd = malloc(8 * n), *yd = malloc(8 * n), *dyd = malloc(8 * n), *dxd = malloc(8 * n);
  fill_pair(x, xd, n, 83, 1.0);
  for (int64_t i = 0; i < n; i++) if (x[i] == 0.0f) xd[i] = x[i] = 0.5f; /* zero iff dropped */
  fill_pair(dy, dyd, n, 84, 1.0);
  fill_pair(dx, dxd, n, 85, 1.0);
  dropout_forward(y, x, &cfg, B, L, W);
  dropout_forward_ref(yd, xd, &cfg, B, L, W);
  dropout_backward(dx, dy, &cfg, B, L, W);
  dropout_backward_ref(dxd, dyd, &cfg, B, L, W);
  int64_t mismatch = 0;
  for (int64_t i = 0; i < n; i++) mismatch += (y[i] == 0.0f) != (yd[i] == 0.0);
  EXPECT(mismatch == 0, "p %g: %lld of %lld mask entries differ from the reference key layout", (double)p,
         (long long)mismatch, (long long)n);
  /* Kept values are x * float(1/(1-p)) vs x / (1-p) in double: 2 roundings. */
  char nm[96];
  snprintf(nm, sizeof nm, "dropout p %g (%lld,%lld,%lld) forward", (double)p, (long long)B, (long long)L, (long long)W);
  cmp(nm, y, yd, n, 0, 2 * FLT_EPSILON);
  snprintf(nm, sizeof nm, "dropout p %g (%lld,%lld,%lld) backward", (double)p, (long long)B, (long long)L, (long long)W);
  cmp(nm, dx, dxd, n, 4 * FLT_EPSILON, 2 * FLT_EPSILON); /* + one addition onto O(1) values */
  free(x); free(y); free(dy); free(dx); free(xd); free(yd); free(dyd); free(dxd);
}

/* Mask of a call as 0/1 bytes: forward on ones. */
static void mask_of(uint8_t *keep, const dropout_cfg *cfg, int64_t B, int64_t L, int64_t W) {
  int64_t n = B * L * W;
  float *one = malloc(4 * n);
  for (int64_t i = 0; i < n; i++) one[i] = 1.0f;
  dropout_forward(one, one, cfg, B, L, W);
  for (int64_t i = 0; i < n; i++) keep[i] = one[i] != 0.0f;
  free(one);
}

static int64_t count_diff(const uint8_t *a, const uint8_t *b, int64_t n) {
  int64_t d = 0;
  for (int64_t i = 0; i < n; i++) d += a[i] != b[i];
  return d;
}

static void check_statistics(float p) {
  int64_t B = 4, L = 1000, W = 64, n = B * L * W;
  dropout_cfg cfg = {.p = p, .seed = 99, .domain = DOM, .step = 1, .sample0 = 0};
  uint8_t *k = malloc(n);
  mask_of(k, &cfg, B, L, W);
  int64_t dropped = 0, both = 0, pairs = 0;
  for (int64_t i = 0; i < n; i++) dropped += !k[i];
  /* Neighbouring elements (inside one Philox block and across blocks) drop independently. */
  for (int64_t i = 0; i + 1 < n; i++) { both += !k[i] && !k[i + 1]; pairs++; }
  double frac = (double)dropped / n, sig = sqrt(p * (1 - p) / n);
  double pp = (double)p * p, fb = (double)both / pairs, sigb = sqrt(pp * (1 - pp) / pairs) * 2; /* overlap: x2 */
  printf("dropout p %.2f: dropped %.5f (5 sigma %.5f), both-of-pair %.5f (want %.5f, 5 sigma %.5f)\n", (double)p,
         frac, 5 * sig, fb, pp, 5 * sigb);
  EXPECT(fabs(frac - p) < 5 * sig, "p %g: dropped fraction %.5f", (double)p, frac);
  EXPECT(fabs(fb - pp) < 5 * sigb, "p %g: neighbouring pair fraction %.5f vs %.5f", (double)p, fb, pp);
  /* Per-sample and per-feature fractions too (a key bug that repeats rows would show here). */
  for (int64_t b = 0; b < B; b++) {
    int64_t d = 0;
    for (int64_t i = 0; i < L * W; i++) d += !k[b * L * W + i];
    double f = (double)d / (L * W), s = sqrt(p * (1 - p) / (L * W));
    EXPECT(fabs(f - p) < 5 * s, "p %g: sample %lld dropped %.5f", (double)p, (long long)b, f);
  }
  free(k);
}

static void check_keys(void) {
  int64_t B = 4, L = 300, W = 48, n = B * L * W, nb = L * W;
  dropout_cfg cfg = {.p = 0.5f, .seed = 7, .domain = DOM, .step = 5, .sample0 = 10};
  uint8_t *a = malloc(n), *b = malloc(n), *c = malloc(n);
  mask_of(a, &cfg, B, L, W);
  mask_of(b, &cfg, B, L, W);
  EXPECT(count_diff(a, b, n) == 0, "same keys must give the same mask");
  /* Batch split: samples 10..13 at once == 10..11 then 12..13 == one sample at a time. */
  dropout_cfg c1 = cfg, c2 = cfg;
  c2.sample0 = 12;
  mask_of(c, &c1, 2, L, W);
  mask_of(c + 2 * nb, &c2, 2, L, W);
  EXPECT(count_diff(a, c, n) == 0, "mask depends on the batch split (2+2)");
  for (int64_t s = 0; s < B; s++) {
    dropout_cfg cs = cfg;
    cs.sample0 = 10 + s;
    mask_of(c + s * nb, &cs, 1, L, W);
  }
  EXPECT(count_diff(a, c, n) == 0, "mask depends on the batch split (1+1+1+1)");
  /* Different samples, steps, sites and seeds give different masks (about half the entries at p .5). */
  int64_t d01 = count_diff(a, a + nb, nb);
  EXPECT(d01 > nb / 3, "samples 10 and 11 share their mask (%lld of %lld differ)", (long long)d01, (long long)nb);
  dropout_cfg v = cfg;
  v.step = 6;
  mask_of(c, &v, B, L, W);
  EXPECT(count_diff(a, c, n) > n / 3, "step 5 and 6 masks are too similar");
  v = cfg;
  v.domain = "dropout/3/h";
  mask_of(c, &v, B, L, W);
  EXPECT(count_diff(a, c, n) > n / 3, "sites ffn and h masks are too similar");
  v = cfg;
  v.seed = 8;
  mask_of(c, &v, B, L, W);
  EXPECT(count_diff(a, c, n) > n / 3, "seeds 7 and 8 masks are too similar");
  /* Thread counts do not matter. */
  int nt = omp_get_max_threads();
  omp_set_num_threads(1);
  mask_of(c, &cfg, B, L, W);
  omp_set_num_threads(nt);
  EXPECT(count_diff(a, c, n) == 0, "mask depends on the thread count");
  /* The documented layout, spelled out for one element: sample 12 (b = 2), t = 17, f = 5. */
  rng_stream s = rng_make(7, DOM, 5, 12);
  int dropped = rng_uniform(&s, 17 * W + 5) < 0.5;
  EXPECT(dropped == !a[2 * nb + 17 * W + 5], "element (sample 12, t 17, f 5) does not follow the key layout");
  free(a); free(b); free(c);
}

/* Backward regenerates the forward's mask: dx = dy * mask * scale with the forward's mask; in place == out of place;
 * p = 0 is the identity; p = 1 gives zeros; NaN propagates through dropped entries like x * mask. */
static void check_consistency(void) {
  int64_t B = 3, L = 100, W = 33, n = B * L * W;
  dropout_cfg cfg = {.p = 0.25f, .seed = 3, .domain = "dropout/embed/x", .step = 2, .sample0 = 5};
  float *x = malloc(4 * n), *y = malloc(4 * n), *yi = malloc(4 * n), *dy = malloc(4 * n), *dx = calloc(n, 4);
  for (int64_t i = 0; i < n; i++) { x[i] = 1.0f + (float)(i % 13); dy[i] = 2.0f - (float)(i % 5); }
  dropout_forward(y, x, &cfg, B, L, W);
  memcpy(yi, x, 4 * n);
  dropout_forward(yi, yi, &cfg, B, L, W);
  EXPECT(memcmp(y, yi, 4 * n) == 0, "in-place forward differs");
  dropout_backward(dx, dy, &cfg, B, L, W);
  int64_t bad = 0;
  float scale = (float)(1.0 / (1.0 - 0.25));
  for (int64_t i = 0; i < n; i++) bad += dx[i] != dy[i] * (y[i] != 0.0f ? scale : 0.0f); /* x >= 1: y = 0 iff dropped */
  EXPECT(bad == 0, "backward mask differs from forward's in %lld entries", (long long)bad);
  dropout_cfg z = cfg;
  z.p = 0;
  dropout_forward(yi, x, &z, B, L, W);
  EXPECT(memcmp(yi, x, 4 * n) == 0, "p = 0 must be the identity");
  memset(dx, 0, 4 * n);
  dropout_backward(dx, dy, &z, B, L, W);
  EXPECT(memcmp(dx, dy, 4 * n) == 0, "p = 0 backward must add dy");
  z.p = 1;
  dropout_forward(yi, x, &z, B, L, W);
  bad = 0;
  for (int64_t i = 0; i < n; i++) bad += yi[i] != 0.0f;
  EXPECT(bad == 0, "p = 1 must drop everything");
  x[0] = NAN;
  x[1] = NAN;
  dropout_forward(yi, x, &cfg, 1, 1, 2);
  EXPECT(isnan(yi[0]) && isnan(yi[1]), "NaN must propagate through kept and dropped entries");
  free(x); free(y); free(yi); free(dy); free(dx);
}

static void bench(void) {
  int64_t B = 8, L = 1024, W = 512, n = B * L * W;
  float *x = malloc(4 * n), *y = malloc(4 * n);
  for (int64_t i = 0; i < n; i++) x[i] = 1.0f;
  dropout_cfg cfg = {.p = 0.1f, .seed = 1, .domain = DOM, .step = 1, .sample0 = 0};
  dropout_forward(y, x, &cfg, B, L, W);
  double t0 = omp_get_wtime();
  for (int r = 0; r < 5; r++) dropout_forward(y, x, &cfg, B, L, W);
  double t1 = omp_get_wtime();
  printf("bench: dropout forward %.3f ns/elem (%lld elements, %d threads)\n", (t1 - t0) / 5 / n * 1e9, (long long)n,
         omp_get_max_threads());
  free(x); free(y);
}

int main(void) {
  gradcheck_dropout();
  compare_dropout(0.1f, 2, 37, 5);     /* L*W not a multiple of the 64-element group */
  compare_dropout(0.5f, 3, 1000, 17);  /* several work chunks per sample, threads */
  compare_dropout(0.9f, 1, 4, 3);
  check_statistics(0.1f);
  check_statistics(0.5f);
  check_keys();
  check_consistency();
  char buf[64];
  EXPECT(strcmp(dropout_domain(buf, sizeof buf, 3, DROPOUT_SITE_FFN_OUT), "dropout/3/ffn") == 0, "domain %s", buf);
  EXPECT(strcmp(dropout_domain(buf, sizeof buf, -1, DROPOUT_SITE_EMBED), "dropout/embed/x") == 0, "domain %s", buf);
  bench();
  return tu_finish("test_dense_dropout");
}
