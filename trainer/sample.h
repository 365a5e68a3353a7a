/* Drawing the next token from a model's logits (`longvq generate`).
 *
 * The candidates are the top_k tokens by logit (ties: the lower id first); token i among them has
 * probability exp((l_i - l_max) / T) / sum, evaluated in double. The draw is u in [0, 1) from the
 * counter-based generator (trainer/base/rng.h) keyed by (seed, "generate", position low 32 bits,
 * position high 32 bits), element 0; the token is the first candidate, in the order above, at which
 * the running sum of probabilities exceeds u * sum. So a token depends only on the logits, T, k, the
 * seed and its position: the same on every run, machine and thread count (docs/randomness.md). */
#ifndef LONGVQ_SAMPLE_H
#define LONGVQ_SAMPLE_H

#include <stdint.h>

typedef struct {
  int64_t V;
  int32_t *order; /* (V) candidate ids, best first */
  double *w;      /* (V) their unnormalized probabilities */
} lv_sampler;

/* Allocates the sampler's buffers for vocabulary V (once; lv_sample allocates nothing). */
void lv_sampler_init(lv_sampler *s, int64_t V);
void lv_sampler_free(lv_sampler *s);

/* The token drawn for `position` from logits (V), temperature > 0, 1 <= top_k <= V. Returns -1 if a
 * candidate's logit is not finite. */
int32_t lv_sample(lv_sampler *s, const float *logits, double temperature, int64_t top_k, uint64_t seed,
                  int64_t position);

#endif
