/* Double-precision reference twin of layers/norm.h. Backward is written from the explicit Jacobian
 * d xhat_j / d x_i = rstd (delta_ij - c/D - xhat_i xhat_j / D)   (c = 1 centred, 0 for RMS),
 * O(D^2) per row: a derivation independent of the fast path's closed form. */
#ifndef LONGVQ_NORM_REF_H
#define LONGVQ_NORM_REF_H

#include <stdint.h>

#include "layers/norm.h"

void norm_forward_ref(norm_kind kind, double *y /* (rows, D) */, const double *x /* (rows, D) */,
                      const double *weight /* (D) or (1) */, const double *bias /* (D) or NULL */,
                      double *saved /* (2 rows): mean | rstd */, int64_t rows, int64_t D);
void norm_backward_ref(norm_kind kind, double *dx /* (rows, D) += or NULL */, double *dweight /* (D)/(1) += */,
                       double *dbias /* (D) += or NULL */, const double *dy /* (rows, D) */,
                       const double *x /* (rows, D) */, const double *weight /* (D) or (1) */,
                       const double *saved /* (2 rows) */, int64_t rows, int64_t D);
void lnz_forward_ref(double *y /* (rows, Z) */, const double *x /* (rows, Z) */, double scale,
                     double *saved /* (2 rows) */, int64_t rows, int64_t Z);
void lnz_backward_ref(double *dx /* (rows, Z) += */, const double *dy /* (rows, Z) */, const double *x /* (rows, Z) */,
                      double scale, const double *saved /* (2 rows) */, int64_t rows, int64_t Z);

#endif
