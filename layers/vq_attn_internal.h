/* Pieces shared by vq_attn.c (plans, forward) and vq_attn_bwd.c (backward). Not a public API. */
#ifndef LONGVQ_VQ_ATTN_INTERNAL_H
#define LONGVQ_VQ_ATTN_INTERNAL_H

#include "layers/act.h"
#include "layers/vq_attn.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

/* exp(x) for the softmax: act_expf (vectorizable, ~1-2 ulp), except that x < -87 (including -inf,
 * the masked terms) gives exactly 0, which only drops terms below 1e-38 of the row maximum. */
static inline float vqa_exp(float x) { return x < -87.0f ? 0.0f : act_expf(x); }

/* Offsets (floats) of the scratch segments. */
typedef struct {
  size_t lg;    /* (BT, W) near logits -> probabilities P */
  size_t dl;    /* (BT, W) dP -> dL (backward) */
  size_t qc;    /* (BT, S) q . Cb_s -> rho */
  size_t da;    /* (BT, S) dO . U_s -> dA (backward) */
  size_t wst;   /* (G, S, E) per-chunk value sums; backward: G_n = rho_n^T dO_n */
  size_t u;     /* (G, S, E) far-set value sums U_n; backward: H_n (spread of G) */
  size_t cntw;  /* (G, S) per-chunk counts */
  size_t cnt;   /* (G, S) far-set counts */
  size_t rpbp;  /* (G, 2C) doubles: per-chunk bias-gradient partials (backward) */
  size_t rev;   /* (2C) decoder: rel_pos_bias reversed */
  size_t total;
} vqa_layout;

vqa_layout vqa_layout_of(int64_t B, int64_t L, int64_t C, int64_t E, int64_t S, lv_mode mode);

/* Which chunks of a sequence form the far set, for chunk_sums. */
enum {
  VQA_OTHERS = 0,      /* encoder: every other chunk (prefix + suffix) */
  VQA_BEFORE_PREV = 1, /* decoder forward: chunks <= n-2 */
  VQA_AFTER_NEXT = 2,  /* decoder backward (transpose): chunks >= n+2 */
};
/* out[b, n] (len floats) = sum of in[b, n'] over the chunks n' of sequence b selected by kind, with
 * double running sums in chunk order. */
void vqa_chunk_sums(float *out, const float *in, int64_t B, int64_t NC, int64_t len, int kind);

/* Far statistics: per chunk value sums and counts of valid tokens by code (wst, cntw), then the far
 * sets' sums (u, cnt). */
void vqa_far_stats(const vq_attn_plan *p, float *sc, const int32_t *code, const float *v, const uint8_t *m);

/* Near logits (+ far logits q Cb^T when far) into the scratch. */
void vqa_logits(const vq_attn_plan *p, const dnn_ctx *ctx, float *sc, const float *q, const float *k_hat,
                const float *cb, int far);

/* Logits -> probabilities in place (P in lg, rho in qc). forward: computes and stores M_t, Z_t in
 * saved; otherwise reads them, reproducing the forward's P bit for bit. */
void vqa_probs(const vq_attn_plan *p, float *sc, float *saved, const uint8_t *m, const float *rel_pos_bias,
               int far, int forward);

/* Backward, after dP (dl) and dO . U_s (da) are in the scratch: dL = P (dP - delta) in place over dP,
 * dA = rho (dO.U - cnt delta) in place over da, and per-chunk bias-gradient partials (rpbp, double,
 * rows in order); delta_t = dO_t . O_t. */
void vqa_softmax_grads(const vq_attn_plan *p, float *sc, const float *dO, const float *O, int far);
/* Backward, far values: G_n (in wst) spread to the chunks whose tokens are in chunk n's far set
 * (H into u), then dv_j += m_j H_{chunk(j)}[code_j]. */
void vqa_far_spread(const vq_attn_plan *p, float *dv, float *sc, const int32_t *code, const uint8_t *m);

/* a . b in double (fixed 8-lane order). */
double vqa_dot(const float *a, const float *b, int64_t n);

#endif
