/* Norms over the last dimension (width D) of row-major (rows, D) activations, eps = 1e-5:
 *   layernorm  y = (x - mean) * rstd * weight + bias,   rstd = 1 / sqrt(var + eps)     weight, bias (D)
 *   rmsnorm    y = x * rstd * weight,                   rstd = 1 / sqrt(mean(x^2) + eps) weight (D)
 *   scalenorm  y = x * rstd * scale[0],                 rstd as rmsnorm                scale (1)
 *   lnz        y = (x - mean) * rstd * s                layernorm without parameters, times a constant
 *              s: the model's q, k use s = Z^(-1/4) (the spec's scaling, folded in here).
 * Row statistics are computed in double (two passes: mean, then centred variance) and saved as
 * float: saved = [mean (rows) | rstd (rows)] (mean = 0 for rmsnorm/scalenorm).
 * Backward recomputes xhat from x and saved, and accumulates:
 *   dx += rstd (g - mean(g) - xhat mean(g xhat))   (layernorm, lnz;  g = dy * weight)
 *   dx += rstd (g - xhat mean(g xhat))             (rmsnorm, scalenorm)
 *   dweight += sum_rows dy xhat, dbias += sum_rows dy, dscale += sum_all dy xhat
 * Parameter gradients are summed in double in a fixed order (columns for weight/bias, 256 fixed
 * row chunks for scale): the same bits for any number of OpenMP threads.
 * y must not alias x (x is needed for backward). */
#ifndef LONGVQ_NORM_H
#define LONGVQ_NORM_H

#include <stddef.h>
#include <stdint.h>

/* The norm kind: the config's model.norm and lv_dims.norm are of this type. */
typedef enum { NORM_LAYERNORM = 0, NORM_RMSNORM = 1, NORM_SCALENORM = 2 } norm_kind;

#define NORM_EPS 1e-5

/* saved floats of norm_forward / lnz_forward: 2 * rows. */
size_t norm_saved_floats(int64_t rows);
/* Parameter floats of a norm kind for width D: layernorm 2D (weight, bias), rmsnorm D, scalenorm 1. */
int64_t norm_param_floats(norm_kind kind, int64_t D);

/* weight: (D) for layernorm/rmsnorm, the scalar `scale` (1) for scalenorm. bias: (D) layernorm only
 * (NULL otherwise). */
void norm_forward(norm_kind kind, float *y /* (rows, D) */, const float *x /* (rows, D) */,
                  const float *weight /* (D) or (1) */, const float *bias /* (D) or NULL */,
                  float *saved /* (2 rows): mean | rstd */, int64_t rows, int64_t D);
/* dx may be NULL; dweight (D or 1) += ; dbias (D) += for layernorm (may be NULL to skip). */
void norm_backward(norm_kind kind, float *dx /* (rows, D) += */, float *dweight /* (D) or (1) += */,
                   float *dbias /* (D) += or NULL */, const float *dy /* (rows, D) */,
                   const float *x /* (rows, D) */, const float *weight /* (D) or (1) */,
                   const float *saved /* (2 rows) */, int64_t rows, int64_t D);

/* lnz: parameter-free layer norm over Z, output multiplied by `scale` (Z^-1/4 for q and k). */
void lnz_forward(float *y /* (rows, Z) */, const float *x /* (rows, Z) */, float scale,
                 float *saved /* (2 rows) */, int64_t rows, int64_t Z);
void lnz_backward(float *dx /* (rows, Z) += */, const float *dy /* (rows, Z) */, const float *x /* (rows, Z) */,
                  float scale, const float *saved /* (2 rows) */, int64_t rows, int64_t Z);

#endif
