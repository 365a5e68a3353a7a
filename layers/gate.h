/* Gated residual (the mixer's update gate): y = x + u * (h - x), elementwise over n = BT*D.
 * Backward accumulates dx += dy (1 - u), du += dy (h - x), dh += dy u; any of dx, du, dh may be
 * NULL (not needed). Forward may write y over x, u or h only if the caller does not need that
 * input for backward; backward must not alias an input gradient with dy. */
#ifndef LONGVQ_GATE_H
#define LONGVQ_GATE_H

#include <stdint.h>

void gate_forward(float *y /* (n) */, const float *x /* (n) */, const float *u /* (n) */, const float *h /* (n) */,
                  int64_t n);
void gate_backward(float *dx /* (n) += */, float *du /* (n) += */, float *dh /* (n) += */, const float *dy /* (n) */,
                   const float *x /* (n) */, const float *u /* (n) */, const float *h /* (n) */, int64_t n);

#endif
