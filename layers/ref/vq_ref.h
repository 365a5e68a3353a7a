/* Double-precision reference twin of layers/vq.h (plain loops): codebook, assignment, commitment
 * statistics and its gradient. Same argument order as the fast path, sizes instead of a plan.
 * The argmin here uses double distances ||Cb_s||^2 - 2 k . Cb_s (ties to the lowest s): it agrees
 * with the float32 fast path except at near-ties (spec: "Agreement between implementations"). */
#ifndef LONGVQ_VQ_REF_H
#define LONGVQ_VQ_REF_H

#include <stdint.h>

void vq_codebook_ref(double *cb /* (S, Z) */, const double *c_sum /* (S, Z) */, const double *c_count /* (S) */,
                     int64_t S, int64_t Z);

void vq_forward_ref(int32_t *code /* (BT) */, double *k_hat /* (BT, Z) */, double *commit_sum /* += */,
                    double *valid_count /* += */, double *n_s /* (S) += */, double *key_sums /* (S, Z) += */,
                    const double *k /* (BT, Z) */, const uint8_t *m /* (BT) */, const double *cb /* (S, Z) */,
                    int64_t BT, int64_t Z, int64_t S);

/* dk += w * 2 (k - Cb[code]) m */
void vq_backward_ref(double *dk /* (BT, Z) += */, double w, const double *k /* (BT, Z) */,
                     const uint8_t *m /* (BT) */, const double *cb /* (S, Z) */, const int32_t *code /* (BT) */,
                     int64_t BT, int64_t Z);

#endif
