/* Elementwise activations: silu, sigmoid, exact (erf) GELU, forward and backward.
 *
 * silu(a) = a * sigmoid(a),  sigmoid(a) = 1 / (1 + e^-a),  gelu_erf(a) = a * Phi(a) (exact erf form).
 * Backward takes the PRE-activation a (what the forward read), not the output, and accumulates:
 *   dx += dy * act'(a).
 * Forward may run in place (y == x); backward must not alias dx with dy or x.
 *
 * silu and sigmoid use act_expf (below): a branch-free expf that GCC vectorizes (AVX-512), so these
 * loops run at memory speed; with n >= ACT_PAR_MIN they are also split over OpenMP threads.
 * gelu_erf calls libm erfcf/expf (scalar): it only runs on the (B, D) encoder head.
 * NaN inputs give NaN outputs (no fast-math anywhere). */
#ifndef LONGVQ_ACT_H
#define LONGVQ_ACT_H

#include <stdint.h>
#include <string.h>

#include "layers/dnn.h" /* mm_act: the activation kinds (shared with fused matmul post-ops) */

/* Element count from which the loops use OpenMP threads. */
#define ACT_PAR_MIN 32768

/* e^x in float without libm, written to vectorize: Cody-Waite reduction x = n ln2 + r, a degree-6
 * polynomial for e^r (Cephes expf coefficients), scaling by 2^n through the exponent bits.
 * Max relative error ~2 ulp (tests/test_dense_act.c measures it against double exp).
 * x is clamped to [-87.3, 88]: results stay finite and normal (e^88 = 1.65e38, e^-87.3 = 1.2e-38),
 * which is what sigmoid/softmax need; NaN propagates (the clamps compare, so NaN passes through). */
static inline float act_expf(float x) {
  x = x > 88.0f ? 88.0f : x;
  x = x < -87.3f ? -87.3f : x;
  const float magic = 12582912.0f; /* 1.5 * 2^23: adding it rounds to an integer in the low bits */
  float t = x * 1.44269504088896341f + magic;
  float n = t - magic;
  float r = x - n * 0.693359375f;  /* ln2 high part: n * C1 is exact for |n| <= 128 */
  r = r - n * -2.12194440e-4f;     /* ln2 low part */
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  float er = p * r * r + r + 1.0f;
  uint32_t tb, eb;
  memcpy(&tb, &t, 4);
  uint32_t mb;
  memcpy(&mb, &magic, 4);
  eb = (tb - mb + 127u) << 23; /* n + 127 in the exponent field (n in [-126, 127]) */
  float scale;
  memcpy(&scale, &eb, 4);
  return er * scale;
}

/* sigmoid via act_expf: 1 / (1 + e^-x). */
static inline float act_sigmoidf(float x) { return 1.0f / (1.0f + act_expf(-x)); }

void silu_forward(float *y /* (n) */, const float *x /* (n) */, int64_t n);
void silu_backward(float *dx /* (n) += */, const float *dy /* (n) */, const float *x /* (n) pre-act */, int64_t n);
void sigmoid_forward(float *y /* (n) */, const float *x /* (n) */, int64_t n);
void sigmoid_backward(float *dx /* (n) += */, const float *dy /* (n) */, const float *x /* (n) pre-act */, int64_t n);
void gelu_erf_forward(float *y /* (n) */, const float *x /* (n) */, int64_t n);
void gelu_erf_backward(float *dx /* (n) += */, const float *dy /* (n) */, const float *x /* (n) pre-act */, int64_t n);

/* By kind. MM_ACT_NONE is the identity: forward copies (nothing if y == x), backward dx += dy. */
void act_forward(mm_act act, float *y /* (n) */, const float *x /* (n) */, int64_t n);
void act_backward(mm_act act, float *dx /* (n) += */, const float *dy /* (n) */, const float *x /* (n) */, int64_t n);

/* Strided 2-D versions over (rows, cols) with row strides ld* (0 = cols): apply an activation to a
 * column slice of a wider matrix, e.g. u = sigmoid(base[:, 0:D]) with ldx = 2D+Z+E. */
void act_forward_2d(mm_act act, float *y /* (rows, cols) ldy */, int64_t ldy,
                    const float *x /* (rows, cols) ldx */, int64_t ldx, int64_t rows, int64_t cols);
void act_backward_2d(mm_act act, float *dx /* (rows, cols) lddx, += */, int64_t lddx,
                     const float *dy /* (rows, cols) lddy */, int64_t lddy,
                     const float *x /* (rows, cols) ldx, pre-act */, int64_t ldx, int64_t rows, int64_t cols);

#endif
