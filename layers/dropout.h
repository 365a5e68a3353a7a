/* Inverted dropout with counter-based masks: y = x * keep / (1 - p), keep in {0, 1}.
 *
 * Key layout (docs/layers.md "Dropout masks"): for sample b of the call, element (t, f) of a
 * (B*L, W) tensor (row b*L + t, feature f) is DROPPED iff
 *     u < p,   u = rng_uniform(rng_make(seed, domain, step, sample0 + b), t * W + f)
 * with domain "dropout/<layer>/<site>" (dropout_domain), step the optimizer step s (from 1) and
 * sample0 + b the sample's index in the step's GLOBAL batch (never the rank or the micro-batch):
 * the masks do not depend on how the batch is split over ranks or micro-batches.
 * Equivalently (what the fast path computes): dropped iff rng_u32 < ceil(p * 2^32).
 *
 * Nothing is stored: backward regenerates the same mask from the same cfg (Philox costs about as
 * much as reading a stored mask would, and the forward then keeps no state). The mask multiplies
 * (it is not a select), so NaN/Inf in x still propagate like x * mask in PyTorch.
 * p = 0 is the identity (pass p = 0 in evaluation); p = 1 gives y = x * 0.
 * Forward may run in place (y == x); backward must not alias dx with dy. */
#ifndef LONGVQ_DROPOUT_H
#define LONGVQ_DROPOUT_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
  float p;            /* drop probability in [0, 1]; 0 = identity (evaluation) */
  uint64_t seed;      /* run seed */
  const char *domain; /* "dropout/<layer>/<site>" (dropout_domain) */
  uint32_t step;      /* optimizer step s, counted from 1 */
  int64_t sample0;    /* global-batch index of the call's first sample (row block 0) */
} dropout_cfg;

/* Sites of the model (docs/layers.md): layer "embed" for the embedding, else the layer index. */
#define DROPOUT_SITE_EMBED "x"    /* dropout(embed(x)) */
#define DROPOUT_SITE_V "v"        /* hdrop(silu(v_proj(xn))) */
#define DROPOUT_SITE_MX "mx"      /* dropout(EMA(xn * m)) */
#define DROPOUT_SITE_H "h"        /* dropout(silu(hx + h_proj(r * O))) */
#define DROPOUT_SITE_FFN_HID "fc1" /* hdrop(silu(fc1(yn))) */
#define DROPOUT_SITE_FFN_OUT "ffn" /* dropout(fc2(.)) */

/* Writes "dropout/<layer>/<site>" (layer < 0: "dropout/embed/<site>") into buf; returns buf. */
char *dropout_domain(char *buf, size_t cap, int layer, const char *site);

void dropout_forward(float *y /* (B*L, W) */, const float *x /* (B*L, W) */, const dropout_cfg *cfg,
                     int64_t B, int64_t L, int64_t W);
void dropout_backward(float *dx /* (B*L, W) += */, const float *dy /* (B*L, W) */, const dropout_cfg *cfg,
                      int64_t B, int64_t L, int64_t W);

#endif
