/* The damped multi-dimensional EMA of the LongVQ mixer (spec: "The EMA"), fast float32 path.
 *
 *   p = sigmoid(delta), d = sigmoid(alpha), phi = 1 - p*d          all (D', N); s = N^-1/2
 *   forward rows c:    h_t[n] = phi[c,n] h_{t-1}[n] + p[c,n] beta[c,n] x_t[c],  h_{-1} = 0
 *                      yf_t[c] = s * sum_n gamma[c,n] h_t[n]
 *   backward rows D+c: g_t[n] = phi[D+c,n] g_{t+1}[n] + p[D+c,n] beta[D+c,n] x_t[c],  g_L = 0
 *                      yb_t[c] = s * sum_n gamma[D+c,n] g_t[n]        (bidir only; else yb = 0)
 *   out_t[c] = silu(yf_t[c] + yb_t[c] + omega[c] * x_t[c])
 *
 * D' = 2D when bidir (encoder), D' = D otherwise (decoder, causal). The recurrence is exact over the
 * whole sequence of each batch entry (state 0 at t = 0, and after t = L-1 for the backward rows).
 * x must already be masked by the caller: padding positions hold x = 0 and simply carry the state.
 *
 * Parameter init is the model's job; the spec's init, for the model builder:
 *   delta, alpha (D', N): N(0, 0.2)       beta (D', N): +1,-1,+1,... along N, plus N(0, 0.02)
 *   gamma (D', N): N(0, 1)                omega (D): N(0, 1)
 * EMA parameters get no weight decay.
 *
 * Memory is linear in L: the forward pass saves the pre-activation (B, L, D) and the state at every
 * EMA_CHUNK-th step; backward recomputes the states inside one chunk at a time while it runs the
 * adjoint recurrence (forward rows: chunks in reverse time order; backward rows: forward order).
 * Threads: one OpenMP task per (batch entry, block of EMA_LANES channels), both directions.
 * Caller-provided buffers need no particular alignment. See docs/layers.md, "EMA".
 */
#ifndef LONGVQ_EMA_H
#define LONGVQ_EMA_H

#include <stddef.h>
#include <stdint.h>

/* Steps between saved states. The saved boundary states are B * ceil(L/EMA_CHUNK) * D' * N floats
 * (D padded to EMA_LANES), i.e. B*L*D'*N/64; backward keeps 7 chunk buffers of EMA_CHUNK x EMA_LANES
 * floats per thread on the stack (29 KB at 64 with 16 lanes: a chunk's recomputed states stay in
 * L1). The recompute costs one extra pass of the recurrence whatever the chunk length. */
#define EMA_CHUNK 64
/* Channels processed together: one vector register of float32 of the build's target (-march). */
#if defined(__AVX512F__)
#define EMA_LANES 16
#elif defined(__AVX__)
#define EMA_LANES 8
#else
#define EMA_LANES 4
#endif

/* Floats of saved state written by ema_forward and read by ema_backward:
 *   pre   (B, L, D)                     pre-activation yf + yb + omega*x
 *   bound (B, nc, ndir, N, Dp)          scaled state entering chunk k of direction dir (see ema.c),
 * nc = ceil(L / EMA_CHUNK), ndir = 1 + bidir, Dp = D rounded up to EMA_LANES. */
size_t ema_saved_floats(int64_t B, int64_t L, int64_t D, int64_t N, int bidir);
/* Floats of scratch used by ema_forward / ema_backward (contents are not kept between calls):
 * about (4B + 2) D' N plus, when bidir, B*L*D for dy shared by the two directions' backward passes. */
size_t ema_scratch_floats(int64_t B, int64_t L, int64_t D, int64_t N, int bidir);

void ema_forward(float *out,          /* (B, L, D) */
                 const float *x,      /* (B, L, D) masked input */
                 const float *delta,  /* (D', N) */
                 const float *alpha,  /* (D', N) */
                 const float *beta,   /* (D', N) */
                 const float *gamma,  /* (D', N) */
                 const float *omega,  /* (D) */
                 float *saved,        /* ema_saved_floats(B, L, D, N, bidir), written */
                 float *scratch,      /* ema_scratch_floats(B, L, D, N, bidir) */
                 int64_t B, int64_t L, int64_t D, int64_t N, int bidir);

/* All gradients accumulate (+=). x and the parameters must be those of the matching forward call. */
void ema_backward(float *dx,          /* (B, L, D) += */
                  float *ddelta,      /* (D', N) += */
                  float *dalpha,      /* (D', N) += */
                  float *dbeta,       /* (D', N) += */
                  float *dgamma,      /* (D', N) += */
                  float *domega,      /* (D) += */
                  const float *dout,  /* (B, L, D) */
                  const float *x,     /* (B, L, D) */
                  const float *delta, /* (D', N) */
                  const float *alpha, /* (D', N) */
                  const float *beta,  /* (D', N) */
                  const float *gamma, /* (D', N) */
                  const float *omega, /* (D) */
                  const float *saved, /* ema_saved_floats(...), from ema_forward */
                  float *scratch,     /* ema_scratch_floats(...) */
                  int64_t B, int64_t L, int64_t D, int64_t N, int bidir);

/* The recurrence's coefficients in the scaled form of ema.c (h~_t = phi h~_{t-1} + x_t, the output
 * sum_n q h~_t): phi = 1 - p*d and q = s*gamma*p*beta, evaluated in double and rounded once,
 * transposed to phiT, qT (ndir, N, Dp) with zeros in the lanes c >= D (Dp >= D). */
void ema_coeffs(float *phiT, float *qT, const float *delta /* (D', N) */, const float *alpha /* (D', N) */,
                const float *beta /* (D', N) */, const float *gamma /* (D', N) */, int64_t D, int64_t N, int64_t ndir,
                int64_t Dp);

/* One token of the causal EMA (decoder, D' = D), for incremental decoding (layers/decode.h): the
 * scaled state h~ (N, D) advances by x_t and out_t[c] = silu(sum_n q h~_t[n, c] + omega[c] x_t[c]).
 * phiT, qT from ema_coeffs with ndir 1, Dp = D. State 0 before the first token. Same arithmetic as
 * ema_forward's rows up to the order of the sum over n. */
void ema_step(float *out /* (D) */, float *state /* (N, D) in/out */, const float *x /* (D) masked input */,
              const float *phiT /* (N, D) */, const float *qT /* (N, D) */, const float *omega /* (D) */, int64_t D,
              int64_t N);

#endif
