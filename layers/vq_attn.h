/* VQ attention (spec: "VQ attention (softmax)"), fast float32 path, O(L (C + S)) per sequence.
 *
 * Dense definition (one sequence; chunk n = positions nC .. nC+C-1):
 *   logit(t, j) = q_t . k_hat_j + bias(t, j)     over allowed j with m_j = 1
 *   O_t = sum_j softmax_j(logit(t, j)) v_j        (O_t = 0 if no j is allowed and valid)
 *   encoder: all j allowed; bias = rel_pos_bias[j - t + C - 1] when j is in t's chunk (near), else far
 *   decoder: j <= t allowed; bias = rel_pos_bias[t - j] when j is in t's chunk or the one before (near)
 * Far pairs use q_t . Cb[code_j] with the codebook constant: they send gradient to q_t and v_j, never
 * to k_j. Near pairs send gradient to q_t, v_j, rel_pos_bias and (straight-through) to k_j: dk_j is
 * d k_hat_j, added into the caller's dk (the gradient of k, before VQ). far = 0: far pairs are not
 * allowed at all (ablation).
 *
 * How (per chunk of C queries; "near keys" = chunk n [decoder: chunks n-1 and n]):
 *   near logits      Q_n K_n^T (C x C) [+ Q_n K_{n-1}^T]                 batched oneDNN plans over chunks
 *   far logits       q Cb^T (BT, S), one matmul
 *   far statistics   per chunk W_n[s] = sum of valid v_j with code s (S, E) and counts; per chunk the
 *                    far set's U_n, cnt_n: encoder prefix(n) + suffix(n) over the sequence's other
 *                    chunks (two ordered running sums, added); decoder the prefix over chunks <= n-2
 *   normalizer       Z_t = sum_near e^{l - M} + sum_s cnt_s e^{q_t.Cb_s - M}, M = max over the
 *                    contributing terms only (valid allowed near keys, codes with cnt_s > 0)
 *   O_n              P_near (C x C[2C]) V_near + rho_n (C x S) U_n,   rho_ts = e^{q_t.Cb_s - M_t} / Z_t
 * Backward recomputes the logits and probabilities from the saved (M_t, Z_t) and uses
 *   delta_t = dO_t . O_t, dl_tj = P_tj (dO_t . v_j - delta_t) (near),
 *   dA_ts = rho_ts (dO_t . U_s - cnt_s delta_t) (far, per code): dq += dA Cb,
 *   dv_j (far, code s, chunk m) += sum over chunks n whose far set holds chunk m of G_n[s],
 *   G_n = rho_n^T dO_n (S, E), summed with the same prefix/suffix-over-chunks rule.
 *
 * Mask: uint8_t (BT), 1 = valid, 0 = padding. Padded query rows still get the output the dense
 * definition gives them (only keys are masked); the caller masks rows afterwards.
 * Threads: OpenMP over chunks in the plain loops (never around mm_exec). Every sum over chunks is taken
 * in a fixed order, so results do not depend on the thread count. No allocation inside.
 * See docs/layers.md, "VQ attention". */
#ifndef LONGVQ_VQ_ATTN_H
#define LONGVQ_VQ_ATTN_H

#include <stddef.h>
#include <stdint.h>

#include "layers/dnn.h"
#include "layers/params.h" /* lv_mode */


typedef struct {
  int64_t B, L, C, Z, E, S;
  int64_t NC;   /* chunks per sequence, L / C */
  int64_t G;    /* chunks in the batch, B * NC */
  int64_t W;    /* width of a chunk's near-logit row: C (encoder) or 2C (decoder: [chunk n-1 | chunk n]) */
  lv_mode mode;
  /* forward */
  mm_plan qc;                  /* q (BT, Z) Cb^T -> (BT, S) */
  mm_plan lg_own, lg_prev;     /* Q_n K_n^T -> logits[:, own];  Q_n K_{n-1}^T -> logits[:, 0:C] (decoder) */
  mm_plan pv_own, pv_prev;     /* O_n = P_own V_n;  O_n += P_prev V_{n-1} (decoder) */
  mm_plan far_o;               /* O_n += rho_n U_n */
  /* backward */
  mm_plan dp_own, dp_prev;     /* dO_n V_n^T, dO_n V_{n-1}^T -> dP */
  mm_plan dpu;                 /* dO_n U_n^T -> (C, S) */
  mm_plan dq_own, dq_prev;     /* dq_n += dL_own K_n, dL_prev K_{n-1} */
  mm_plan dq_far;              /* dq += dA (BT, S) Cb (S, Z) */
  mm_plan dk_own, dk_prev;     /* dk_n += dL_own^T Q_n;  dk_{n-1} += dL_prev^T Q_n */
  mm_plan dv_own, dv_prev;     /* dv_n += P_own^T dO_n;  dv_{n-1} += P_prev^T dO_n */
  mm_plan g_far;               /* G_n = rho_n^T dO_n (S, E) */
} vq_attn_plan;

/* L must be a positive multiple of C. Plans that would be empty (decoder prev-chunk plans when the
 * batch holds a single chunk) are left unset. */
void vq_attn_plan_init(vq_attn_plan *p, const dnn_ctx *ctx, int64_t B, int64_t L, int64_t C, int64_t Z, int64_t E,
                       int64_t S, lv_mode mode);
void vq_attn_plan_free(vq_attn_plan *p);

/* Saved state written by forward, read by backward: per row the max M_t and the normalizer Z_t
 * (2 * B * L floats). The forward output O itself is also read by backward (passed separately). */
size_t vq_attn_saved_floats(int64_t B, int64_t L);
/* Scratch for forward and backward (contents are not kept between calls); the same size serves both:
 * 2 BT W (near logits / probabilities and their gradient) + 2 BT S (far logits / rho and dA)
 * + 2 G S E (per-chunk value sums / far-set sums) + 2 G S (counts) + 4 G C (bias-gradient partials,
 * G 2C doubles) + 2C, each segment rounded up to 16 floats; G = BL / C chunks. G S E = BT S E / C:
 * with C = 128, S = 64, E = 256 that is 128 floats per token. Must be 8-byte aligned. */
size_t vq_attn_scratch_floats(int64_t B, int64_t L, int64_t C, int64_t E, int64_t S, lv_mode mode);
/* FLOPs of the matmuls of one forward / backward call (for benchmarks). */
double vq_attn_forward_flops(const vq_attn_plan *p, int far);
double vq_attn_backward_flops(const vq_attn_plan *p, int far);
/* The part of vq_attn_backward_flops that recomputes the forward's logits (near Q K^T, far q Cb^T):
 * executed work, not model FLOPs. */
double vq_attn_recompute_flops(const vq_attn_plan *p, int far);

void vq_attn_forward(const vq_attn_plan *p, const dnn_ctx *ctx,
                     float *O /* (BT, E) */,
                     float *saved /* vq_attn_saved_floats, written */,
                     const float *q /* (BT, Z) */,
                     const float *k_hat /* (BT, Z) = Cb[code] */,
                     const int32_t *code /* (BT) */,
                     const float *v /* (BT, E) */,
                     const uint8_t *m /* (BT) */,
                     const float *rel_pos_bias /* (2C-1) encoder, (2C) decoder */,
                     const float *cb /* (S, Z) */,
                     float *scratch /* vq_attn_scratch_floats */,
                     int far /* model.far_attention */);

/* All gradients accumulate (+=). dk receives the straight-through gradient of k_hat from near pairs. */
void vq_attn_backward(const vq_attn_plan *p, const dnn_ctx *ctx,
                      float *dq /* (BT, Z) += */,
                      float *dk /* (BT, Z) += */,
                      float *dv /* (BT, E) += */,
                      float *drel_pos_bias /* (2C-1) or (2C) += */,
                      const float *dO /* (BT, E) */,
                      const float *q /* (BT, Z) */,
                      const float *k_hat /* (BT, Z) */,
                      const int32_t *code /* (BT) */,
                      const float *v /* (BT, E) */,
                      const uint8_t *m /* (BT) */,
                      const float *rel_pos_bias /* (2C-1) or (2C) */,
                      const float *cb /* (S, Z) */,
                      const float *O /* (BT, E) from forward */,
                      const float *saved /* from forward */,
                      float *scratch /* vq_attn_scratch_floats */,
                      int far);

/* ---- one query at a time (decoder, incremental decoding: layers/decode.h) ---------------------- *
 * The decoder attention of position t given the keys and values of positions < t as a fixed-size
 * state, for one sequence whose every token is valid:
 *   ring  codes and values of chunk n = t / C and chunk n-1 (2C positions; position p in slot p mod 2C;
 *         the near keys k_hat_j = Cb[code_j] need only the code)
 *   far   per code s: cnt_s and U_s = sum of v_j over the tokens j with code s in chunks <= n-2, kept in
 *         double; U_s is used rounded to float (as vq_attn_forward's prefix sums over chunks)
 * When a query opens chunk n >= 2, chunk n-2 leaves the ring for the far sums (its value sums are
 * taken in float per chunk, then added in double in chunk order, as vq_attn_forward does). Near
 * logits are q . Cb[code_j] + rel_pos_bias[t - j]: the dot products q . Cb_s are taken once per
 * query for all S codes. Then the same softmax (maximum over the contributing terms, vqa_exp, sums in
 * double) as vq_attn_forward. State and scratch do not grow with t. */
typedef struct {
  int64_t C, Z, E, S;
  int32_t *code;  /* (2C) codes of the ring's positions */
  float *v;       /* (2C, E) values of the ring's positions */
  double *u;      /* (S, E) far value sums */
  double *cnt;    /* (S) far counts */
  float *uf;      /* (S, E) u rounded to float */
} vq_attn_step_state;

/* Floats of the state (vq_attn_step_carve) and of the scratch of one step. */
size_t vq_attn_step_state_floats(int64_t C, int64_t E, int64_t S);
size_t vq_attn_step_scratch_floats(int64_t C, int64_t E, int64_t S);
/* Points st's arrays into base (vq_attn_step_state_floats floats, 8-byte aligned) and zeroes them:
 * the state before position 0. */
void vq_attn_step_init(vq_attn_step_state *st, float *base, int64_t C, int64_t Z, int64_t E, int64_t S);
/* O (E) of query t (positions 0, 1, 2, ... in order, each once); adds position t's own code and value
 * to the state first (j = t is allowed). */
void vq_attn_step(vq_attn_step_state *st, float *O /* (E) */, int64_t t, const float *q /* (Z) */, int32_t code,
                  const float *v /* (E) */, const float *rel_pos_bias /* (2C) */, const float *cb /* (S, Z) */,
                  float *scratch /* vq_attn_step_scratch_floats */, int far);

#endif
