/* Linear layer (PyTorch convention): y (rows, out) = act( [y_old +] x (rows, in) W^T + b ),
 * W stored (out, in), b (out).
 *
 * Everything that multiplies runs through pre-built oneDNN plans (layers/dnn.h):
 *   forward   y = x W^T (+ b) (+ y_old) (then act)          bias / accumulate / act fused in the mm
 *   backward  dx += G W,   dW += G^T x,   db += column sums of G (deterministic loop, double sums)
 * where G = dy without activation, and G = dpre = dy * act'(pre) with one.
 *
 * Activation (desc.act != MM_ACT_NONE). The backward of a fused activation needs the
 * pre-activation, which the fused matmul does not keep. So:
 *   - training: pass `pre` (rows, out) dense to linear_forward: the mm writes the pre-activation there
 *     (no post-op), then y = act(pre) elementwise (layers/act.h). linear_backward reads pre.
 *   - inference / eval: pass pre = NULL: the activation runs as a oneDNN post-op (one pass, no
 *     extra memory). linear_backward then cannot be called (it dies).
 * With desc.accumulate the mm adds into its destination: with pre, pre must hold the value to add
 *   (e.g. a copy of hx for silu(hx + h_proj(.))); without pre, y does. After linear_backward with an
 *   activation, `scratch` holds dpre (rows, out) dense, which is also the gradient of that addend.
 *
 * Column slices: x/dx may be a column slice of a wider matrix (row stride ldx), y/dy too (ldy):
 *   e.g. one of mx_proj's outputs u|z|r|hx written straight into base (BT, 2D+Z+E) with
 *   W = mx_proj.weight + D*in rows offset, b = mx_proj.bias + offset, ldy = 2D+Z+E.
 * pre and scratch are always dense (rows, out). */
#ifndef LONGVQ_LINEAR_H
#define LONGVQ_LINEAR_H

#include <stddef.h>
#include <stdint.h>

#include "layers/dnn.h"

typedef struct {
  int64_t rows;    /* BT: rows of x and y */
  int64_t in, out; /* in_features, out_features */
  int64_t ldx;     /* row stride of x and dx (0 = in) */
  int64_t ldy;     /* row stride of y and dy (0 = out) */
  int bias;        /* 1: b is used (and db computed) */
  int accumulate;  /* 1: forward adds into its destination (pre with an activation, else y) */
  mm_act act;      /* activation after the affine map (MM_ACT_NONE: none) */
} linear_desc;

typedef struct {
  linear_desc d;   /* ldx/ldy filled in */
  mm_plan fwd;     /* x W^T (+b) (+acc) -> y, act fused as a post-op (eval path when act != NONE) */
  mm_plan fwd_pre; /* act != NONE: x W^T (+b) (+acc) -> pre, no post-op (training path) */
  mm_plan bwd_dx;  /* dx += G W */
  mm_plan bwd_dw;  /* dW += G^T x */
} linear_plan;

void linear_plan_init(linear_plan *p, const dnn_ctx *ctx, linear_desc d);
void linear_plan_free(linear_plan *p);

/* Floats of `pre` that training keeps from forward to backward: rows*out with an activation, else 0. */
size_t linear_saved_floats(const linear_desc *d);
/* Floats of backward scratch (dpre): rows*out with an activation, else 0. */
size_t linear_scratch_floats(const linear_desc *d);
/* FLOPs of one forward (2 rows in out) and one backward (dx and dW: 4 rows in out). */
double linear_forward_flops(const linear_desc *d);
double linear_backward_flops(const linear_desc *d);

void linear_forward(const linear_plan *p, const dnn_ctx *ctx,
                    float *y /* (rows, out) ldy; += if accumulate and no act */,
                    const float *x /* (rows, in) ldx */,
                    const float *W /* (out, in) */, const float *b /* (out) or NULL if !bias */,
                    float *pre /* (rows, out) dense: saved pre-activation; NULL = no act or eval */);

/* dx (may be NULL: not needed) and dW, db (NULL if !bias) accumulate. */
void linear_backward(const linear_plan *p, const dnn_ctx *ctx,
                     float *dx /* (rows, in) ldx, += */, float *dW /* (out, in) += */, float *db /* (out) += */,
                     const float *dy /* (rows, out) ldy */,
                     const float *x /* (rows, in) ldx */, const float *W /* (out, in) */,
                     const float *pre /* (rows, out) from forward; NULL if no act */,
                     float *scratch /* linear_scratch_floats; out: dpre */);

/* Column sums g (rows, cols) row stride ldg (0 = cols) added into out (cols), in double, in a fixed
 * order: the same bits for any number of threads. (Bias gradients; used by other layers too.) */
void colsum_acc(float *out /* (cols) += */, const float *g /* (rows, cols) ldg */, int64_t ldg, int64_t rows,
                int64_t cols);

#endif
