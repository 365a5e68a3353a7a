/* Double-precision reference twins of layers/head.h (plain loops; saved has the same layout as the
 * fast path: [pooled (B, D) | pre (B, D) | hid (B, D) | count (B)]). */
#ifndef LONGVQ_HEAD_REF_H
#define LONGVQ_HEAD_REF_H

#include <stdint.h>

void head_forward_ref(double *logits /* (B, K) */, const double *x /* (B*L, D) */, const double *m /* (B*L) */,
                      const double *dense_w /* (D, D) */, const double *dense_b /* (D) */,
                      const double *out_w /* (K, D) */, const double *out_b /* (K) */,
                      double *saved /* 3 B D + B */, int64_t B, int64_t L, int64_t D, int64_t K);
void head_backward_ref(double *dx /* (B*L, D) += */, double *d_dense_w /* (D, D) += */, double *d_dense_b /* (D) += */,
                       double *d_out_w /* (K, D) += */, double *d_out_b /* (K) += */,
                       const double *dlogits /* (B, K) */, const double *m /* (B*L) */,
                       const double *dense_w /* (D, D) */, const double *out_w /* (K, D) */,
                       const double *saved, int64_t B, int64_t L, int64_t D, int64_t K);

void lm_head_forward_ref(double *logits /* (rows, V) */, const double *x /* (rows, D) */, const double *E /* (V, D) */,
                         int64_t rows, int64_t D, int64_t V);
void lm_head_backward_ref(double *dx /* (rows, D) += */, double *dE /* (V, D) += */,
                          const double *dlogits /* (rows, V) */, const double *x /* (rows, D) */,
                          const double *E /* (V, D) */, int64_t rows, int64_t D, int64_t V);

#endif
