/* Vector quantization of keys (spec: "Vector quantization of keys"), fast float32 path.
 *
 *   Cb       = c_sum / max(c_count, 0.01)                      row-wise, (S, Z): vq_codebook, once per step
 *   code_t   = argmin_s ( ||Cb_s||^2 - 2 k_t . Cb_s )          float32, ties to the lowest s
 *   k_hat_t  = Cb[code_t]
 *   commit   = sum_t m_t ||k_t - Cb[code_t]||^2  (partial sum; the trainer divides by the GLOBAL count)
 *   n_s      = #{t : m_t = 1, code_t = s},  key_sums_s = sum of k_t (not k_hat) over the same t
 *
 * k . Cb^T is one oneDNN matmul (BT, Z) x (Z, S); ||Cb_s||^2 is summed in double and rounded to float,
 * then d_s = ||Cb_s||^2 - 2 (k . Cb_s) is formed in float32 exactly as the spec writes it.
 *
 * Mask: uint8_t (BT), 1 = valid token, 0 = padding (the dataset's mask type). Padding rows get a code
 * and k_hat too (attention never reads them as keys) but count in no statistic.
 *
 * Statistics ACCUMULATE (+=) into caller buffers over the micro-batches of a step, all in double:
 * counts are exact integers up to 2^53 at any global batch, and the trainer reduces them over ranks
 * in double (trainer/stats.h). Every sum here is taken in a fixed order: the bits do not depend on
 * the number of OpenMP threads.
 *
 * Straight-through: the attention backward (layers/vq_attn.h) adds the gradient of k_hat (near pairs
 * only) to dk directly; vq_backward adds only the commitment term. No gradient reaches the codebook.
 * See docs/layers.md, "VQ". */
#ifndef LONGVQ_VQ_H
#define LONGVQ_VQ_H

#include <stddef.h>
#include <stdint.h>

#include "layers/dnn.h"

typedef struct {
  int64_t BT, Z, S;
  mm_plan dots; /* (BT, Z) x Cb^T (Z, S) -> (BT, S) */
} vq_plan;

void vq_plan_init(vq_plan *p, const dnn_ctx *ctx, int64_t BT, int64_t Z, int64_t S);
void vq_plan_free(vq_plan *p);

/* Floats of vq_forward's scratch: BT*S dot products + S squared norms. */
size_t vq_scratch_floats(int64_t BT, int64_t S);

/* Cb = c_sum / max(c_count, 0.01) row-wise, in float32 (one division per element). */
void vq_codebook(float *cb /* (S, Z) */, const float *c_sum /* (S, Z) */, const float *c_count /* (S) */,
                 int64_t S, int64_t Z);

/* ||Cb_s||^2 of every code, each summed in double and rounded once to float. */
void vq_codebook_sqnorms(float *cbsq /* (S) */, const float *cb /* (S, Z) */, int64_t S, int64_t Z);
/* The code of one key from its dot products with the codebook: d[s] = cbsq[s] - 2 d[s] in float32
 * (in place: in k . Cb_s, out the distances), then the argmin, ties to the lowest s (a NaN key: the
 * last code). vq_forward and the incremental decoder (layers/decode.h) both choose codes by it. */
int32_t vq_argmin_row(float *d /* (S) */, const float *cbsq /* (S) */, int64_t S);

void vq_forward(const vq_plan *p, const dnn_ctx *ctx,
                int32_t *code /* (BT) */, float *k_hat /* (BT, Z) */,
                double *commit_sum /* (1) += sum_t m_t ||k_t - Cb[code_t]||^2 */,
                double *valid_count /* (1) += sum_t m_t */,
                double *n_s /* (S) += valid tokens per code */,
                double *key_sums /* (S, Z) += sum of valid k_t per code */,
                const float *k /* (BT, Z) after lnz and Z^-1/4 */, const uint8_t *m /* (BT) */,
                const float *cb /* (S, Z) from vq_codebook */, float *scratch /* vq_scratch_floats */);

/* Commitment gradient: dk_t += w * 2 (k_t - Cb[code_t]) m_t,  w = commit_weight / global valid count. */
void vq_backward(float *dk /* (BT, Z) += */, double w, const float *k /* (BT, Z) */, const uint8_t *m /* (BT) */,
                 const float *cb /* (S, Z) */, const int32_t *code /* (BT) */, int64_t BT, int64_t Z);

/* Codebook EMA update from the step's GLOBAL statistics (after the allreduce), evaluated in double and
 * rounded once to float32:  c_count <- g c_count + (1-g) n_s,  c_sum <- g c_sum + (1-g) key_sums. */
void vq_codebook_update(float *c_sum /* (S, Z) */, float *c_count /* (S) */, const double *n_s /* (S) */,
                        const double *key_sums /* (S, Z) */, float decay, int64_t S, int64_t Z);

/* Re-seed threshold tau = 0.01 * N_t / S (double), N_t = the step's global count of valid tokens. */
double vq_reseed_tau(double n_tokens, int64_t S);
/* Codes that may need a re-seed, decided BEFORE the update so that their keys can travel in the
 * statistics' reduction: maybe[s] = (float)(g * c_count[s]) < tau. A superset of the codes vq_reseed
 * will re-seed (the update only adds (1-g) n_s >= 0, and float rounding is monotone). Returns how many. */
int64_t vq_reseed_candidates(uint8_t *maybe /* (S) */, const float *c_count /* (S) before the update */,
                             float decay, double n_tokens, int64_t S);
/* Index of the token whose key re-seeds a code: j = floor(u * N_t) for the code's uniform u in [0, 1),
 * clamped to N_t - 1 against rounding. The trainer draws u (Philox, keyed per the spec) and gathers k_j. */
int64_t vq_reseed_token(double u, int64_t n_tokens);
/* Dead-code re-seeding, right after vq_codebook_update: every s with c_count[s] < tau gets
 * c_sum[s] = 2 tau keys[s], c_count[s] = 2 tau (rounded to float). keys[s] = k_j with
 * j = vq_reseed_token(u_s, N_t); rows of codes that are not re-seeded are never read (they may hold
 * anything). reseeded (may be NULL) gets 1/0 per code. Returns the number of re-seeded codes. */
int64_t vq_reseed(float *c_sum /* (S, Z) */, float *c_count /* (S) */, uint8_t *reseeded /* (S) or NULL */,
                  const double *keys /* (S, Z): float32 keys, carried in double */, double n_tokens, int64_t S,
                  int64_t Z);

/* Logging: codes with n_s > 0, and the perplexity exp(-sum_s p_s log p_s), p = n_s / sum n_s
 * (0 log 0 = 0; perplexity 0 when no token was assigned). */
void vq_usage(int64_t *in_use, double *perplexity, const double *n_s /* (S) */, int64_t S);

#endif
