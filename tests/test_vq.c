/* VQ of keys (layers/vq.h): codebook, codes against a brute-force float32 argmin (ties to the lowest
 * code), statistics against the double reference, the commitment gradient (finite differences on the
 * reference, then fast vs reference), codebook update, re-seeding and usage against hand values. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "layers/ref/vq_ref.h"
#include "layers/vq.h"
#include "tests/gradcheck.h"
#include "tests/test_util.h"

static void to_f(float *y, const double *x, int64_t n) { for (int64_t i = 0; i < n; i++) y[i] = (float)x[i]; }
static void to_d(double *y, const float *x, int64_t n) { for (int64_t i = 0; i < n; i++) y[i] = x[i]; }

/* Brute-force float32 argmin of ||Cb_s||^2 - 2 k.Cb_s (strict <: lowest s on ties); *gap = second
 * smallest minus smallest distance (double), for the spec's near-tie rule. */
static int32_t brute_code(const float *k, const float *cb, int64_t Z, int64_t S, double *gap) {
  double best = INFINITY, second = INFINITY;
  int32_t bs = 0;
  for (int64_t s = 0; s < S; s++) {
    double sq = 0, dot = 0;
    for (int64_t z = 0; z < Z; z++) {
      sq += (double)cb[s * Z + z] * cb[s * Z + z];
      dot += (double)k[z] * cb[s * Z + z];
    }
    float d = (float)sq - 2.0f * (float)dot;
    if (d < best) { second = best; best = d; bs = (int32_t)s; }
    else if (d < second) second = d;
  }
  *gap = second - best;
  return bs;
}

static void test_codebook(void) {
  const int64_t S = 4, Z = 3;
  float c_sum[12], c_count[4] = {2.0f, 0.5f, 0.001f, 0.0f}, cb[12];
  double c_sumd[12], c_countd[4], cbd[12];
  for (int i = 0; i < 12; i++) c_sum[i] = (float)(i - 5) * 0.25f;
  vq_codebook(cb, c_sum, c_count, S, Z);
  to_d(c_sumd, c_sum, 12);
  to_d(c_countd, c_count, 4);
  vq_codebook_ref(cbd, c_sumd, c_countd, S, Z);
  for (int i = 0; i < 12; i++) EXPECT_NEAR(cb[i], cbd[i], 0, 1e-6);
  /* hand values: row 0 divides by 2, rows 2 and 3 by the floor 0.01 */
  EXPECT_NEAR(cb[0], -1.25 / 2, 0, 1e-7);
  EXPECT_NEAR(cb[6], 0.25 / 0.01, 0, 1e-6);
  EXPECT_NEAR(cb[11], 1.5 / 0.01, 0, 1e-6);
}

/* Random keys: fast codes equal the brute-force float32 argmin except at the spec's near-ties;
 * k_hat = Cb[code]; statistics equal the reference (codes equal), and accumulate. */
static void test_forward_random(const dnn_ctx *ctx) {
  const int64_t BT = 300, Z = 16, S = 24;
  double *kd = malloc(sizeof(double) * BT * Z), *cbd = malloc(sizeof(double) * S * Z);
  float *k = malloc(sizeof(float) * BT * Z), *cb = malloc(sizeof(float) * S * Z);
  float *k_hat = malloc(sizeof(float) * BT * Z), *scratch = malloc(sizeof(float) * vq_scratch_floats(BT, S));
  double *key_sums = calloc(S * Z, sizeof(double)), n_s[24] = {0};
  double *khd = malloc(sizeof(double) * BT * Z), *ksd = calloc(S * Z, sizeof(double)), nsd[24] = {0};
  int32_t *code = malloc(sizeof(int32_t) * BT), *coded = malloc(sizeof(int32_t) * BT);
  uint8_t *m = malloc(BT);
  gc_fill(kd, BT * Z, 1, 1.0);
  gc_fill(cbd, S * Z, 2, 1.0);
  to_f(k, kd, BT * Z);
  to_f(cb, cbd, S * Z);
  to_d(kd, k, BT * Z); /* reference sees exactly the float inputs */
  to_d(cbd, cb, S * Z);
  for (int64_t t = 0; t < BT; t++) m[t] = (t % 7) != 3;

  vq_plan p;
  vq_plan_init(&p, ctx, BT, Z, S);
  double cs = 0, cnt = 0, csd = 0, cntd = 0;
  vq_forward(&p, ctx, code, k_hat, &cs, &cnt, n_s, key_sums, k, m, cb, scratch);
  vq_forward_ref(coded, khd, &csd, &cntd, nsd, ksd, kd, m, cbd, BT, Z, S);

  int near_ties = 0, mismatches = 0;
  for (int64_t t = 0; t < BT; t++) {
    double gap, kk = 0;
    int32_t bc = brute_code(k + t * Z, cb, Z, S, &gap);
    for (int64_t z = 0; z < Z; z++) kk += (double)k[t * Z + z] * k[t * Z + z];
    if (gap < 1e-4 * kk) { near_ties++; continue; }
    if (code[t] != bc || coded[t] != bc) mismatches++;
    for (int64_t z = 0; z < Z; z++) EXPECT(k_hat[t * Z + z] == cb[code[t] * Z + z], "k_hat row %lld", (long long)t);
  }
  printf("vq codes: %lld keys, %d near-ties skipped, %d mismatches\n", (long long)BT, near_ties, mismatches);
  EXPECT(mismatches == 0, "%d codes differ from the brute-force argmin", mismatches);
  EXPECT(near_ties < BT / 20, "too many near-ties (%d) for the test to mean anything", near_ties);
  /* With codes equal, the statistics match the double reference to float rounding: the commit sum
   * is summed in double from per-row float values (relative ~1e-7); key sums are double sums of the
   * float32-rounded keys (each off by <= 2^-24 relative). */
  EXPECT(cnt == cntd, "valid count %g vs %g", cnt, cntd);
  EXPECT_NEAR(cs, csd, 0, 1e-6);
  for (int64_t s = 0; s < S; s++) EXPECT(n_s[s] == nsd[s], "n_s[%lld] %g vs %g", (long long)s, n_s[s], nsd[s]);
  for (int64_t i = 0; i < S * Z; i++) EXPECT_NEAR(key_sums[i], ksd[i], 1e-5, 1e-5);
  /* second call accumulates */
  vq_forward(&p, ctx, code, k_hat, &cs, &cnt, n_s, key_sums, k, m, cb, scratch);
  EXPECT(cnt == 2 * cntd, "count accumulates");
  EXPECT_NEAR(cs, 2 * csd, 0, 1e-6);
  for (int64_t s = 0; s < S; s++) EXPECT(n_s[s] == 2 * nsd[s], "n_s accumulates");
  for (int64_t i = 0; i < S * Z; i++) EXPECT_NEAR(key_sums[i], 2 * ksd[i], 1e-5, 1e-5);
  /* counts stay exact integers past float32's 2^24 (a step of more than 16.7M tokens): start every
   * count at 2^24 and add one more micro-batch; in float32, 2^24 + 1 would round back to 2^24 */
  for (int64_t s = 0; s < S; s++) n_s[s] = 16777216.0;
  vq_forward(&p, ctx, code, k_hat, &cs, &cnt, n_s, key_sums, k, m, cb, scratch);
  for (int64_t s = 0; s < S; s++)
    EXPECT(n_s[s] == 16777216.0 + nsd[s], "n_s[%lld] past 2^24: %.1f vs %.1f", (long long)s, n_s[s], 16777216.0 + nsd[s]);

  /* Commitment gradient, fast vs reference (w includes the 1/N of the global mean). */
  double w = 1e-2 / cntd;
  float *dk = malloc(sizeof(float) * BT * Z);
  double *dkd = calloc(BT * Z, sizeof(double));
  for (int64_t i = 0; i < BT * Z; i++) dk[i] = 0;
  vq_backward(dk, w, k, m, cb, code, BT, Z);
  vq_backward_ref(dkd, w, kd, m, cbd, coded, BT, Z);
  /* one float product per entry: relative 1e-6 */
  for (int64_t i = 0; i < BT * Z; i++) EXPECT_NEAR(dk[i], dkd[i], 0, 1e-6);
  for (int64_t t = 0; t < BT; t++)
    if (!m[t]) EXPECT(dk[t * Z] == 0, "padding row %lld got a commitment gradient", (long long)t);
  vq_backward(dk, w, k, m, cb, code, BT, Z); /* accumulates: exactly twice */
  for (int64_t i = 0; i < BT * Z; i++) EXPECT_NEAR(dk[i], 2 * dkd[i], 0, 1e-6);

  vq_plan_free(&p);
  free(kd); free(cbd); free(k); free(cb); free(k_hat); free(key_sums); free(scratch); free(khd); free(ksd);
  free(code); free(coded); free(m); free(dk); free(dkd);
}

/* Exact ties (small integers: every dot product is exact in any order): lowest code wins. */
static void test_ties(const dnn_ctx *ctx) {
  const int64_t Z = 4, S = 6, BT = 4;
  /* rows 1 and 4 duplicate; rows 2 and 3 are equidistant from k = 0 (same norm) */
  float cb[6 * 4] = {5, 5, 5, 5, 1, 0, 0, 0, 0, 2, 0, 0, 0, 0, -2, 0, 1, 0, 0, 0, 9, 9, 9, 9};
  float k[4 * 4] = {1, 0, 0, 0,     /* nearest: rows 1 and 4 (duplicates) -> 1 */
                    0, 0, 0, 0,     /* ||Cb||^2: row 1/4 = 1 is smallest -> 1 */
                    0, 1, -1, 0,    /* rows 2 and 3: d = 4 - 4 = 0 for both, row 1: 1 -> 2 */
                    0, 0, 0, 0};
  cb[4 * 4 + 0] = 1;
  float k_hat[16], scratch[64];
  double n_s[6] = {0}, ks[24] = {0};
  int32_t code[4];
  uint8_t m[4] = {1, 1, 1, 0};
  double cs = 0, cnt = 0;
  vq_plan p;
  vq_plan_init(&p, ctx, BT, Z, S);
  EXPECT(vq_scratch_floats(BT, S) <= 64, "scratch");
  vq_forward(&p, ctx, code, k_hat, &cs, &cnt, n_s, ks, k, m, cb, scratch);
  EXPECT(code[0] == 1 && code[1] == 1 && code[2] == 2 && code[3] == 1, "tie codes %d %d %d %d", code[0], code[1],
         code[2], code[3]);
  /* hand statistics: valid tokens 0, 1, 2 -> n = [0, 2, 1, 0, 0, 0]; commit = 0 + 1 + (0+1+1+0) */
  EXPECT(cnt == 3 && n_s[1] == 2 && n_s[2] == 1 && n_s[0] == 0 && n_s[4] == 0, "tie stats");
  EXPECT_NEAR(cs, 3.0, 0, 1e-12);
  EXPECT(ks[1 * 4 + 0] == 1 && ks[2 * 4 + 1] == 1 && ks[2 * 4 + 2] == -1, "tie key sums");
  vq_plan_free(&p);
}

/* Finite differences on the reference commitment loss  w * sum_t m_t ||k_t - Cb[code_t]||^2 (codes
 * recomputed at every evaluation; random keys are far from ties at this step size). */
typedef struct { double *k, *cb, *khat, *ks; uint8_t *m; int32_t *code; int64_t BT, Z, S; double w; } commit_ctx;
static double commit_loss(void *vctx) {
  commit_ctx *c = vctx;
  double cs = 0, cnt = 0, ns[8] = {0};
  memset(c->ks, 0, sizeof(double) * c->S * c->Z);
  vq_forward_ref(c->code, c->khat, &cs, &cnt, ns, c->ks, c->k, c->m, c->cb, c->BT, c->Z, c->S);
  return c->w * cs;
}

static void test_commit_gradcheck(void) {
  const int64_t BT = 9, Z = 5, S = 7;
  double k[45], cb[35], khat[45], ks[35], dk[45] = {0};
  uint8_t m[9] = {1, 1, 0, 1, 1, 1, 1, 0, 0};
  int32_t code[9];
  gc_fill(k, BT * Z, 11, 1.0);
  gc_fill(cb, S * Z, 12, 1.0);
  commit_ctx c = {k, cb, khat, ks, m, code, BT, Z, S, 0.37};
  commit_loss(&c);
  vq_backward_ref(dk, c.w, k, m, cb, code, BT, Z);
  EXPECT(gc_check("vq commit dk", commit_loss, &c, k, dk, BT * Z, 1e-6) < 1e-6, "commit gradient");
}

static void test_update_reseed_usage(void) {
  /* update, decay 0.5: c_count = 0.5 [1, 4] + 0.5 [3, 0] = [2, 2];
   * c_sum = 0.5 [[2, 4], [8, 0]] + 0.5 [[6, 2], [0, 0]] = [[4, 3], [4, 0]] */
  float c_sum[4] = {2, 4, 8, 0}, c_count[2] = {1, 4};
  double n_s[2] = {3, 0}, ks[4] = {6, 2, 0, 0};
  vq_codebook_update(c_sum, c_count, n_s, ks, 0.5f, 2, 2);
  EXPECT(c_count[0] == 2 && c_count[1] == 2, "update counts %g %g", c_count[0], c_count[1]);
  EXPECT(c_sum[0] == 4 && c_sum[1] == 3 && c_sum[2] == 4 && c_sum[3] == 0, "update sums");
  /* decay 0.99 in double: 0.99 * 1 + 0.01 * 3 = 1.02 */
  float cc = 1, cs1 = 1;
  double n1 = 3, k1 = 3;
  vq_codebook_update(&cs1, &cc, &n1, &k1, 0.99f, 1, 1);
  EXPECT_NEAR(cc, (double)0.99f + (1 - (double)0.99f) * 3, 0, 1e-7);

  /* re-seed: N_t = 1000, S = 4 -> tau = 2.5; after the update counts [3, 2.4, 0.5, 2.5]: codes 1, 2 */
  EXPECT_NEAR(vq_reseed_tau(1000, 4), 2.5, 0, 1e-15);
  float before[4] = {3.2f, 2.6f, 0.5f, 2.5f};
  uint8_t maybe[4], rs[4];
  /* candidates with g = 0.9: g c = [2.88, 2.34, 0.45, 2.25] < 2.5 -> codes 1, 2, 3 */
  EXPECT(vq_reseed_candidates(maybe, before, 0.9f, 1000, 4) == 3, "3 candidates");
  EXPECT(!maybe[0] && maybe[1] && maybe[2] && maybe[3], "candidate set");
  float cnt4[4] = {3, 2.4f, 0.5f, 2.5f}, sum4[8] = {1, 1, 2, 2, 3, 3, 4, 4};
  double keys[8] = {NAN, NAN, 0.5f, -1, 2, 0.25f, NAN, NAN}; /* rows 0 and 3 must not be read */
  EXPECT(vq_reseed(sum4, cnt4, rs, keys, 1000, 4, 2) == 2, "two re-seeds");
  EXPECT(!rs[0] && rs[1] && rs[2] && !rs[3], "re-seeded set");
  EXPECT(cnt4[0] == 3 && cnt4[1] == 5 && cnt4[2] == 5 && cnt4[3] == 2.5f, "re-seeded counts");
  EXPECT(sum4[0] == 1 && sum4[2] == 2.5f && sum4[3] == -5 && sum4[4] == 10 && sum4[5] == 1.25f && sum4[6] == 4,
         "re-seeded sums %g %g %g %g", sum4[2], sum4[3], sum4[4], sum4[5]);
  /* the re-seeded code then decodes to the key itself: Cb = 2 tau k / (2 tau) */
  float cbr[8];
  vq_codebook(cbr, sum4, cnt4, 4, 2);
  EXPECT(cbr[2] == 0.5f && cbr[3] == -1, "re-seeded code = its key");

  EXPECT(vq_reseed_token(0.5, 1000) == 500, "token index");
  EXPECT(vq_reseed_token(0.0, 1000) == 0, "token index 0");
  EXPECT(vq_reseed_token(0.9999, 1000) == 999, "token index last");
  /* the largest u below 1 never indexes past the last token */
  const int64_t ns_[4] = {1, 3, 1000003, ((int64_t)1 << 53) + 1};
  for (int i = 0; i < 4; i++) {
    int64_t j = vq_reseed_token(nextafter(1.0, 0.0), ns_[i]);
    EXPECT(j >= 0 && j <= ns_[i] - 1 && j >= ns_[i] - 2, "u -> 1: j %lld of %lld", (long long)j, (long long)ns_[i]);
  }

  int64_t in_use;
  double ppl;
  double u1[4] = {2, 2, 0, 0}, u2[4] = {1, 1, 1, 1}, u3[2] = {3, 1}, u4[3] = {0, 0, 0};
  vq_usage(&in_use, &ppl, u1, 4);
  EXPECT(in_use == 2, "in use");
  EXPECT_NEAR(ppl, 2, 0, 1e-12);
  vq_usage(&in_use, &ppl, u2, 4);
  EXPECT(in_use == 4, "in use");
  EXPECT_NEAR(ppl, 4, 0, 1e-12);
  vq_usage(&in_use, &ppl, u3, 2);
  EXPECT_NEAR(ppl, exp(-(0.75 * log(0.75) + 0.25 * log(0.25))), 0, 1e-12);
  vq_usage(&in_use, &ppl, u4, 3);
  EXPECT(in_use == 0 && ppl == 0, "empty usage");
}

int main(void) {
  dnn_ctx ctx;
  dnn_ctx_init(&ctx);
  test_codebook();
  test_forward_random(&ctx);
  test_ties(&ctx);
  test_commit_gradcheck();
  test_update_reseed_usage();
  dnn_ctx_free(&ctx);
  return tu_finish("test_vq");
}
