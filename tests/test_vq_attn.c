/* VQ attention (layers/vq_attn.h):
 *  1. finite differences on the double reference (dense O(L^2) definition, far keys detached) for q,
 *     k (see "straight-through" below), v and rel_pos_bias, encoder and decoder, far on and off, padding;
 *  2. the fast O(L (C + S)) float32 path equal to the dense definition: forward O and every gradient,
 *     both modes, far on and off, padding (sequences shorter than L, mask zeros on the right), several
 *     chunk counts, one chunk in the whole batch;
 *  3. rows with no valid allowed key give O = 0 (and no gradient);
 *  4. gradients accumulate (+=);
 *  5. our loops give the same bits with 1 and 2 threads.
 *
 * Straight-through in the FD check: the reference computes near logits from its k_hat argument and far
 * logits from cb[code] (the codebook is a separate, constant argument). Perturbing k_hat therefore
 * moves only the near logits, which is the forward value q . (k_hat + (k - sg(k))) differentiated in
 * k: the FD derivative w.r.t. the k_hat array is the straight-through gradient dk (near pairs only). */
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "layers/ref/vq_attn_ref.h"
#include "layers/vq_attn.h"
#include "layers/vq_attn_internal.h"
#include "tests/gradcheck.h"
#include "tests/test_util.h"

typedef struct {
  int64_t B, L, C, Z, E, S, R; /* R = rel_pos_bias entries */
  lv_mode mode;
  int far;
  double *q, *kh, *v, *rpb, *cb, *dO; /* dO doubles as the loss weights of the gradcheck */
  int32_t *code;
  uint8_t *m;
  double *O; /* work */
} prob;

static prob make(int64_t B, int64_t L, int64_t C, int64_t Z, int64_t E, int64_t S, lv_mode mode, int far,
                 const int64_t *lens, unsigned seed, double qscale) {
  prob p = {.B = B, .L = L, .C = C, .Z = Z, .E = E, .S = S, .R = mode == LV_MODE_DECODER ? 2 * C : 2 * C - 1,
            .mode = mode, .far = far};
  const int64_t BT = B * L;
  p.q = malloc(sizeof(double) * BT * Z);
  p.kh = malloc(sizeof(double) * BT * Z);
  p.v = malloc(sizeof(double) * BT * E);
  p.dO = malloc(sizeof(double) * BT * E);
  p.O = malloc(sizeof(double) * BT * E);
  p.rpb = malloc(sizeof(double) * p.R);
  p.cb = malloc(sizeof(double) * S * Z);
  p.code = malloc(sizeof(int32_t) * BT);
  p.m = malloc(BT);
  double *u = malloc(sizeof(double) * BT);
  gc_fill(p.q, BT * Z, seed, qscale); /* logits ~ qscale * sqrt(Z / 9) */
  gc_fill(p.v, BT * E, seed + 1, 1.0);
  gc_fill(p.dO, BT * E, seed + 2, 1.0);
  gc_fill(p.rpb, p.R, seed + 3, 0.5);
  gc_fill(p.cb, S * Z, seed + 4, 1.0);
  gc_fill(u, BT, seed + 5, 1.0);
  /* Round every input to float so the fast path and the reference see the same numbers. */
  double *arrs[] = {p.q, p.v, p.dO, p.rpb, p.cb};
  int64_t lens_[] = {BT * Z, BT * E, BT * E, p.R, S * Z};
  for (int a = 0; a < 5; a++)
    for (int64_t i = 0; i < lens_[a]; i++) arrs[a][i] = (float)arrs[a][i];
  for (int64_t t = 0; t < BT; t++) {
    int64_t c = (int64_t)floor((u[t] + 1) / 2 * S);
    p.code[t] = (int32_t)(c < S ? c : S - 1);
    memcpy(p.kh + t * Z, p.cb + p.code[t] * Z, sizeof(double) * Z);
    p.m[t] = (t % L) < lens[t / L];
  }
  free(u);
  return p;
}

static void drop(prob *p) {
  free(p->q); free(p->kh); free(p->v); free(p->dO); free(p->O); free(p->rpb); free(p->cb); free(p->code);
  free(p->m);
}

static void fwd_ref(prob *p) {
  vq_attn_forward_ref(p->O, p->q, p->kh, p->code, p->v, p->m, p->rpb, p->cb, p->B, p->L, p->C, p->Z, p->E, p->S,
                      p->mode, p->far);
}

static double loss_ref(void *vp) {
  prob *p = vp;
  fwd_ref(p);
  double l = 0;
  for (int64_t i = 0; i < p->B * p->L * p->E; i++) l += p->dO[i] * p->O[i];
  return l;
}

static void gradcheck_case(lv_mode mode, int far) {
  const int64_t lens[2] = {6, 3};
  prob p = make(2, 6, 2, 3, 2, 3, mode, far, lens, 100 + 10 * mode + far, 1.0);
  const int64_t BT = p.B * p.L;
  double *dq = calloc(BT * p.Z, sizeof(double)), *dk = calloc(BT * p.Z, sizeof(double));
  double *dv = calloc(BT * p.E, sizeof(double)), *drpb = calloc(p.R, sizeof(double));
  vq_attn_backward_ref(dq, dk, dv, drpb, p.dO, p.q, p.kh, p.code, p.v, p.m, p.rpb, p.cb, p.B, p.L, p.C, p.Z, p.E,
                       p.S, mode, far);
  char name[64];
  const char *tag = mode == LV_MODE_DECODER ? (far ? "dec far" : "dec near") : (far ? "enc far" : "enc near");
  /* Central differences in double with h = 1e-5: truncation O(h^2) ~ 1e-10 relative; rounding
   * ~ 1e-16 |loss| / h ~ 1e-11 absolute, which against gc_check's 1e-7 floor reads as up to ~1e-4 on
   * gradients that are exactly 0 (dq of a row whose near keys all share one code: softmax shifts
   * cancel). Real errors (a wrong index, mask or sign) are O(1). */
  const double tol = 2e-4, h = 1e-5;
  snprintf(name, sizeof name, "vq_attn_ref %s dq", tag);
  EXPECT(gc_check(name, loss_ref, &p, p.q, dq, BT * p.Z, h) < tol, "%s", name);
  snprintf(name, sizeof name, "vq_attn_ref %s dk (st)", tag);
  EXPECT(gc_check(name, loss_ref, &p, p.kh, dk, BT * p.Z, h) < tol, "%s", name);
  snprintf(name, sizeof name, "vq_attn_ref %s dv", tag);
  EXPECT(gc_check(name, loss_ref, &p, p.v, dv, BT * p.E, h) < tol, "%s", name);
  snprintf(name, sizeof name, "vq_attn_ref %s drel_pos_bias", tag);
  EXPECT(gc_check(name, loss_ref, &p, p.rpb, drpb, p.R, h) < tol, "%s", name);
  /* Padding keys get no gradient. */
  for (int64_t t = 0; t < BT; t++)
    if (!p.m[t]) EXPECT(dv[t * p.E] == 0 && dk[t * p.Z] == 0, "padding key %lld has a gradient", (long long)t);
  free(dq); free(dk); free(dv); free(drpb);
  drop(&p);
}

/* Fast float32 vs double reference. Elementwise |got - ref| <= atol + rtol |ref| with
 * atol = 2e-5 * max|ref| and rtol = 1e-4: every value is a float32 sum of at most C + S (or 2C + S)
 * products of O(1) terms after matmuls over Z or E, so rounding is ~1e-6 of the array's scale; the
 * bound leaves ~10x margin and stays far below any real bug (a wrong mask, bias index or chunk
 * boundary moves values by O(1e-2) or more). Also the relative L2 error must meet the spec's
 * agreement bound (1e-5 for the forward output, 1e-4 for gradients). */
static void compare(const char *name, const float *got, const double *ref, int64_t n, double l2tol, double sub) {
  double mx = 0, num = 0, den = 0, worst = 0;
  for (int64_t i = 0; i < n; i++) mx = fmax(mx, fabs(ref[i]));
  const double atol = 2e-5 * fmax(mx, 1e-3), rtol = 1e-4;
  int bad = 0;
  for (int64_t i = 0; i < n; i++) {
    double g = got[i] - sub, d = g - ref[i];
    num += d * d;
    den += ref[i] * ref[i];
    worst = fmax(worst, fabs(d));
    if (!(fabs(d) <= atol + rtol * fabs(ref[i])) && bad++ < 3)
      EXPECT(0, "%s[%lld]: got %.9g want %.9g", name, (long long)i, g, ref[i]);
  }
  double rel = den > 0 ? sqrt(num / den) : sqrt(num);
  printf("  %-34s max abs err %.2e (scale %.2e), rel L2 %.2e\n", name, worst, mx, rel);
  EXPECT(bad == 0, "%s: %d entries out of tolerance", name, bad);
  EXPECT(rel <= l2tol, "%s: relative L2 error %.3e > %.1e", name, rel, l2tol);
}

static float *to_f(const double *x, int64_t n) {
  float *y = malloc(sizeof(float) * n);
  for (int64_t i = 0; i < n; i++) y[i] = (float)x[i];
  return y;
}

static float *filled(int64_t n, float val) {
  float *y = malloc(sizeof(float) * (n > 0 ? n : 1));
  for (int64_t i = 0; i < n; i++) y[i] = val;
  return y;
}

static void fast_case(const dnn_ctx *ctx, int64_t B, int64_t L, int64_t C, int64_t Z, int64_t E, int64_t S,
                      lv_mode mode, int far, const int64_t *lens, unsigned seed, double qscale) {
  prob p = make(B, L, C, Z, E, S, mode, far, lens, seed, qscale);
  const int64_t BT = B * L;
  printf("fast vs dense %s far=%d B=%lld L=%lld C=%lld Z=%lld E=%lld S=%lld q scale %g\n",
         mode == LV_MODE_DECODER ? "decoder" : "encoder", far, (long long)B, (long long)L, (long long)C,
         (long long)Z, (long long)E, (long long)S, qscale);
  /* reference */
  fwd_ref(&p);
  double *dq = calloc(BT * Z, sizeof(double)), *dk = calloc(BT * Z, sizeof(double));
  double *dv = calloc(BT * E, sizeof(double)), *drpb = calloc(p.R, sizeof(double));
  vq_attn_backward_ref(dq, dk, dv, drpb, p.dO, p.q, p.kh, p.code, p.v, p.m, p.rpb, p.cb, B, L, C, Z, E, S, mode,
                       far);
  /* fast: scratch and saved start as NaN so that reading anything not written shows up */
  vq_attn_plan plan;
  vq_attn_plan_init(&plan, ctx, B, L, C, Z, E, S, mode);
  float *q = to_f(p.q, BT * Z), *kh = to_f(p.kh, BT * Z), *v = to_f(p.v, BT * E), *dO = to_f(p.dO, BT * E);
  float *rpb = to_f(p.rpb, p.R), *cb = to_f(p.cb, S * Z);
  const size_t nsc = vq_attn_scratch_floats(B, L, C, E, S, mode), nsv = vq_attn_saved_floats(B, L);
  float *sc = filled((int64_t)nsc, NAN), *saved = filled((int64_t)nsv, NAN), *O = filled(BT * E, NAN);
  const float pre = 0.5f; /* gradients start here: backward must add */
  float *gq = filled(BT * Z, pre), *gk = filled(BT * Z, pre), *gv = filled(BT * E, pre), *grpb = filled(p.R, pre);
  vq_attn_forward(&plan, ctx, O, saved, q, kh, p.code, v, p.m, rpb, cb, sc, far);
  for (size_t i = 0; i < nsc; i++) sc[i] = NAN;
  vq_attn_backward(&plan, ctx, gq, gk, gv, grpb, dO, q, kh, p.code, v, p.m, rpb, cb, O, saved, sc, far);

  compare("O (linear == dense definition)", O, p.O, BT * E, 1e-5, 0);
  compare("dq", gq, dq, BT * Z, 1e-4, pre);
  compare("dk (straight-through, near only)", gk, dk, BT * Z, 1e-4, pre);
  compare("dv", gv, dv, BT * E, 1e-4, pre);
  compare("drel_pos_bias", grpb, drpb, p.R, 1e-4, pre);

  /* Rows with no valid allowed key: O exactly 0 (reference too) and no gradient to q. */
  int64_t empty = 0;
  for (int64_t t = 0; t < BT; t++) {
    int zero = 1;
    for (int64_t e = 0; e < E; e++) zero &= p.O[t * E + e] == 0;
    if (!zero) continue;
    empty++;
    for (int64_t e = 0; e < E; e++) EXPECT(O[t * E + e] == 0, "empty row %lld: O = %g", (long long)t, O[t * E + e]);
    for (int64_t z = 0; z < Z; z++) EXPECT(gq[t * Z + z] == pre, "empty row %lld got dq", (long long)t);
  }
  if (empty) printf("  %lld rows with no valid allowed key: O = 0, dq = 0\n", (long long)empty);
  vq_attn_plan_free(&plan);
  free(q); free(kh); free(v); free(dO); free(rpb); free(cb); free(sc); free(saved); free(O);
  free(gq); free(gk); free(gv); free(grpb); free(dq); free(dk); free(dv); free(drpb);
  drop(&p);
}

/* Same bits with 1 and 2 threads for every loop of ours (the sums have a fixed order: per chunk,
 * chunks in order). oneDNN's matmuls are run once, outside the comparison: like the rest of the
 * project we do not rely on their bits across thread counts (docs/layers.md, "Determinism"). */
static void thread_determinism(const dnn_ctx *ctx) {
  const int64_t B = 3, L = 256, C = 32, Z = 16, E = 24, S = 12, BT = B * L, lens[3] = {256, 100, 7};
  for (int mode = 0; mode < 2; mode++) {
    prob p = make(B, L, C, Z, E, S, (lv_mode)mode, 1, lens, 80 + mode, 1.0);
    vq_attn_plan plan;
    vq_attn_plan_init(&plan, ctx, B, L, C, Z, E, S, (lv_mode)mode);
    float *q = to_f(p.q, BT * Z), *kh = to_f(p.kh, BT * Z), *v = to_f(p.v, BT * E), *dO = to_f(p.dO, BT * E);
    float *rpb = to_f(p.rpb, p.R), *cb = to_f(p.cb, S * Z), *O = to_f(p.v, BT * E);
    const int64_t nsc = (int64_t)vq_attn_scratch_floats(B, L, C, E, S, (lv_mode)mode);
    const vqa_layout y = vqa_layout_of(B, L, C, E, S, (lv_mode)mode);
    float *sc0 = filled(nsc, 0);
    vqa_logits(&plan, ctx, sc0, q, kh, cb, 1);
    /* stand-ins for the backward matmul outputs dP, dO.U and G_n: any fixed values */
    double *fill = malloc(sizeof(double) * nsc);
    gc_fill(fill, nsc, 90 + mode, 1.0);
    for (size_t i = y.dl; i < y.wst; i++)
      if (i < y.qc || i >= y.da) sc0[i] = (float)fill[i];
    float *out[2], *fwdP = filled((int64_t)(y.dl - y.lg + y.da - y.qc), 0);
    const int64_t n = nsc + 2 * BT + 2 * BT + BT * E;
    for (int r = 0; r < 2; r++) {
      omp_set_num_threads(r + 1);
      float *sc = out[r] = filled(n, 0), *saved = sc + nsc, *saved2 = saved + 2 * BT, *dv = saved2 + 2 * BT;
      memcpy(sc, sc0, sizeof(float) * nsc);
      vqa_far_stats(&plan, sc, p.code, v, p.m);
      vqa_probs(&plan, sc, saved, p.m, rpb, 1, 1);
      memcpy(saved2, saved, sizeof(float) * 2 * BT);
      memcpy(fwdP, sc + y.lg, sizeof(float) * (y.dl - y.lg));
      memcpy(fwdP + (y.dl - y.lg), sc + y.qc, sizeof(float) * (y.da - y.qc));
      vqa_softmax_grads(&plan, sc, dO, O, 1);
      for (size_t i = y.wst; i < y.u; i++) sc[i] = (float)fill[i];
      vqa_far_spread(&plan, dv, sc, p.code, p.m);
      /* backward-mode probabilities, from the raw logits again */
      memcpy(sc + y.lg, sc0 + y.lg, sizeof(float) * (y.dl - y.lg));
      memcpy(sc + y.qc, sc0 + y.qc, sizeof(float) * (y.da - y.qc));
      vqa_probs(&plan, sc, saved2, p.m, rpb, 1, 0);
      /* backward recomputes exactly the forward's probabilities */
      EXPECT(memcmp(fwdP, sc + y.lg, sizeof(float) * (y.dl - y.lg)) == 0 &&
             memcmp(fwdP + (y.dl - y.lg), sc + y.qc, sizeof(float) * (y.da - y.qc)) == 0,
             "mode %d: backward's P / rho differ from the forward's", mode);
    }
    omp_set_num_threads(2);
    EXPECT(memcmp(out[0], out[1], sizeof(float) * n) == 0, "mode %d: 1 and 2 threads give different bits", mode);
    vq_attn_plan_free(&plan);
    free(q); free(kh); free(v); free(dO); free(rpb); free(cb); free(O); free(sc0); free(fill); free(fwdP);
    free(out[0]); free(out[1]);
    drop(&p);
  }
  printf("thread count: our loops give the same bits with 1 and 2 threads (encoder, decoder)\n");
}

/* The empty-row cases must actually occur in the configurations above. */
static void empty_rows_exist(const dnn_ctx *ctx) {
  const int64_t lens[3] = {16, 11, 3};
  for (int mode = 0; mode < 2; mode++) {
    prob p = make(3, 16, 4, 8, 6, 5, (lv_mode)mode, 0, lens, 7, 1.0);
    fwd_ref(&p);
    /* sequence 2 holds 3 valid tokens in chunk 0; without far attention rows of chunks 2, 3 see none
     * (decoder: near = chunks n-1, n; encoder: chunk n) */
    int64_t t = 2 * 16 + 12;
    int zero = 1;
    for (int64_t e = 0; e < p.E; e++) zero &= p.O[t * p.E + e] == 0;
    EXPECT(zero, "mode %d: row %lld should have no valid allowed key", mode, (long long)t);
    drop(&p);
  }
  (void)ctx;
}

int main(void) {
  dnn_ctx ctx;
  dnn_ctx_init(&ctx);
  for (int mode = 0; mode < 2; mode++)
    for (int far = 0; far < 2; far++) gradcheck_case((lv_mode)mode, far);

  const int64_t lens3[3] = {16, 11, 3}, lens2[2] = {64, 37}, lens1[1] = {4}, lensb[2] = {512, 300};
  for (int mode = 0; mode < 2; mode++) {
    for (int far = 0; far < 2; far++) {
      fast_case(&ctx, 3, 16, 4, 8, 6, 5, (lv_mode)mode, far, lens3, 20 + mode * 2 + far, 1.0);
      fast_case(&ctx, 2, 64, 8, 16, 12, 10, (lv_mode)mode, far, lens2, 40 + mode * 2 + far, 1.0);
    }
    /* large logits (tens): the max subtraction and exp over a wide range */
    fast_case(&ctx, 2, 64, 8, 16, 12, 10, (lv_mode)mode, 1, lens2, 50 + mode, 6.0);
    /* the model's shapes (C = 128, Z = 64, E = 256, S = 64): oneDNN's kernels for full-size blocks */
    fast_case(&ctx, 2, 512, 128, 64, 256, 64, (lv_mode)mode, 1, lensb, 70 + mode, 0.5);
  }
  /* one chunk in the whole batch: no far tokens, no previous chunk */
  fast_case(&ctx, 1, 4, 4, 5, 3, 4, LV_MODE_DECODER, 1, lens1, 60, 1.0);
  fast_case(&ctx, 1, 4, 4, 5, 3, 4, LV_MODE_ENCODER, 1, lens1, 61, 1.0);
  empty_rows_exist(&ctx);
  thread_determinism(&ctx);
  dnn_ctx_free(&ctx);
  return tu_finish("test_vq_attn");
}
