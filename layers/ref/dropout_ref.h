/* Double-precision reference twin of layers/dropout.h: the key layout written out literally with
 * trainer/rng.h (rng_make + rng_uniform per element). */
#ifndef LONGVQ_DROPOUT_REF_H
#define LONGVQ_DROPOUT_REF_H

#include <stdint.h>

#include "layers/dropout.h"

void dropout_forward_ref(double *y /* (B*L, W) */, const double *x /* (B*L, W) */, const dropout_cfg *cfg,
                         int64_t B, int64_t L, int64_t W);
void dropout_backward_ref(double *dx /* (B*L, W) += */, const double *dy /* (B*L, W) */, const dropout_cfg *cfg,
                          int64_t B, int64_t L, int64_t W);

#endif
