/* Incremental decoding of a decoder-mode LongVQ model: one token in, the next token's logits out, in
 * memory that does not grow with the position (`longvq generate`, docs/generate.md).
 *
 * lv_decoder_step(token at position t) returns the logits the full forward (layers/model.h, or the
 * spec's "Forward pass" in evaluation: dropout off, every token valid) gives at position t of the
 * sequence fed so far; only the order of float sums differs (tests/test_decode.c). Per layer it keeps
 *   EMA        the scaled state h~ (N, D) of the causal recurrence (layers/ema.h, ema_step)
 *   attention  codes and values of the current and the previous chunk (2C x (1 + E)), and per code the
 *              far count and value sum over the chunks <= n-2 (S x (1 + E) in double, plus U in float)
 *              (layers/vq_attn.h, vq_attn_step)
 * plus constants computed once from the parameters (EMA coefficients phi, q (N, D); codebook Cb and
 * ||Cb_s||^2) and one token's scratch. Every buffer is carved from one arena allocated by
 * lv_decoder_create; nothing is allocated per token. The model's parameters are read in place (they
 * must outlive the decoder); the codebooks are those of `state` at creation (fixed at inference).
 *
 * Cost per token and layer: the five projections (D E + D M + E D + 2 D F multiply-adds, M = 2D+Z+E),
 * the EMA (2 N D), the codes (S Z), attention ((2C + S) E), plus the LM head V D. Plain C loops,
 * vectorized; a projection of 2^19 or more weights is split over the OpenMP threads. */
#ifndef LONGVQ_DECODE_H
#define LONGVQ_DECODE_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "layers/params.h"

/* Memory of one decoder, in floats. */
typedef struct {
  size_t state_per_layer;  /* one layer's EMA state, attention ring and far sums */
  size_t state;            /* all layers' state */
  size_t consts;           /* all layers' precomputed constants (EMA coefficients, codebook) */
  size_t scratch;          /* one token's activations and the logits */
  size_t total;
} lv_decode_mem;

/* Pure: the plan of a decoder for model dims d (d->decoder must be 1). */
lv_decode_mem lv_decode_plan(const lv_dims *d);
/* Prints the plan, with the per-layer state broken down. */
void lv_decode_print_plan(FILE *f, const lv_dims *d);

typedef struct lv_decoder lv_decoder;

/* Allocates the arena, computes the constants, and resets to position 0. lay must be a decoder
 * layout; params (lay->n_param_floats) must stay valid while the decoder is used; state holds the
 * codebooks (lay->n_state_floats). */
lv_decoder *lv_decoder_create(const lv_layout *lay, const float *params, const float *state);
void lv_decoder_free(lv_decoder *g);
/* Back to position 0 (an empty sequence). */
void lv_decoder_reset(lv_decoder *g);
/* Feeds `token` (in [0, V)) at the current position t and returns the logits (V) of position t, the
 * prediction of token t+1; valid until the next call. The position advances by one. */
const float *lv_decoder_step(lv_decoder *g, int32_t token);
/* Tokens fed since the last reset. */
int64_t lv_decoder_position(const lv_decoder *g);
/* The code of the last token's key at layer i (tests). */
int32_t lv_decoder_last_code(const lv_decoder *g, int layer);

#endif
