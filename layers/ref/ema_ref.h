/* EMA layer, double-precision reference twin of layers/ema.h (same definition, same argument order,
 * minus the scratch buffer). Plain loops that store every state: O(B L D' N) saved memory, tests only.
 * D' = 2D when bidir (encoder), D otherwise. */
#ifndef LONGVQ_EMA_REF_H
#define LONGVQ_EMA_REF_H

#include <stddef.h>
#include <stdint.h>

/* Doubles of saved state: pre (B, L, D) pre-activation, then every state H (B, ndir, L, D, N), with
 * H[b][1][t] = g_t (the backward rows' state at time t). */
size_t ema_saved_doubles_ref(int64_t B, int64_t L, int64_t D, int64_t N, int bidir);

void ema_forward_ref(double *out,          /* (B, L, D) */
                     const double *x,      /* (B, L, D) masked input */
                     const double *delta,  /* (D', N) */
                     const double *alpha,  /* (D', N) */
                     const double *beta,   /* (D', N) */
                     const double *gamma,  /* (D', N) */
                     const double *omega,  /* (D) */
                     double *saved,        /* ema_saved_doubles_ref(...), written */
                     int64_t B, int64_t L, int64_t D, int64_t N, int bidir);

/* All gradients accumulate (+=). */
void ema_backward_ref(double *dx,          /* (B, L, D) += */
                      double *ddelta,      /* (D', N) += */
                      double *dalpha,      /* (D', N) += */
                      double *dbeta,       /* (D', N) += */
                      double *dgamma,      /* (D', N) += */
                      double *domega,      /* (D) += */
                      const double *dout,  /* (B, L, D) */
                      const double *x,     /* (B, L, D) */
                      const double *delta, /* (D', N) */
                      const double *alpha, /* (D', N) */
                      const double *beta,  /* (D', N) */
                      const double *gamma, /* (D', N) */
                      const double *omega, /* (D) */
                      const double *saved, /* from ema_forward_ref */
                      int64_t B, int64_t L, int64_t D, int64_t N, int bidir);

#endif
