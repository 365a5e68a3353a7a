/* VQ attention: plans, sizes, shared pieces and the forward pass (see vq_attn.h). */
#include "layers/vq_attn.h"

#include <math.h>
#include <string.h>

#include "layers/vq_attn_internal.h"
#include "trainer/base/check.h"

static size_t up16(size_t n) { return (n + 15) & ~(size_t)15; }

vqa_layout vqa_layout_of(int64_t B, int64_t L, int64_t C, int64_t E, int64_t S, lv_mode mode) {
  const int64_t BT = B * L, G = BT / C, W = mode == LV_MODE_DECODER ? 2 * C : C;
  vqa_layout y;
  size_t o = 0;
  y.lg = o; o += up16((size_t)(BT * W));
  y.dl = o; o += up16((size_t)(BT * W));
  y.qc = o; o += up16((size_t)(BT * S));
  y.da = o; o += up16((size_t)(BT * S));
  y.wst = o; o += up16((size_t)(G * S * E));
  y.u = o; o += up16((size_t)(G * S * E));
  y.cntw = o; o += up16((size_t)(G * S));
  y.cnt = o; o += up16((size_t)(G * S));
  y.rpbp = o; o += up16((size_t)(G * 4 * C)); /* G * 2C doubles */
  y.rev = o; o += up16((size_t)(2 * C));
  y.total = o;
  return y;
}

size_t vq_attn_saved_floats(int64_t B, int64_t L) { return (size_t)(2 * B * L); }

size_t vq_attn_scratch_floats(int64_t B, int64_t L, int64_t C, int64_t E, int64_t S, lv_mode mode) {
  return vqa_layout_of(B, L, C, E, S, mode).total;
}

void vq_attn_plan_init(vq_attn_plan *p, const dnn_ctx *ctx, int64_t B, int64_t L, int64_t C, int64_t Z, int64_t E,
                       int64_t S, lv_mode mode) {
  if (B < 1 || L < 1 || C < 1 || Z < 1 || E < 1 || S < 1 || L % C)
    DIE("vq_attn_plan_init: bad sizes B %lld L %lld C %lld Z %lld E %lld S %lld (L must be a multiple of C)",
        (long long)B, (long long)L, (long long)C, (long long)Z, (long long)E, (long long)S);
  if (mode != LV_MODE_ENCODER && mode != LV_MODE_DECODER) DIE("vq_attn_plan_init: bad mode %d", (int)mode);
  memset(p, 0, sizeof *p);
  const int dec = mode == LV_MODE_DECODER;
  const int64_t BT = B * L, G = BT / C, W = dec ? 2 * C : C;
  p->B = B; p->L = L; p->C = C; p->Z = Z; p->E = E; p->S = S;
  p->NC = L / C; p->G = G; p->W = W; p->mode = mode;

  /* Chunk-batched operands: chunk g of q/k/v/O/dO starts at row g*C (batch stride C*Z or C*E); of the
   * logits at row g*C of the (BT, W) matrix (batch stride C*W). The decoder's "prev" plans run over
   * chunks 1..G-1 with the key/value operand one chunk behind (pointers offset by the caller);
   * pairs that would cross a sequence boundary are computed and then given probability 0. */
  const int64_t sZ = C * Z, sE = C * E, sW = C * W, sS = C * S, sU = S * E;
  mm_plan_init(&p->qc, ctx, (mm_desc){.batch = 1, .M = BT, .N = S, .K = Z, .trans_b = 1});
  mm_desc lg = {.batch = G, .M = C, .N = C, .K = Z, .trans_b = 1, .batch_stride_a = sZ, .batch_stride_b = sZ,
                .ldc = W, .batch_stride_c = sW};
  mm_desc pv = {.batch = G, .M = C, .N = E, .K = C, .lda = W, .batch_stride_a = sW, .batch_stride_b = sE,
                .batch_stride_c = sE};
  mm_desc dp = {.batch = G, .M = C, .N = C, .K = E, .trans_b = 1, .batch_stride_a = sE, .batch_stride_b = sE,
                .ldc = W, .batch_stride_c = sW};
  mm_desc dq = {.batch = G, .M = C, .N = Z, .K = C, .lda = W, .batch_stride_a = sW, .batch_stride_b = sZ,
                .batch_stride_c = sZ, .accumulate = 1};
  mm_desc dk = {.batch = G, .M = C, .N = Z, .K = C, .trans_a = 1, .lda = W, .batch_stride_a = sW,
                .batch_stride_b = sZ, .batch_stride_c = sZ, .accumulate = 1};
  mm_desc dv = {.batch = G, .M = C, .N = E, .K = C, .trans_a = 1, .lda = W, .batch_stride_a = sW,
                .batch_stride_b = sE, .batch_stride_c = sE, .accumulate = 1};
  mm_plan_init(&p->lg_own, ctx, lg);
  mm_plan_init(&p->pv_own, ctx, pv);
  mm_plan_init(&p->dp_own, ctx, dp);
  mm_plan_init(&p->dq_own, ctx, dq);
  mm_plan_init(&p->dk_own, ctx, dk);
  mm_plan_init(&p->dv_own, ctx, dv);
  if (dec && G > 1) {
    lg.batch = pv.batch = dp.batch = dq.batch = dk.batch = dv.batch = G - 1;
    pv.accumulate = 1;
    mm_plan_init(&p->lg_prev, ctx, lg);
    mm_plan_init(&p->pv_prev, ctx, pv);
    mm_plan_init(&p->dp_prev, ctx, dp);
    mm_plan_init(&p->dq_prev, ctx, dq);
    mm_plan_init(&p->dk_prev, ctx, dk);
    mm_plan_init(&p->dv_prev, ctx, dv);
  }
  /* Far part, per chunk: O_n += rho_n (C, S) U_n (S, E); dO_n U_n^T; G_n = rho_n^T dO_n; dq += dA Cb. */
  mm_plan_init(&p->far_o, ctx, (mm_desc){.batch = G, .M = C, .N = E, .K = S, .batch_stride_a = sS,
                                         .batch_stride_b = sU, .batch_stride_c = sE, .accumulate = 1});
  mm_plan_init(&p->dpu, ctx, (mm_desc){.batch = G, .M = C, .N = S, .K = E, .trans_b = 1, .batch_stride_a = sE,
                                       .batch_stride_b = sU, .batch_stride_c = sS});
  mm_plan_init(&p->g_far, ctx, (mm_desc){.batch = G, .M = S, .N = E, .K = C, .trans_a = 1, .batch_stride_a = sS,
                                         .batch_stride_b = sE, .batch_stride_c = sU});
  mm_plan_init(&p->dq_far, ctx, (mm_desc){.batch = 1, .M = BT, .N = Z, .K = S, .accumulate = 1});
}

void vq_attn_plan_free(vq_attn_plan *p) {
  mm_plan *all[] = {&p->qc, &p->lg_own, &p->lg_prev, &p->pv_own, &p->pv_prev, &p->far_o, &p->dp_own,
                    &p->dp_prev, &p->dpu, &p->dq_own, &p->dq_prev, &p->dq_far, &p->dk_own, &p->dk_prev,
                    &p->dv_own, &p->dv_prev, &p->g_far};
  for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) mm_plan_free(all[i]);
}

static double flops_if(const mm_plan *pl) { return mm_plan_ready(pl) ? mm_flops(&pl->d) : 0.0; }

double vq_attn_forward_flops(const vq_attn_plan *p, int far) {
  double f = flops_if(&p->lg_own) + flops_if(&p->lg_prev) + flops_if(&p->pv_own) + flops_if(&p->pv_prev);
  if (far) f += flops_if(&p->qc) + flops_if(&p->far_o);
  return f;
}

double vq_attn_recompute_flops(const vq_attn_plan *p, int far) {
  return flops_if(&p->lg_own) + flops_if(&p->lg_prev) + (far ? flops_if(&p->qc) : 0.0);
}

double vq_attn_backward_flops(const vq_attn_plan *p, int far) {
  /* Recomputed logits, then the gradient products. */
  double f = vq_attn_recompute_flops(p, far) + flops_if(&p->dp_own) + flops_if(&p->dp_prev) + flops_if(&p->dq_own) +
             flops_if(&p->dq_prev) + flops_if(&p->dk_own) + flops_if(&p->dk_prev) + flops_if(&p->dv_own) +
             flops_if(&p->dv_prev);
  if (far) f += flops_if(&p->dpu) + flops_if(&p->dq_far) + flops_if(&p->g_far);
  return f;
}

/* ---- shared pieces ---------------------------------------------------------------------------- */

#define VQA_BLK 256 /* elements per running-sum block (stack) */

void vqa_chunk_sums(float *out, const float *in, int64_t B, int64_t NC, int64_t len, int kind) {
  const int64_t nblk = (len + VQA_BLK - 1) / VQA_BLK;
#pragma omp parallel for schedule(static)
  for (int64_t bb = 0; bb < B * nblk; bb++) {
    const int64_t b = bb / nblk, e0 = (bb % nblk) * VQA_BLK, ne = len - e0 < VQA_BLK ? len - e0 : VQA_BLK;
    const float *x = in + b * NC * len + e0;
    float *y = out + b * NC * len + e0;
    double acc[VQA_BLK];
    for (int64_t e = 0; e < ne; e++) acc[e] = 0;
    if (kind == VQA_OTHERS || kind == VQA_BEFORE_PREV) {
      /* forward in chunk order: y[n] = sum_{n' < n} x[n'] (OTHERS) or sum_{n' <= n-2} x[n'] */
      const int64_t lag = kind == VQA_OTHERS ? 1 : 2;
      for (int64_t n = 0; n < NC; n++) {
        if (n >= lag)
          for (int64_t e = 0; e < ne; e++) acc[e] += x[(n - lag) * len + e];
        for (int64_t e = 0; e < ne; e++) y[n * len + e] = (float)acc[e];
      }
    }
    if (kind == VQA_OTHERS || kind == VQA_AFTER_NEXT) {
      /* backward in chunk order: y[n] (+)= sum_{n' > n} x[n'] (OTHERS) or sum_{n' >= n+2} x[n'] */
      const int64_t lag = kind == VQA_OTHERS ? 1 : 2;
      for (int64_t e = 0; e < ne; e++) acc[e] = 0;
      for (int64_t n = NC - 1; n >= 0; n--) {
        if (n + lag <= NC - 1)
          for (int64_t e = 0; e < ne; e++) acc[e] += x[(n + lag) * len + e];
        if (kind == VQA_OTHERS)
          for (int64_t e = 0; e < ne; e++) y[n * len + e] = (float)((double)y[n * len + e] + acc[e]);
        else
          for (int64_t e = 0; e < ne; e++) y[n * len + e] = (float)acc[e];
      }
    }
  }
}

void vqa_far_stats(const vq_attn_plan *p, float *sc, const int32_t *code, const float *v, const uint8_t *m) {
  const int64_t C = p->C, E = p->E, S = p->S, G = p->G;
  const vqa_layout y = vqa_layout_of(p->B, p->L, C, E, S, p->mode);
  float *wst = sc + y.wst, *cntw = sc + y.cntw;
#pragma omp parallel for schedule(static)
  for (int64_t g = 0; g < G; g++) {
    float *w = wst + g * S * E, *c = cntw + g * S;
    memset(w, 0, sizeof(float) * (size_t)(S * E));
    memset(c, 0, sizeof(float) * (size_t)S);
    for (int64_t j = g * C; j < (g + 1) * C; j++) {
      if (!m[j]) continue;
      const int64_t s = code[j];
      c[s] += 1;
      float *ws = w + s * E;
      const float *vj = v + j * E;
      for (int64_t e = 0; e < E; e++) ws[e] += vj[e];
    }
  }
  const int kind = p->mode == LV_MODE_DECODER ? VQA_BEFORE_PREV : VQA_OTHERS;
  vqa_chunk_sums(sc + y.u, wst, p->B, p->NC, S * E, kind);
  vqa_chunk_sums(sc + y.cnt, cntw, p->B, p->NC, S, kind);
}

void vqa_logits(const vq_attn_plan *p, const dnn_ctx *ctx, float *sc, const float *q, const float *k_hat,
                const float *cb, int far) {
  const int64_t C = p->C, Z = p->Z, W = p->W;
  const vqa_layout y = vqa_layout_of(p->B, p->L, C, p->E, p->S, p->mode);
  float *lg = sc + y.lg;
  const int64_t own = p->mode == LV_MODE_DECODER ? C : 0;
  mm_exec(&p->lg_own, ctx, lg + own, q, k_hat, NULL);
  if (mm_plan_ready(&p->lg_prev)) mm_exec(&p->lg_prev, ctx, lg + C * W, q + C * Z, k_hat, NULL);
  if (far) mm_exec(&p->qc, ctx, sc + y.qc, q, cb, NULL);
}

/* Max of x[0..n) and init that propagates NaN (a NaN logit must not turn into an "empty" row);
 * 16 lanes, branch-free so that it vectorizes. */
static float rowmax(const float *x, int64_t n, float init) {
  float lane[16];
  int32_t nan[16];
  for (int l = 0; l < 16; l++) { lane[l] = init; nan[l] = init != init; }
  int64_t c = 0;
  for (; c + 16 <= n; c += 16)
    for (int l = 0; l < 16; l++) {
      const float v = x[c + l];
      lane[l] = v > lane[l] ? v : lane[l];
      nan[l] |= v != v;
    }
  for (; c < n; c++) {
    lane[0] = x[c] > lane[0] ? x[c] : lane[0];
    nan[0] |= x[c] != x[c];
  }
  float mx = lane[0];
  int32_t any = nan[0];
  for (int l = 1; l < 16; l++) { mx = lane[l] > mx ? lane[l] : mx; any |= nan[l]; }
  return any ? NAN : mx;
}

/* sum_c x[c] in double, 8 fixed lanes: vectorized, same bits every time. */
static double rowsum(const float *x, int64_t n) {
  double lane[8] = {0};
  int64_t c = 0;
  for (; c + 8 <= n; c += 8)
    for (int l = 0; l < 8; l++) lane[l] += (double)x[c + l];
  double z = 0;
  for (int l = 0; l < 8; l++) z += lane[l];
  for (; c < n; c++) z += (double)x[c];
  return z;
}

double vqa_dot(const float *a, const float *b, int64_t n) {
  double lane[8] = {0};
  int64_t c = 0;
  for (; c + 8 <= n; c += 8)
    for (int l = 0; l < 8; l++) lane[l] += (double)a[c + l] * b[c + l];
  double z = 0;
  for (int l = 0; l < 8; l++) z += lane[l];
  for (; c < n; c++) z += (double)a[c] * b[c];
  return z;
}

void vqa_probs(const vq_attn_plan *p, float *sc, float *saved, const uint8_t *m, const float *rpb, int far,
               int forward) {
  const int64_t C = p->C, S = p->S, W = p->W, NC = p->NC, G = p->G, BT = p->B * p->L;
  const int dec = p->mode == LV_MODE_DECODER;
  const vqa_layout y = vqa_layout_of(p->B, p->L, C, p->E, S, p->mode);
  float *lg = sc + y.lg, *qc = sc + y.qc;
  const float *cnt = sc + y.cnt;
  /* Bias of row i, column c is bias[C - 1 - i + c]: encoder rpb[c - i + C - 1] directly; decoder
   * rpb[C + i - c] = rev[C - 1 - i + c] with rev[k] = rpb[2C - 1 - k] (forward stride: vectorizes). */
  float *rev = sc + y.rev;
  if (dec)
    for (int64_t k = 0; k < 2 * C; k++) rev[k] = rpb[2 * C - 1 - k];
  const float *bias = dec ? rev : rpb;
#pragma omp parallel for schedule(static)
  for (int64_t g = 0; g < G; g++) {
    const int64_t n = g % NC;
    /* Validity of the near keys by column: decoder columns 0..C-1 are chunk n-1 (absent for n = 0). */
    const uint8_t *mo = m + g * C, *mp = dec && n > 0 ? m + (g - 1) * C : NULL;
    const float *cg = cnt + g * S;
    for (int64_t i = 0; i < C; i++) {
      const int64_t t = g * C + i;
      float *lr = lg + t * W, *qr = qc + t * S;
      /* Contributing terms get their logit, all others -inf (vqa_exp gives exactly 0). */
      const float *bi = bias + C - 1 - i; /* bias of column c is bi[c] */
      if (!dec) {
        for (int64_t c = 0; c < C; c++) lr[c] = mo[c] ? lr[c] + bi[c] : -INFINITY;
      } else {
        if (mp)
          for (int64_t c = 0; c < C; c++) lr[c] = mp[c] ? lr[c] + bi[c] : -INFINITY;
        else
          for (int64_t c = 0; c < C; c++) lr[c] = -INFINITY;
        for (int64_t c = C; c <= C + i; c++) lr[c] = mo[c - C] ? lr[c] + bi[c] : -INFINITY;
        for (int64_t c = C + i + 1; c < W; c++) lr[c] = -INFINITY;
      }
      if (far)
        for (int64_t s = 0; s < S; s++) qr[s] = cg[s] > 0 ? qr[s] : -INFINITY;
      float M;
      if (forward) {
        M = rowmax(lr, W, -INFINITY);
        if (far) M = rowmax(qr, S, M);
      } else {
        M = saved[t];
      }
      if (forward ? M == -INFINITY : saved[BT + t] == 0) { /* no valid allowed key: O_t = 0 */
        for (int64_t c = 0; c < W; c++) lr[c] = 0;
        if (far)
          for (int64_t s = 0; s < S; s++) qr[s] = 0;
        if (forward) saved[t] = saved[BT + t] = 0;
        continue;
      }
      for (int64_t c = 0; c < W; c++) lr[c] = vqa_exp(lr[c] - M);
      if (far)
        for (int64_t s = 0; s < S; s++) qr[s] = vqa_exp(qr[s] - M);
      float Zf;
      if (forward) {
        double z = rowsum(lr, W);
        if (far) z += vqa_dot(qr, cg, S);
        Zf = (float)z;
        saved[t] = M;
        saved[BT + t] = Zf;
      } else {
        Zf = saved[BT + t];
      }
      const float inv = 1.0f / Zf;
      for (int64_t c = 0; c < W; c++) lr[c] *= inv;
      if (far)
        for (int64_t s = 0; s < S; s++) qr[s] *= inv;
    }
  }
}

/* ---- forward ---------------------------------------------------------------------------------- */

void vq_attn_forward(const vq_attn_plan *p, const dnn_ctx *ctx, float *O, float *saved, const float *q,
                     const float *k_hat, const int32_t *code, const float *v, const uint8_t *m,
                     const float *rel_pos_bias, const float *cb, float *scratch, int far) {
  const int64_t C = p->C, E = p->E, W = p->W;
  const vqa_layout y = vqa_layout_of(p->B, p->L, C, E, p->S, p->mode);
  const int64_t own = p->mode == LV_MODE_DECODER ? C : 0;
  vqa_logits(p, ctx, scratch, q, k_hat, cb, far);
  if (far) vqa_far_stats(p, scratch, code, v, m);
  vqa_probs(p, scratch, saved, m, rel_pos_bias, far, 1);
  const float *P = scratch + y.lg;
  mm_exec(&p->pv_own, ctx, O, P + own, v, NULL);
  if (mm_plan_ready(&p->pv_prev)) mm_exec(&p->pv_prev, ctx, O + C * E, P + C * W, v, NULL);
  if (far) mm_exec(&p->far_o, ctx, O, scratch + y.qc, scratch + y.u, NULL);
}
