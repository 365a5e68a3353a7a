/* EMA layer, fast float32 path. Definition and buffer sizes: ema.h; reference twin: ref/ema_ref.c.
 *
 * Vectorization is across EMA_LANES consecutive channels (x rows are channel-contiguous), with the
 * state index n in registers: every (channel, n) recurrence is independent, so no horizontal sums
 * are needed (a lanes-over-N layout would need a 16-way reduction per token for yf and for dx).
 * Parameters are transposed once per call into (ndir, N, Dp) so a row of lanes is one vector load.
 *
 * Scaled state. With q = s*gamma*p*beta (the MEGA kernel coefficient, K[j] = sum_n q phi^j), the
 * recurrences run on  h~_t = phi h~_{t-1} + x_t  (h = p*beta*h~, one FMA per step) with
 * yf_t = sum_n q h~_t, and the adjoint on  lam~_t = dy_t + phi lam~_{t+1}  (lam = s*gamma*lam~,
 * lam = dL/dh). Then, summing over t (and over b in the final reduction):
 *   dgamma = s*p*beta * sum dy h~          d(p*beta) = s*gamma * sum lam~ x
 *   dphi   = s*gamma*p*beta * sum lam~ h~_{t-1}      dx_t += sum_n q lam~_t + omega dy_t
 *   dbeta = p d(p*beta),  dp = beta d(p*beta) - d dphi,  dd = -p dphi,  then through the sigmoids.
 * The backward-direction rows are the same computation on reversed time. */
#include "layers/ema.h"

#include <math.h>
#include <string.h>

#include "layers/act.h"
#include "trainer/base/check.h"
#include "trainer/base/range.h"

#if defined(__AVX512F__) || defined(__FMA__)
#include <immintrin.h>
#endif

#define VL EMA_LANES
#define NG_FWD 8 /* state rows per pass in forward: 8 independent FMA chains cover the FMA latency */
#define NG_BWD 4 /* in backward: 4 rows x (lam, G, X, P, h) + params fit the 32 vector registers */

/* EMA_LANES floats; aligned(4) so loads/stores from caller buffers need no alignment. */
typedef float vf __attribute__((vector_size(VL * sizeof(float)), aligned(4)));

static inline vf vld(const float *p) { vf v; memcpy(&v, p, sizeof v); return v; }
static inline void vst(float *p, vf v) { memcpy(p, &v, sizeof v); }
/* First w lanes from p, the rest 0 (w < VL only at the last channel block). */
static inline vf vld_part(const float *p, int w) {
  if (w == VL) return vld(p);
  vf v = {0};
  memcpy(&v, p, sizeof(float) * (size_t)w);
  return v;
}
static inline void vst_part(float *p, vf v, int w) {
  if (w == VL) vst(p, v);
  else memcpy(p, &v, sizeof(float) * (size_t)w);
}

/* a*b + c with one rounding. Explicit because ISO C mode (-std=c11) turns off FP contraction. */
static inline vf vfma(vf a, vf b, vf c) {
#if defined(__AVX512F__) && VL == 16
  return (vf)_mm512_fmadd_ps((__m512)a, (__m512)b, (__m512)c);
#elif defined(__FMA__) && VL == 8
  return (vf)_mm256_fmadd_ps((__m256)a, (__m256)b, (__m256)c);
#else
  return a * b + c;
#endif
}

/* sigmoid lane by lane with the project's vectorizable expf (layers/act.h, <= 2 ulp, NaN propagates);
 * the loop compiles to straight vector code. The scalar libm expf (~2 ns) would cost about as much
 * as a token's whole recurrence. */
static inline vf v_sigmoid(vf a) {
  float t[VL];
  memcpy(t, &a, sizeof t);
#pragma omp simd
  for (int j = 0; j < VL; j++) t[j] = act_sigmoidf(t[j]);
  memcpy(&a, t, sizeof t);
  return a;
}


static void check_sizes(int64_t B, int64_t L, int64_t D, int64_t N) {
  if (B < 1 || L < 1 || D < 1 || N < 1)
    DIE("ema: bad sizes B=%lld L=%lld D=%lld N=%lld (all must be >= 1)", (long long)B, (long long)L,
        (long long)D, (long long)N);
}

size_t ema_saved_floats(int64_t B, int64_t L, int64_t D, int64_t N, int bidir) {
  int64_t ndir = bidir ? 2 : 1, nc = (L + EMA_CHUNK - 1) / EMA_CHUNK, Dp = (int64_t)lv_round_up((size_t)D, (size_t)VL);
  return (size_t)(B * L * D + B * nc * ndir * N * Dp);
}

/* Scratch: params phiT, qT (ndir, N, Dp) each | acc (B, ndir, 3, N, Dp) per-batch partial sums
 * G = sum dy h~, X = sum lam~ x, P = sum lam~ h~_prev | lam (B, N, Dp) adjoint carried across
 * chunks | dom (B, Dp) partial domega | bidir only: dy (B, L, D), computed by the first direction's
 * pass and reused by the second (the silu' with its exp costs ~15% of the backward; the extra
 * store and load cost less). The forward pass uses only the params. */
size_t ema_scratch_floats(int64_t B, int64_t L, int64_t D, int64_t N, int bidir) {
  int64_t ndir = bidir ? 2 : 1, Dp = (int64_t)lv_round_up((size_t)D, (size_t)VL);
  return (size_t)(2 * ndir * N * Dp + B * ndir * 3 * N * Dp + B * N * Dp + B * Dp + (bidir ? B * L * D : 0));
}

void ema_coeffs(float *phiT, float *qT, const float *delta, const float *alpha, const float *beta,
                        const float *gamma, int64_t D, int64_t N, int64_t ndir, int64_t Dp) {
  const double s = 1.0 / sqrt((double)N);
#pragma omp parallel for schedule(static)
  for (int64_t r = 0; r < ndir * N; r++) {
    int64_t dir = r / N, n = r % N;
    for (int64_t c = 0; c < Dp; c++) {
      float phi = 0, q = 0;
      if (c < D) {
        int64_t i = (dir * D + c) * N + n;
        double p = 1 / (1 + exp(-(double)delta[i])), d = 1 / (1 + exp(-(double)alpha[i]));
        phi = (float)(1 - p * d);
        q = (float)(s * gamma[i] * p * beta[i]);
      }
      phiT[r * Dp + c] = phi;
      qT[r * Dp + c] = q;
    }
  }
}

/* Time index of step i of direction dir. */
static inline int64_t tmap(int dir, int64_t L, int64_t i) { return dir ? L - 1 - i : i; }

/* Forward recurrence of ng state rows over one chunk: h~ from hin (row stride Dp), adds sum q h~
 * into ybuf, writes the final state to hout (NULL after the last chunk). */
static inline __attribute__((always_inline)) void fwd_rows(
    int ng, const float *phi, const float *q, const float *hin, float *hout, int64_t Dp,
    const float *xbuf, float *ybuf, int64_t len) {
  vf h[NG_FWD], ph[NG_FWD], qq[NG_FWD];
  for (int g = 0; g < ng; g++) {
    h[g] = vld(hin + g * Dp);
    ph[g] = vld(phi + g * Dp);
    qq[g] = vld(q + g * Dp);
  }
  for (int64_t i = 0; i < len; i++) {
    vf xv = vld(xbuf + i * VL), ya = vld(ybuf + i * VL), yb = {0};
    for (int g = 0; g < ng; g++) {
      h[g] = vfma(ph[g], h[g], xv);
      if (g & 1) yb = vfma(qq[g], h[g], yb);
      else ya = vfma(qq[g], h[g], ya);
    }
    vst(ybuf + i * VL, ya + yb);
  }
  if (hout)
    for (int g = 0; g < ng; g++) vst(hout + g * Dp, h[g]);
}

/* One task: batch entry b, channels c0 .. c0+w-1, both directions. */
static void fwd_task(float *out, const float *x, const float *omega, float *pre, float *bnd,
                     const float *phiT, const float *qT, int64_t b, int64_t c0, int w,
                     int64_t L, int64_t D, int64_t N, int64_t ndir, int64_t Dp) {
  float xbuf[EMA_CHUNK * VL] __attribute__((aligned(64)));
  float ybuf[EMA_CHUNK * VL] __attribute__((aligned(64)));
  const int64_t nc = (L + EMA_CHUNK - 1) / EMA_CHUNK;
  vf om = vld_part(omega + c0, w);
  for (int dir = 0; dir < ndir; dir++) {
    const float *phi = phiT + dir * N * Dp + c0, *q = qT + dir * N * Dp + c0;
    for (int64_t k = 0; k < nc; k++) {
      const int64_t i0 = k * EMA_CHUNK, len = L - i0 < EMA_CHUNK ? L - i0 : EMA_CHUNK;
      float *hin = bnd + ((b * nc + k) * ndir + dir) * N * Dp + c0;
      float *hout = k + 1 < nc ? bnd + ((b * nc + k + 1) * ndir + dir) * N * Dp + c0 : NULL;
      if (k == 0)
        for (int64_t n = 0; n < N; n++) vst(hin + n * Dp, (vf){0});
      for (int64_t i = 0; i < len; i++) {
        vst(xbuf + i * VL, vld_part(x + (b * L + tmap(dir, L, i0 + i)) * D + c0, w));
        vst(ybuf + i * VL, (vf){0});
      }
      int64_t n = 0;
      for (; n + 8 <= N; n += 8)
        fwd_rows(8, phi + n * Dp, q + n * Dp, hin + n * Dp, hout ? hout + n * Dp : NULL, Dp, xbuf, ybuf, len);
      for (; n + 4 <= N; n += 4)
        fwd_rows(4, phi + n * Dp, q + n * Dp, hin + n * Dp, hout ? hout + n * Dp : NULL, Dp, xbuf, ybuf, len);
      for (; n < N; n++)
        fwd_rows(1, phi + n * Dp, q + n * Dp, hin + n * Dp, hout ? hout + n * Dp : NULL, Dp, xbuf, ybuf, len);
      for (int64_t i = 0; i < len; i++) {
        const int64_t row = (b * L + tmap(dir, L, i0 + i)) * D + c0;
        vf a = vld(ybuf + i * VL);
        a += dir == 0 ? om * vld(xbuf + i * VL) : vld_part(pre + row, w);
        vst_part(pre + row, a, w);
        if (dir == ndir - 1) vst_part(out + row, a * v_sigmoid(a), w);
      }
    }
  }
}

void ema_forward(float *out, const float *x, const float *delta, const float *alpha, const float *beta,
                 const float *gamma, const float *omega, float *saved, float *scratch,
                 int64_t B, int64_t L, int64_t D, int64_t N, int bidir) {
  check_sizes(B, L, D, N);
  const int64_t ndir = bidir ? 2 : 1, Dp = (int64_t)lv_round_up((size_t)D, (size_t)VL), nblk = Dp / VL;
  float *phiT = scratch, *qT = scratch + ndir * N * Dp;
  float *pre = saved, *bnd = saved + B * L * D;
  ema_coeffs(phiT, qT, delta, alpha, beta, gamma, D, N, ndir, Dp);
#pragma omp parallel for schedule(static)
  for (int64_t task = 0; task < B * nblk; task++) {
    int64_t b = task / nblk, c0 = task % nblk * VL;
    int w = (int)(D - c0 < VL ? D - c0 : VL);
    fwd_task(out, x, omega, pre, bnd, phiT, qT, b, c0, w, L, D, N, ndir, Dp);
  }
}

/* Backward of ng state rows over one chunk (len steps): recompute h~ from hin into hbuf
 * (row g at g*(EMA_CHUNK+1)*VL; entry 0 = hin, entry i+1 = state after step i), then run the adjoint
 * from the chunk's end to its start, carrying lam~ (row stride VL) across chunks and adding
 * the chunk's sums into G, X, P (row stride Dp) and sum_n q lam~ into dxbuf. */
static inline __attribute__((always_inline)) void bwd_rows(
    int ng, const float *phi, const float *q, const float *hin, float *lam, float *G, float *X, float *P,
    int64_t Dp, const float *xbuf, const float *dybuf, float *dxbuf, float *hbuf, int64_t len) {
  const int64_t hs = (EMA_CHUNK + 1) * VL;
  vf h[NG_BWD], ph[NG_BWD], qq[NG_BWD];
  for (int g = 0; g < ng; g++) {
    h[g] = vld(hin + g * Dp);
    ph[g] = vld(phi + g * Dp);
    qq[g] = vld(q + g * Dp);
    vst(hbuf + g * hs, h[g]);
  }
  for (int64_t i = 0; i < len; i++) {
    vf xv = vld(xbuf + i * VL);
    for (int g = 0; g < ng; g++) {
      h[g] = vfma(ph[g], h[g], xv);
      vst(hbuf + g * hs + (i + 1) * VL, h[g]);
    }
  }
  vf lm[NG_BWD], gs[NG_BWD], xs[NG_BWD], ps[NG_BWD]; /* h[g] = h~ after the chunk's last step */
  for (int g = 0; g < ng; g++) {
    lm[g] = vld(lam + g * VL);
    gs[g] = xs[g] = ps[g] = (vf){0};
  }
  for (int64_t i = len - 1; i >= 0; i--) {
    vf dyv = vld(dybuf + i * VL), xv = vld(xbuf + i * VL), dxv = vld(dxbuf + i * VL);
    for (int g = 0; g < ng; g++) {
      vf prev = vld(hbuf + g * hs + i * VL);
      lm[g] = vfma(ph[g], lm[g], dyv);
      gs[g] = vfma(dyv, h[g], gs[g]);
      xs[g] = vfma(lm[g], xv, xs[g]);
      ps[g] = vfma(lm[g], prev, ps[g]);
      dxv = vfma(qq[g], lm[g], dxv);
      h[g] = prev;
    }
    vst(dxbuf + i * VL, dxv);
  }
  for (int g = 0; g < ng; g++) {
    vst(lam + g * VL, lm[g]);
    vst(G + g * Dp, vld(G + g * Dp) + gs[g]);
    vst(X + g * Dp, vld(X + g * Dp) + xs[g]);
    vst(P + g * Dp, vld(P + g * Dp) + ps[g]);
  }
}

static void bwd_task(float *dx, float *acc, float *lamst, float *dom, float *dys, const float *dout,
                     const float *x, const float *omega, const float *pre, const float *bnd, const float *phiT,
                     const float *qT, int64_t b, int64_t c0, int w, int64_t L, int64_t D, int64_t N,
                     int64_t ndir, int64_t Dp) {
  float xbuf[EMA_CHUNK * VL] __attribute__((aligned(64)));
  float dybuf[EMA_CHUNK * VL] __attribute__((aligned(64)));
  float dxbuf[EMA_CHUNK * VL] __attribute__((aligned(64)));
  float hbuf[NG_BWD * (EMA_CHUNK + 1) * VL] __attribute__((aligned(64)));
  const int64_t nc = (L + EMA_CHUNK - 1) / EMA_CHUNK;
  const vf om = vld_part(omega + c0, w);
  vf domv = {0};
  float *lam = lamst + b * N * Dp + c0 / VL * N * VL; /* this task's (N, VL) block */
  for (int dir = 0; dir < ndir; dir++) {
    const float *phi = phiT + dir * N * Dp + c0, *q = qT + dir * N * Dp + c0;
    float *G = acc + (b * ndir + dir) * 3 * N * Dp + c0, *X = G + N * Dp, *P = X + N * Dp;
    for (int64_t n = 0; n < N; n++) {
      vst(lam + n * VL, (vf){0});
      vst(G + n * Dp, (vf){0});
      vst(X + n * Dp, (vf){0});
      vst(P + n * Dp, (vf){0});
    }
    for (int64_t k = nc - 1; k >= 0; k--) {
      const int64_t i0 = k * EMA_CHUNK, len = L - i0 < EMA_CHUNK ? L - i0 : EMA_CHUNK;
      const float *hin = bnd + ((b * nc + k) * ndir + dir) * N * Dp + c0;
      for (int64_t i = 0; i < len; i++) {
        const int64_t row = (b * L + tmap(dir, L, i0 + i)) * D + c0;
        vf dyv;
        if (dir == 0) {
          vf a = vld_part(pre + row, w), sg = v_sigmoid(a);
          dyv = vld_part(dout + row, w) * sg * (1.0f + a * (1.0f - sg)); /* silu'(a) */
          if (ndir == 2) vst_part(dys + row, dyv, w);
        } else {
          dyv = vld_part(dys + row, w);
        }
        vf xv = vld_part(x + row, w);
        vst(xbuf + i * VL, xv);
        vst(dybuf + i * VL, dyv);
        vst(dxbuf + i * VL, dir == 0 ? om * dyv : (vf){0});
        if (dir == 0) domv = vfma(dyv, xv, domv);
      }
      int64_t n = 0;
      for (; n + 4 <= N; n += 4)
        bwd_rows(4, phi + n * Dp, q + n * Dp, hin + n * Dp, lam + n * VL, G + n * Dp, X + n * Dp, P + n * Dp,
                 Dp, xbuf, dybuf, dxbuf, hbuf, len);
      for (; n < N; n++)
        bwd_rows(1, phi + n * Dp, q + n * Dp, hin + n * Dp, lam + n * VL, G + n * Dp, X + n * Dp, P + n * Dp,
                 Dp, xbuf, dybuf, dxbuf, hbuf, len);
      for (int64_t i = 0; i < len; i++) {
        float *d = dx + (b * L + tmap(dir, L, i0 + i)) * D + c0;
        vst_part(d, vld_part(d, w) + vld(dxbuf + i * VL), w);
      }
    }
  }
  vst(dom + b * Dp + c0, domv);
}

void ema_backward(float *dx, float *ddelta, float *dalpha, float *dbeta, float *dgamma, float *domega,
                  const float *dout, const float *x, const float *delta, const float *alpha,
                  const float *beta, const float *gamma, const float *omega, const float *saved,
                  float *scratch, int64_t B, int64_t L, int64_t D, int64_t N, int bidir) {
  check_sizes(B, L, D, N);
  const int64_t ndir = bidir ? 2 : 1, Dp = (int64_t)lv_round_up((size_t)D, (size_t)VL), nblk = Dp / VL;
  float *phiT = scratch, *qT = phiT + ndir * N * Dp, *acc = qT + ndir * N * Dp;
  float *lamst = acc + B * ndir * 3 * N * Dp, *dom = lamst + B * N * Dp, *dys = dom + B * Dp;
  const float *pre = saved, *bnd = saved + B * L * D;
  ema_coeffs(phiT, qT, delta, alpha, beta, gamma, D, N, ndir, Dp);
#pragma omp parallel for schedule(static)
  for (int64_t task = 0; task < B * nblk; task++) {
    int64_t b = task / nblk, c0 = task % nblk * VL;
    int w = (int)(D - c0 < VL ? D - c0 : VL);
    bwd_task(dx, acc, lamst, dom, dys, dout, x, omega, pre, bnd, phiT, qT, b, c0, w, L, D, N, ndir, Dp);
  }
  /* Parameter gradients: sum the per-batch partials in a fixed order (deterministic for any
   * thread count), in double, then the chain rule through q, phi and the sigmoids. */
  const double s = 1.0 / sqrt((double)N);
#pragma omp parallel for schedule(static)
  for (int64_t r = 0; r < ndir * D; r++) {
    const int64_t dir = r / D, c = r % D;
    for (int64_t n = 0; n < N; n++) {
      double Gs = 0, Xs = 0, Ps = 0;
      for (int64_t b = 0; b < B; b++) {
        const float *a = acc + (b * ndir + dir) * 3 * N * Dp + n * Dp + c;
        Gs += a[0];
        Xs += a[N * Dp];
        Ps += a[2 * N * Dp];
      }
      const int64_t i = r * N + n;
      double p = 1 / (1 + exp(-(double)delta[i])), d = 1 / (1 + exp(-(double)alpha[i]));
      double be = beta[i], sg = s * gamma[i], pb = p * be;
      double dpb = sg * Xs, dphi = sg * pb * Ps;
      double dp = be * dpb - d * dphi, dd = -p * dphi;
      dgamma[i] += (float)(s * pb * Gs);
      dbeta[i] += (float)(p * dpb);
      ddelta[i] += (float)(dp * p * (1 - p));
      dalpha[i] += (float)(dd * d * (1 - d));
    }
  }
  for (int64_t c = 0; c < D; c++) {
    double sum = 0;
    for (int64_t b = 0; b < B; b++) sum += dom[b * Dp + c];
    domega[c] += (float)sum;
  }
}

void ema_step(float *out, float *state, const float *x, const float *phiT, const float *qT, const float *omega,
              int64_t D, int64_t N) {
  for (int64_t c = 0; c < D; c++) out[c] = 0;
  for (int64_t n = 0; n < N; n++) {
    float *h = state + n * D;
    const float *ph = phiT + n * D, *q = qT + n * D;
#pragma omp simd
    for (int64_t c = 0; c < D; c++) {
      h[c] = fmaf(ph[c], h[c], x[c]);
      out[c] = fmaf(q[c], h[c], out[c]);
    }
  }
#pragma omp simd
  for (int64_t c = 0; c < D; c++) {
    const float a = out[c] + omega[c] * x[c];
    out[c] = a * act_sigmoidf(a);
  }
}
