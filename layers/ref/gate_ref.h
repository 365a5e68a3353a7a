/* Double-precision reference twin of layers/gate.h. */
#ifndef LONGVQ_GATE_REF_H
#define LONGVQ_GATE_REF_H

#include <stdint.h>

void gate_forward_ref(double *y /* (n) */, const double *x /* (n) */, const double *u /* (n) */,
                      const double *h /* (n) */, int64_t n);
void gate_backward_ref(double *dx /* (n) += */, double *du /* (n) += */, double *dh /* (n) += */,
                       const double *dy /* (n) */, const double *x /* (n) */, const double *u /* (n) */,
                       const double *h /* (n) */, int64_t n);

#endif
