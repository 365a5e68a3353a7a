/* The whole LongVQ model (spec: "Forward pass") in double precision, composed from the layers'
 * reference twins: the arbiter the fast float32 model (layers/model.h) is tested against, and what
 * the end-to-end finite-difference check runs on. Plain loops, allocates freely: tests only.
 *
 * Same parameter/state layout (lv_layout, params as doubles), same batch conventions (lv_batch) and
 * the same globally normalized loss as layers/model.h:
 *   loss = task_sum * task_scale + commit_weight * commit_scale * sum_i commit_sum_i
 * Dropout is not modelled: opts may be NULL; a training opts with a dropout > 0 dies.
 *
 * Codes: code_t = argmin_s (||Cb_s||^2 - 2 k_t . Cb_s) with the distance formed in float32 exactly
 * as the spec says (lv_ref_code_f32), unless io->force_codes fixes them.
 *
 * Finite differences through VQ (io->ste_k0). With the codes fixed, the forward value reads
 * k_hat = Cb[code], which does not move with k, while the straight-through gradient says
 * d loss/d k = d loss/d k_hat (near pairs). To make the two agree, the FD mode evaluates near-pair
 * logits with the key  Cb[code] + (k - k0)  ("k_hat + k - sg(k)" written out), k0 = the keys at the
 * unperturbed point (io->keys_out of a first evaluation): the value at k = k0 is unchanged and its
 * derivative in k is exactly the straight-through gradient. Far pairs keep q . Cb[code] (no gradient
 * to k); the commitment term uses k itself. */
#ifndef LONGVQ_MODEL_REF_H
#define LONGVQ_MODEL_REF_H

#include <stdint.h>

#include "layers/model.h"
#include "layers/params.h"

/* Sums over the batch, as lv_fwd_stats. */
typedef struct {
  double task_sum;                  /* sum of per-sample (encoder) / per-target (decoder) nll */
  double task_count;                /* samples / counted targets */
  double correct;                   /* argmax == target */
  double valid;                     /* valid input tokens */
  double commit_sum[LV_MAX_LAYERS]; /* sum_t m_t ||k_t - Cb[code_t]||^2 per layer */
} lv_ref_stats;

/* Optional inputs and outputs of one evaluation (every pointer may be NULL; io itself may be NULL). */
typedef struct {
  const int32_t *force_codes; /* (n_layers, B*L): use these codes instead of the argmin */
  const double *ste_k0;       /* (n_layers, B*L, Z): FD mode (requires force_codes), see above */
  int32_t *codes_out;         /* (n_layers, B*L) codes used */
  double *keys_out;           /* (n_layers, B*L, Z) keys k (after lnz and the Z^-1/4 scaling) */
  double *logits_out;         /* encoder (B, K), decoder (B*L, V) */
} lv_ref_io;

/* Returns the loss; grads (lay->n_param_floats, param layout) += d loss / d params if not NULL;
 * stats (may be NULL) receives the sums. */
double lv_model_loss_ref(const lv_layout *lay, const double *params /* n_param_floats */,
                         const double *state /* n_state_floats */, const lv_batch *b, int64_t B, int64_t L,
                         const lv_fwd_opts *opts, double task_scale, double commit_scale, double commit_weight,
                         const lv_ref_io *io, double *grads, lv_ref_stats *stats);

/* The spec's code of key k: argmin_s of ||Cb_s||^2 - 2 k . Cb_s formed in float32 from k and Cb
 * rounded to float (||Cb_s||^2 and the dot product each summed in double and rounded once), ties to
 * the lowest s. */
int32_t lv_ref_code_f32(const double *k /* (Z) */, const double *cb /* (S, Z) */, int64_t S, int64_t Z);
/* 1 if k is a near-tie (spec "Agreement"): its two smallest ||k - Cb_s||^2 differ by less than
 * 1e-4 ||k||^2, where two float32 implementations may legitimately pick different codes. */
int lv_ref_near_tie(const double *k /* (Z) */, const double *cb /* (S, Z) */, int64_t S, int64_t Z);

#endif
