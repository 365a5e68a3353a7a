/* Output heads.
 *
 * Encoder (classification):
 *   pooled_b = sum_t m_bt x_bt / sum_t m_bt                              (B, D)  masked mean
 *   pre      = pooled head.dense.weight^T + head.dense.bias               (B, D)
 *   hid      = gelu_erf(pre)                                              (B, D)
 *   logits   = hid head.out.weight^T + head.out.bias                      (B, K)
 * saved = [pooled (B, D) | pre (B, D) | hid (B, D) | count (B)] with count_b = sum_t m_bt;
 * backward scratch = [dhid | dpooled | dpre] (3 B D).
 * Every sequence must have a valid token (sum_t m_bt > 0, as the spec guarantees); a sequence
 * without one dies naming it rather than dividing by zero. Pooling sums in double.
 *
 * Decoder (LM): logits (BT, V) = x E^T with E = embed.weight (tied) or lm_head.weight (untied),
 * one oneDNN matmul; backward dx += dlogits E, dE += dlogits^T x (with tied embeddings dE is
 * d embed.weight and adds to the embedding's scatter). (BT, V) logits are materialized: V is
 * small here (256 for byte-level LM). */
#ifndef LONGVQ_HEAD_H
#define LONGVQ_HEAD_H

#include <stddef.h>
#include <stdint.h>

#include "layers/dnn.h"
#include "layers/linear.h"

typedef struct {
  int64_t B, L, D, K;
  linear_plan dense; /* (B, D) -> (B, D), bias, gelu_erf with saved pre-activation */
  linear_plan out;   /* (B, D) -> (B, K), bias */
} head_plan;

void head_plan_init(head_plan *p, const dnn_ctx *ctx, int64_t B, int64_t L, int64_t D, int64_t K);
void head_plan_free(head_plan *p);
size_t head_saved_floats(int64_t B, int64_t D);   /* 3 B D + B */
size_t head_scratch_floats(int64_t B, int64_t D); /* 3 B D */

void head_forward(const head_plan *p, const dnn_ctx *ctx, float *logits /* (B, K) */,
                  const float *x /* (B*L, D) */, const float *m /* (B*L) 0/1 */,
                  const float *dense_w /* (D, D) */, const float *dense_b /* (D) */,
                  const float *out_w /* (K, D) */, const float *out_b /* (K) */,
                  float *saved /* head_saved_floats */);
/* dx may be NULL (not needed). */
void head_backward(const head_plan *p, const dnn_ctx *ctx, float *dx /* (B*L, D) += */,
                   float *d_dense_w /* (D, D) += */, float *d_dense_b /* (D) += */,
                   float *d_out_w /* (K, D) += */, float *d_out_b /* (K) += */,
                   const float *dlogits /* (B, K) */, const float *m /* (B*L) */,
                   const float *dense_w /* (D, D) */, const float *out_w /* (K, D) */,
                   const float *saved /* from forward */, float *scratch /* head_scratch_floats */);

typedef struct {
  int64_t rows, D, V;
  linear_plan lin; /* (rows, D) -> (rows, V), no bias */
} lm_head_plan;

void lm_head_plan_init(lm_head_plan *p, const dnn_ctx *ctx, int64_t rows, int64_t D, int64_t V);
void lm_head_plan_free(lm_head_plan *p);
void lm_head_forward(const lm_head_plan *p, const dnn_ctx *ctx, float *logits /* (rows, V) */,
                     const float *x /* (rows, D) */, const float *E /* (V, D) */);
/* dx may be NULL. */
void lm_head_backward(const lm_head_plan *p, const dnn_ctx *ctx, float *dx /* (rows, D) += */,
                      float *dE /* (V, D) += */, const float *dlogits /* (rows, V) */,
                      const float *x /* (rows, D) */, const float *E /* (V, D) */);

#endif
