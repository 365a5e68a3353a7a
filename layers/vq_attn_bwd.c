/* VQ attention backward (see vq_attn.h for the derivation summary and docs/layers.md "VQ attention").
 *
 * With P the near probabilities and rho_ts = e^{q_t.Cb_s - M_t} / Z_t the probability of ONE far
 * token of code s for query t:
 *   delta_t = dO_t . O_t
 *   near:  dl_tj = P_tj (dO_t . v_j - delta_t)  -> dq_t += dl K, dk_j += dl^T Q, drel_pos_bias, dv_j += P^T dO
 *   far:   dA_ts = rho_ts (dO_t . U_s(t) - cnt_s(t) delta_t)  -> dq_t += dA_t Cb
 *          dv_j += sum over queries t with j in F(t) of rho_{t,code_j} dO_t
 *                = H_{chunk(j)}[code_j],  H_m = sum of G_n over the chunks n whose far set holds chunk m,
 *          G_n = rho_n^T dO_n (S, E).  The far logits' gradient never reaches k (codebook constant). */
#include <math.h>
#include <string.h>

#include "layers/vq_attn.h"
#include "layers/vq_attn_internal.h"
#include "trainer/base/check.h"

void vqa_softmax_grads(const vq_attn_plan *p, float *sc, const float *dO, const float *O, int far) {
  const int64_t C = p->C, E = p->E, S = p->S, W = p->W, NC = p->NC, G = p->G;
  const int dec = p->mode == LV_MODE_DECODER;
  const vqa_layout y = vqa_layout_of(p->B, p->L, C, E, S, p->mode);
  const float *P = sc + y.lg, *rho = sc + y.qc, *cnt = sc + y.cnt;
  float *dl = sc + y.dl, *da = sc + y.da;
  double *rpbp = (double *)(sc + y.rpbp);
#pragma omp parallel for schedule(static)
  for (int64_t g = 0; g < G; g++) {
    const int64_t n = g % NC;
    const float *cg = cnt + g * S;
    double *acc = rpbp + g * 2 * C;
    for (int64_t r = 0; r < 2 * C; r++) acc[r] = 0;
    for (int64_t i = 0; i < C; i++) {
      const int64_t t = g * C + i;
      const float delta = (float)vqa_dot(dO + t * E, O + t * E, E);
      const float *pr = P + t * W;
      float *dr = dl + t * W;
      /* Decoder chunk 0 of a sequence: the prev block was never computed (or crosses sequences). */
      const int64_t c0 = dec && n == 0 ? C : 0;
      for (int64_t c = 0; c < c0; c++) dr[c] = 0;
      for (int64_t c = c0; c < W; c++) dr[c] = pr[c] != 0 ? pr[c] * (dr[c] - delta) : 0.0f;
      /* Slot k = C - 1 - i + c of column c: the bias index itself in the encoder (c - i + C - 1),
       * reversed in the decoder (bias index C + i - c = 2C - 1 - k); only allowed columns add. */
      double *a = acc + C - 1 - i;
      const int64_t c1 = dec ? C + i + 1 : C;
      for (int64_t c = c0; c < c1; c++) a[c] += dr[c];
      if (far) {
        const float *rr = rho + t * S;
        float *ar = da + t * S;
        for (int64_t s = 0; s < S; s++) ar[s] = rr[s] != 0 ? rr[s] * (ar[s] - cg[s] * delta) : 0.0f;
      }
    }
  }
}

void vqa_far_spread(const vq_attn_plan *p, float *dv, float *sc, const int32_t *code, const uint8_t *m) {
  const int64_t C = p->C, E = p->E, S = p->S, G = p->G;
  const vqa_layout y = vqa_layout_of(p->B, p->L, C, E, S, p->mode);
  float *u = sc + y.u;
  vqa_chunk_sums(u, sc + y.wst, p->B, p->NC, S * E, p->mode == LV_MODE_DECODER ? VQA_AFTER_NEXT : VQA_OTHERS);
#pragma omp parallel for schedule(static)
  for (int64_t g = 0; g < G; g++) {
    const float *h = u + g * S * E;
    for (int64_t j = g * C; j < (g + 1) * C; j++) {
      if (!m[j]) continue;
      const float *hs = h + (int64_t)code[j] * E;
      float *dvj = dv + j * E;
      for (int64_t e = 0; e < E; e++) dvj[e] += hs[e];
    }
  }
}

void vq_attn_backward(const vq_attn_plan *p, const dnn_ctx *ctx, float *dq, float *dk, float *dv,
                      float *drel_pos_bias, const float *dO, const float *q, const float *k_hat,
                      const int32_t *code, const float *v, const uint8_t *m, const float *rel_pos_bias,
                      const float *cb, const float *O, const float *saved, float *scratch, int far) {
  const int64_t C = p->C, Z = p->Z, E = p->E, S = p->S, W = p->W, G = p->G;
  const int dec = p->mode == LV_MODE_DECODER;
  const int64_t own = dec ? C : 0;
  const vqa_layout y = vqa_layout_of(p->B, p->L, C, E, S, p->mode);
  float *P = scratch + y.lg, *dl = scratch + y.dl, *rho = scratch + y.qc, *da = scratch + y.da;
  float *wst = scratch + y.wst, *u = scratch + y.u;

  if ((uintptr_t)scratch % sizeof(double))
    DIE("vq_attn_backward: scratch must be 8-byte aligned (it holds double partial sums)");
  /* Recompute the probabilities exactly as the forward did (same plans, same saved M_t, Z_t). */
  vqa_logits(p, ctx, scratch, q, k_hat, cb, far);
  if (far) vqa_far_stats(p, scratch, code, v, m);
  vqa_probs(p, scratch, (float *)saved, m, rel_pos_bias, far, 0);

  /* dP = dO V_near^T; dO . U_s per row. */
  mm_exec(&p->dp_own, ctx, dl + own, dO, v, NULL);
  if (mm_plan_ready(&p->dp_prev)) mm_exec(&p->dp_prev, ctx, dl + C * W, dO + C * E, v, NULL);
  if (far) mm_exec(&p->dpu, ctx, da, dO, u, NULL);
  vqa_softmax_grads(p, scratch, dO, O, far);

  /* Near: dq_n += dL_own K_n (+ dL_prev K_{n-1}); dk (straight-through) and dv by the transposes. */
  mm_exec(&p->dq_own, ctx, dq, dl + own, k_hat, NULL);
  mm_exec(&p->dk_own, ctx, dk, dl + own, q, NULL);
  mm_exec(&p->dv_own, ctx, dv, P + own, dO, NULL);
  if (mm_plan_ready(&p->dq_prev)) {
    mm_exec(&p->dq_prev, ctx, dq + C * Z, dl + C * W, k_hat, NULL);
    mm_exec(&p->dk_prev, ctx, dk, dl + C * W, q + C * Z, NULL);
    mm_exec(&p->dv_prev, ctx, dv, P + C * W, dO + C * E, NULL);
  }

  if (far) {
    mm_exec(&p->dq_far, ctx, dq, da, cb, NULL);
    /* G_n = rho_n^T dO_n, then spread to the chunks in the far sets: H into u (U is consumed). */
    mm_exec(&p->g_far, ctx, wst, rho, dO, NULL);
    vqa_far_spread(p, dv, scratch, code, m);
  }

  /* Bias gradient: per-chunk partials summed in chunk order (same bits for any thread count). */
  const int64_t R = dec ? 2 * C : 2 * C - 1;
  const double *rpbp = (const double *)(scratch + y.rpbp);
  for (int64_t r = 0; r < R; r++) {
    double acc = 0;
    const int64_t k = dec ? 2 * C - 1 - r : r;
    for (int64_t g = 0; g < G; g++) acc += rpbp[g * 2 * C + k];
    drel_pos_bias[r] += (float)acc;
  }
}
