/* Double-precision reference twin of layers/xent.h (libm exp/log; saved = [max | logsum], double). */
#ifndef LONGVQ_XENT_REF_H
#define LONGVQ_XENT_REF_H

#include <stdint.h>

#include "layers/xent.h"

void xent_forward_ref(xent_stats *stats, const double *logits /* (R, K) */, const int32_t *targets /* (R) */,
                      const double *mask /* (R) or NULL */, double *saved /* (2 R) */, int64_t R, int64_t K);
void xent_backward_ref(double *dlogits /* (R, K) += */, double scale, const double *logits /* (R, K) */,
                       const int32_t *targets /* (R) */, const double *mask /* (R) or NULL */,
                       const double *saved /* (2 R) */, int64_t R, int64_t K);

#endif
