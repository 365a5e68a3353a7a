/* Double-precision reference twins of layers/act.h (plain loops, libm exp/erfc). Same argument
 * order as the float versions; backward takes the pre-activation and accumulates. */
#ifndef LONGVQ_ACT_REF_H
#define LONGVQ_ACT_REF_H

#include <stdint.h>

#include "layers/act.h"

void silu_forward_ref(double *y /* (n) */, const double *x /* (n) */, int64_t n);
void silu_backward_ref(double *dx /* (n) += */, const double *dy /* (n) */, const double *x /* (n) */, int64_t n);
void sigmoid_forward_ref(double *y /* (n) */, const double *x /* (n) */, int64_t n);
void sigmoid_backward_ref(double *dx /* (n) += */, const double *dy /* (n) */, const double *x /* (n) */, int64_t n);
void gelu_erf_forward_ref(double *y /* (n) */, const double *x /* (n) */, int64_t n);
void gelu_erf_backward_ref(double *dx /* (n) += */, const double *dy /* (n) */, const double *x /* (n) */, int64_t n);

void act_forward_ref(mm_act act, double *y /* (n) */, const double *x /* (n) */, int64_t n);
void act_backward_ref(mm_act act, double *dx /* (n) += */, const double *dy /* (n) */, const double *x /* (n) */, int64_t n);
void act_forward_2d_ref(mm_act act, double *y /* (rows, cols) ldy */, int64_t ldy,
                        const double *x /* (rows, cols) ldx */, int64_t ldx, int64_t rows, int64_t cols);
void act_backward_2d_ref(mm_act act, double *dx /* (rows, cols) lddx, += */, int64_t lddx,
                         const double *dy /* (rows, cols) lddy */, int64_t lddy,
                         const double *x /* (rows, cols) ldx */, int64_t ldx, int64_t rows, int64_t cols);

#endif
