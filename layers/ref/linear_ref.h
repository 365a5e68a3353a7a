/* Double-precision reference twin of layers/linear.h: plain loops over the same linear_desc
 * (strides, bias, accumulate, activation). With an activation, pre is required (it is where the
 * pre-activation goes, as on the fast training path). */
#ifndef LONGVQ_LINEAR_REF_H
#define LONGVQ_LINEAR_REF_H

#include "layers/linear.h"

void linear_forward_ref(double *y /* (rows, out) ldy */, const double *x /* (rows, in) ldx */,
                        const double *W /* (out, in) */, const double *b /* (out) or NULL */,
                        double *pre /* (rows, out) dense, or NULL without act */, const linear_desc *d);
void linear_backward_ref(double *dx /* (rows, in) ldx, += or NULL */, double *dW /* (out, in) += */,
                         double *db /* (out) += or NULL */, const double *dy /* (rows, out) ldy */,
                         const double *x /* (rows, in) ldx */, const double *W /* (out, in) */,
                         const double *pre /* (rows, out) or NULL */, const linear_desc *d);

#endif
