/* Pieces shared by vq_attn.c (plans, forward) and vq_attn_bwd.c (backward). Not a public API. */
#ifndef LONGVQ_VQ_ATTN_INTERNAL_H
#define LONGVQ_VQ_ATTN_INTERNAL_H

#include "layers/vq_attn.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

/* exp(x) for the softmax, vectorizable (GCC turns loops over it into AVX-512 code without fast-math):
 * Cephes-style range reduction x = n ln2 + r, |r| <= ln2/2, degree-6 polynomial, then 2^n from the
 * exponent bits; about 1 ulp. x < -87 (including -inf: the masked terms) gives exactly 0, which only
 * drops terms below 1e-38 of the row maximum. NaN propagates. */
static inline float vqa_exp(float x) {
  const float xc = x < -87.0f ? -87.0f : (x > 88.0f ? 88.0f : x);
  const float magic = 12582912.0f; /* 1.5 * 2^23: adding and subtracting rounds to an integer */
  const float n = (xc * 1.44269504088896341f + magic) - magic;
  const float r = (xc - n * 0.693359375f) + n * 2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r * r + r + 1.0f;
  const int32_t bits = ((int32_t)(n == n ? n : 0.0f) + 127) << 23; /* NaN: p carries it */
  float two_n;
  memcpy(&two_n, &bits, sizeof two_n);
  return x < -87.0f ? 0.0f : p * two_n;
}

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

vqa_layout vqa_layout_of(int64_t B, int64_t L, int64_t C, int64_t E, int64_t S, vq_attn_mode mode);

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
