/* EMA forward + backward timing (not a ctest test: timings flake). Prints ms per call, ns per
 * state update (one (token, row of D', n) step), and the effective bandwidth of the compulsory
 * traffic. Shapes keep B*L fixed, so the time per token must stay flat in L.
 * Usage: [OMP_WAIT_POLICY=passive] bench_ema [reps]   (threads: OMP_NUM_THREADS) */
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "layers/ema.h"

static double clock_s(clockid_t id) {
  struct timespec ts;
  clock_gettime(id, &ts);
  return ts.tv_sec + 1e-9 * ts.tv_nsec;
}

static float *alloc_fill(size_t n, unsigned seed, float scale, float offset) {
  float *p = aligned_alloc(64, (n * sizeof(float) + 63) / 64 * 64);
  if (!p) { fprintf(stderr, "bench_ema: out of memory\n"); exit(1); }
  for (size_t i = 0; i < n; i++) {
    seed = seed * 1664525u + 1013904223u;
    p[i] = offset + scale * (float)((seed >> 8) * 0x1p-24 - 0.5);
  }
  return p;
}

static void run(int64_t B, int64_t L, int64_t D, int64_t N, int bidir, int reps) {
  const int64_t Dr = (bidir ? 2 : 1) * D, P = Dr * N, BLD = B * L * D;
  float *x = alloc_fill(BLD, 1, 2, 0), *dout = alloc_fill(BLD, 2, 2, 0), *out = alloc_fill(BLD, 3, 0, 0);
  float *dx = alloc_fill(BLD, 4, 0, 0);
  float *delta = alloc_fill(P, 5, 0.8f, 0), *alpha = alloc_fill(P, 6, 0.8f, 0), *beta = alloc_fill(P, 7, 2, 0);
  float *gamma = alloc_fill(P, 8, 2, 0), *omega = alloc_fill(D, 9, 2, 0), *grads = alloc_fill(4 * P + D, 10, 0, 0);
  size_t ns = ema_saved_floats(B, L, D, N, bidir), nk = ema_scratch_floats(B, L, D, N, bidir);
  float *saved = alloc_fill(ns, 11, 0, 0), *scratch = alloc_fill(nk, 12, 0, 0);
  /* best of reps (after one warm-up call): wall time, and process CPU time / threads, which on a
   * shared machine is close to the wall time the call would take alone (run with
   * OMP_WAIT_POLICY=passive so that waiting threads sleep instead of spinning). */
  const int thr = omp_get_max_threads();
  double tf = 1e30, tb = 1e30, cf = 1e30, cb = 1e30;
  for (int r = 0; r <= reps; r++) {
    double t0 = clock_s(CLOCK_MONOTONIC), c0 = clock_s(CLOCK_PROCESS_CPUTIME_ID);
    ema_forward(out, x, delta, alpha, beta, gamma, omega, saved, scratch, B, L, D, N, bidir);
    double t1 = clock_s(CLOCK_MONOTONIC), c1 = clock_s(CLOCK_PROCESS_CPUTIME_ID);
    ema_backward(dx, grads, grads + P, grads + 2 * P, grads + 3 * P, grads + 4 * P, dout, x, delta, alpha, beta,
                 gamma, omega, saved, scratch, B, L, D, N, bidir);
    double t2 = clock_s(CLOCK_MONOTONIC), c2 = clock_s(CLOCK_PROCESS_CPUTIME_ID);
    if (r > 0) {
      if (t1 - t0 < tf) tf = t1 - t0;
      if (t2 - t1 < tb) tb = t2 - t1;
      if ((c1 - c0) / thr < cf) cf = (c1 - c0) / thr;
      if ((c2 - c1) / thr < cb) cb = (c2 - c1) / thr;
    }
  }
  /* compulsory traffic, floats: fwd reads x, writes out + pre (+ boundary states);
   * bwd reads dout, x, pre (+ boundaries), reads and writes dx. */
  const double bnd = (double)(ns - (size_t)BLD), upd = (double)B * L * Dr * N;
  const double bytes_f = 4 * (3.0 * BLD + bnd), bytes_b = 4 * (5.0 * BLD + bnd);
  printf("B=%-3lld L=%-6lld D=%lld N=%lld %s  fwd %6.3f ms (cpu/thread %6.3f) %5.1f ns/token %6.4f core-ns/upd"
         " %4.1f GB/s | bwd %6.3f ms (cpu/thread %6.3f) %5.1f ns/token %6.4f core-ns/upd %4.1f GB/s"
         " | saved %.1f MB\n",
         (long long)B, (long long)L, (long long)D, (long long)N, bidir ? "enc" : "dec",
         tf * 1e3, cf * 1e3, tf * 1e9 / ((double)B * L), tf * 1e9 * thr / upd, bytes_f / tf * 1e-9,
         tb * 1e3, cb * 1e3, tb * 1e9 / ((double)B * L), tb * 1e9 * thr / upd, bytes_b / tb * 1e-9, 4.0 * ns / 1e6);
  free(x); free(dout); free(out); free(dx); free(delta); free(alpha); free(beta); free(gamma); free(omega);
  free(grads); free(saved); free(scratch);
}

int main(int argc, char **argv) {
  int reps = argc > 1 ? atoi(argv[1]) : 5;
  printf("bench_ema: %d threads, best of %d reps after a warm-up. ns/token: wall time per token (all D\n"
         "channels); core-ns/upd: time x threads per state update (one token, one of the D' rows, one n);\n"
         "GB/s: compulsory traffic (fwd: x, out, pre, saved states; bwd: dout, x, pre, saved states, dx r+w)\n",
         omp_get_max_threads(), reps);
  run(4, 4096, 128, 16, 1, reps);
  run(16, 1024, 128, 16, 1, reps);
  run(1, 16384, 128, 16, 1, reps);
  run(4, 4096, 128, 16, 0, reps);
  return 0;
}
