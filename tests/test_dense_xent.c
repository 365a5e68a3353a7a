/* Softmax cross-entropy: gradcheck of the double twin (loss = loss_sum / count, masked and ignored
 * rows), float path vs twin (loss sum, counts, accuracy, dlogits), global normalization over split
 * calls, determinism across thread counts, large logits, per-row nll, and the error on a target >= K. */
#include <float.h>
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "layers/ref/xent_ref.h"
#include "layers/xent.h"
#include "tests/gradcheck.h"
#include "tests/compare.h"
#include "tests/test_util.h"


/* ---- gradcheck: loss = loss_sum * scale with scale = 1/count ------------------------------- */
enum { GR = 6, GK = 5 };
typedef struct {
  double *logits, *mask, *saved;
  const int32_t *tg;
  double scale;
} gc_ctx;

static double loss_xent(void *p) {
  gc_ctx *c = p;
  xent_stats st;
  xent_forward_ref(&st, c->logits, c->tg, c->mask, c->saved, GR, GK);
  return st.loss_sum * c->scale;
}

static void gradcheck_xent(void) {
  double logits[GR * GK], mask[GR] = {1, 1, 0, 1, 1, 1}, saved[2 * GR], g[GR * GK] = {0};
  int32_t tg[GR] = {0, 4, 2, -1, 3, 1}; /* row 2 masked, row 3 ignored target */
  gc_fill(logits, GR * GK, 131, 3.0);
  gc_ctx c = {logits, mask, saved, tg, 0.25};
  xent_stats st;
  xent_forward_ref(&st, logits, tg, mask, saved, GR, GK);
  EXPECT(st.count == 4, "counted rows %lld (want 4)", (long long)st.count);
  xent_backward_ref(g, c.scale, logits, tg, mask, saved, GR, GK);
  double e = gc_check("xent_ref dlogits", loss_xent, &c, logits, g, GR * GK, 1e-5);
  EXPECT(e < 1e-6, "xent dlogits %.3e", e);
  for (int j = 0; j < GK; j++) EXPECT(g[2 * GK + j] == 0 && g[3 * GK + j] == 0, "uncounted rows get gradient");
}

/* ---- float vs twin ------------------------------------------------------------------------ */
static void compare_xent(int64_t R, int64_t K, double spread, int masked) {
  float *l = malloc(4 * R * K), *d = malloc(4 * R * K), *mask = malloc(4 * R), *saved = malloc(8 * R);
  double *ld = malloc(8 * R * K), *dd = malloc(8 * R * K), *maskd = malloc(8 * R), *savedd = malloc(16 * R);
  int32_t *tg = malloc(4 * R);
  fill_pair(l, ld, R * K, 141, spread);
  fill_pair(d, dd, R * K, 142, 0.001);
  for (int64_t r = 0; r < R; r++) {
    tg[r] = (int32_t)((r * 31 + 7) % K);
    if (r % 3 == 0) { /* make a third of the rows correct: the target is the argmax */
      l[r * K + tg[r]] = (float)(spread * 2);
      ld[r * K + tg[r]] = l[r * K + tg[r]];
    }
    if (r % 11 == 5) tg[r] = -1;
    maskd[r] = mask[r] = (r % 7 == 3) ? 0.0f : 1.0f;
  }
  xent_stats s, sd;
  xent_forward(&s, NULL, l, tg, masked ? mask : NULL, saved, R, K);
  xent_forward_ref(&sd, ld, tg, masked ? maskd : NULL, savedd, R, K);
  printf("xent R %lld K %lld spread %g%s: loss_sum %.9g (ref %.9g), count %lld (%lld), correct %lld (%lld)\n",
         (long long)R, (long long)K, spread, masked ? " masked" : "", s.loss_sum, sd.loss_sum, (long long)s.count,
         (long long)sd.count, (long long)s.correct, (long long)sd.correct);
  EXPECT(s.count == sd.count && s.correct == sd.correct, "counts differ");
  /* Per row: float max and float log-sum (exps by act_expf, ~2 ulp, summed in double); the nll
   * error is a few eps of |max| + log K; summed over rows with random signs. */
  double per_row = 4 * FLT_EPSILON * (2 * spread + log((double)K));
  EXPECT_NEAR(s.loss_sum, sd.loss_sum, per_row * sqrt((double)R) * 4, 0);
  /* dlogits = scale (p - onehot): p has a few ulp of relative error from act_expf and the float
   * log-sum (|logit - max - logsum| eps); added onto values of 1e-3. */
  double scale = 1.0 / (double)(sd.count > 0 ? sd.count : 1);
  xent_backward(d, scale, l, tg, masked ? mask : NULL, saved, R, K);
  xent_backward_ref(dd, scale, ld, tg, masked ? maskd : NULL, savedd, R, K);
  char nm[96];
  snprintf(nm, sizeof nm, "xent R %lld K %lld spread %g: dlogits", (long long)R, (long long)K, spread);
  cmp(nm, d, dd, R * K, scale * 8 * FLT_EPSILON * (1 + 2 * spread) + 1e-9, 4 * FLT_EPSILON);
  free(l); free(d); free(mask); free(saved); free(ld); free(dd); free(maskd); free(savedd); free(tg);
}

/* Global normalization: two "ranks" each run their half and use scale = 1/global count: the
 * gradients equal one call over all rows, and the loss sums and counts add up. Sums are identical
 * for 1 and 2 threads. */
static void check_split_and_threads(void) {
  int64_t R = 5000, K = 64, h = 2000;
  float *l = malloc(4 * R * K), *saved = malloc(8 * R), *s1 = malloc(8 * h), *s2 = malloc(8 * (R - h));
  float *d = calloc(R * K, 4), *ds = calloc(R * K, 4);
  int32_t *tg = malloc(4 * R);
  for (int64_t i = 0; i < R * K; i++) l[i] = (float)sin(0.013 * (double)i) * 4.0f;
  for (int64_t r = 0; r < R; r++) tg[r] = (int32_t)(r % K);
  xent_stats all, a, b, one;
  xent_forward(&all, NULL, l, tg, NULL, saved, R, K);
  xent_forward(&a, NULL, l, tg, NULL, s1, h, K);
  xent_forward(&b, NULL, l + h * K, tg + h, NULL, s2, R - h, K);
  EXPECT(a.count + b.count == all.count && a.correct + b.correct == all.correct, "split counts do not add up");
  EXPECT_NEAR(a.loss_sum + b.loss_sum, all.loss_sum, 1e-9 * fabs(all.loss_sum), 0);
  double scale = 1.0 / (double)all.count;
  xent_backward(d, scale, l, tg, NULL, saved, R, K);
  xent_backward(ds, scale, l, tg, NULL, s1, h, K);
  xent_backward(ds + h * K, scale, l + h * K, tg + h, NULL, s2, R - h, K);
  EXPECT(memcmp(d, ds, 4 * R * K) == 0, "split backward differs from one call");
  int nt = omp_get_max_threads();
  omp_set_num_threads(1);
  xent_forward(&one, NULL, l, tg, NULL, saved, R, K);
  omp_set_num_threads(nt);
  EXPECT(one.loss_sum == all.loss_sum && one.count == all.count && one.correct == all.correct,
         "xent_forward sums differ between 1 and %d threads", nt);
  free(l); free(saved); free(s1); free(s2); free(d); free(ds); free(tg);
}

/* Logits of +-1e4: no overflow, exact-looking loss. */
static void check_large_logits(void) {
  float l[6] = {1e4f, -1e4f, 0.0f, -1e4f, 1e4f, 1e4f - 1.0f}, saved[4], d[6] = {0};
  int32_t tg[2] = {0, 2};
  xent_stats s;
  xent_forward(&s, NULL, l, tg, NULL, saved, 2, 3);
  double want = 0 + (1.0 + log1p(exp(-1.0))); /* row 0: ~0; row 1: lse - l[2] with l[2] = 1e4 - 1 */
  EXPECT(isfinite(s.loss_sum) && fabs(s.loss_sum - want) < 1e-3, "large logits loss %.9g want %.9g", s.loss_sum, want);
  xent_backward(d, 1.0, l, tg, NULL, saved, 2, 3);
  for (int i = 0; i < 6; i++) EXPECT(isfinite(d[i]), "large logits: dlogits[%d] = %g", i, d[i]);
  EXPECT(s.correct == 1, "correct %lld (want 1)", (long long)s.correct);
}

/* Per-row nll (the position buckets of `longvq eval`): each counted row's value is what a call over
 * that row alone sums (bitwise: the same code on the same addresses), uncounted rows are 0, and
 * the rows add up to loss_sum within the rounding of two summation orders of the same doubles
 * (R * eps * sum |nll|). */
static void check_row_nll(void) {
  int64_t R = 3000, K = 40;
  float *l = malloc(4 * R * K), *mask = malloc(4 * R), *saved = malloc(8 * R), one_saved[2];
  double *nll = malloc(8 * R);
  int32_t *tg = malloc(4 * R);
  for (int64_t i = 0; i < R * K; i++) l[i] = (float)cos(0.017 * (double)i) * 3.0f;
  for (int64_t r = 0; r < R; r++) {
    tg[r] = r % 13 == 4 ? -1 : (int32_t)((r * 7) % K);
    mask[r] = r % 5 == 2 ? 0.0f : 1.0f;
  }
  for (int64_t r = 0; r < R; r++) nll[r] = -1; /* every row must be written */
  xent_stats all, one;
  xent_forward(&all, nll, l, tg, mask, saved, R, K);
  double sum = 0, abs_sum = 0;
  int64_t bad = 0, counted = 0;
  for (int64_t r = 0; r < R; r++) {
    int c = mask[r] != 0 && tg[r] >= 0;
    counted += c;
    if (!c) {
      bad += nll[r] != 0;
      continue;
    }
    xent_forward(&one, NULL, l + r * K, tg + r, mask + r, one_saved, 1, K);
    bad += one.loss_sum != nll[r];
    sum += nll[r];
    abs_sum += fabs(nll[r]);
  }
  EXPECT(bad == 0, "per-row nll: %lld rows differ from a call over the row alone (or uncounted rows not 0)",
         (long long)bad);
  EXPECT(counted == all.count, "counted %lld vs %lld", (long long)counted, (long long)all.count);
  EXPECT_NEAR(sum, all.loss_sum, (double)R * DBL_EPSILON * abs_sum, 0);
  printf("xent per-row nll: %lld rows, sum %.17g vs loss_sum %.17g\n", (long long)counted, sum, all.loss_sum);
  free(l); free(mask); free(saved); free(nll); free(tg);
}

static void check_bad_target(void) {
  fflush(stdout);
  pid_t pid = fork();
  if (pid == 0) {
    float l[4] = {0}, saved[4];
    int32_t tg[2] = {1, 2};
    xent_stats s;
    xent_forward(&s, NULL, l, tg, NULL, saved, 2, 2);
    _exit(0);
  }
  int st = 0;
  waitpid(pid, &st, 0);
  EXPECT(WIFEXITED(st) && WEXITSTATUS(st) == 1, "target >= K: child status %d (want exit 1)", st);
}

int main(void) {
  check_bad_target();
  gradcheck_xent();
  compare_xent(9, 5, 3.0, 1);
  compare_xent(4096, 256, 5.0, 1); /* decoder-like: byte vocabulary */
  compare_xent(64, 10, 20.0, 0);   /* encoder-like, peaky logits */
  check_split_and_threads();
  check_large_logits();
  check_row_nll();
  return tu_finish("test_dense_xent");
}
