/* Double-precision reference twin of layers/vq_attn.h: the plain O(L^2) dense definition of the
 * spec, one sequence at a time, with far keys detached. Same argument order as the fast path (no
 * plan, saved state or scratch; sizes and mode last).
 *
 *   logit(t, j) = q_t . k_hat_j + bias(t, j)   for NEAR pairs (bias applies)
 *               = q_t . Cb[code_j]             for FAR pairs (codebook constant: no gradient to k)
 *   over allowed j with m_j = 1;  O_t = sum_j softmax_j v_j,  O_t = 0 with no such j.
 *
 * Because near logits read the k_hat array and far logits read cb, the gradient dk returned here is
 * exactly d(loss)/d(k_hat) through near pairs only, which is the straight-through gradient of k. A
 * finite-difference check that perturbs the k_hat argument therefore checks dk: perturbing k_hat
 * moves only the near logits, as "q . (k_hat + (k - sg(k)))" does in the forward value. */
#ifndef LONGVQ_VQ_ATTN_REF_H
#define LONGVQ_VQ_ATTN_REF_H

#include <stdint.h>

#include "layers/vq_attn.h"

void vq_attn_forward_ref(double *O /* (BT, E) */, const double *q /* (BT, Z) */, const double *k_hat /* (BT, Z) */,
                         const int32_t *code /* (BT) */, const double *v /* (BT, E) */, const uint8_t *m /* (BT) */,
                         const double *rel_pos_bias /* (2C-1) or (2C) */, const double *cb /* (S, Z) */,
                         int64_t B, int64_t L, int64_t C, int64_t Z, int64_t E, int64_t S, lv_mode mode,
                         int far);

/* All gradients accumulate (+=). */
void vq_attn_backward_ref(double *dq /* (BT, Z) += */, double *dk /* (BT, Z) += */, double *dv /* (BT, E) += */,
                          double *drel_pos_bias /* += */, const double *dO /* (BT, E) */, const double *q,
                          const double *k_hat, const int32_t *code, const double *v, const uint8_t *m,
                          const double *rel_pos_bias, const double *cb, int64_t B, int64_t L, int64_t C, int64_t Z,
                          int64_t E, int64_t S, lv_mode mode, int far);

#endif
