/* VQ attention benchmark (not a test): forward + backward time per token for the encoder and the
 * decoder at L = 1K, 4K, 16K with the same number of tokens per batch (B*L = 16K), C = 128, Z = 64,
 * E = 256, S = 64, far attention on. The cost is O(L (C + S)) per sequence, so time per token should
 * stay flat in L. Also times vq_forward (the key quantization) on the same tokens.
 * Usage: bench_vq_attn [tokens (default 16384)] [repeats (default 5)] */
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>

#include "layers/vq.h"
#include "layers/vq_attn.h"
#include "trainer/base/check.h"

static float *rnd(int64_t n, unsigned seed, float scale) {
  float *x = malloc(sizeof(float) * (size_t)n);
  CHECK_ALLOC(x);
  uint64_t s = seed * 0x9E3779B97F4A7C15ull + 1;
  for (int64_t i = 0; i < n; i++) {
    s ^= s << 13; s ^= s >> 7; s ^= s << 17;
    x[i] = (float)(((double)(s >> 11) * 0x1p-53 * 2 - 1) * scale);
  }
  return x;
}

int main(int argc, char **argv) {
  const int64_t T = argc > 1 ? atoll(argv[1]) : 16384, reps = argc > 2 ? atoll(argv[2]) : 5;
  const int64_t C = 128, Z = 64, E = 256, S = 64;
  const int64_t Ls[3] = {1024, 4096, 16384};
  dnn_ctx ctx;
  dnn_ctx_init(&ctx);
  printf("vq_attn bench: %lld tokens per batch, C=%lld Z=%lld E=%lld S=%lld, far on, %d threads, %lld reps\n",
         (long long)T, (long long)C, (long long)Z, (long long)E, (long long)S, omp_get_max_threads(),
         (long long)reps);
  float *q = rnd(T * Z, 1, 0.6f), *k = rnd(T * Z, 2, 0.6f), *v = rnd(T * E, 3, 1.0f), *dO = rnd(T * E, 4, 1.0f);
  float *cb = rnd(S * Z, 5, 0.6f), *rpb = rnd(2 * C, 6, 0.02f);
  float *kh = malloc(sizeof(float) * T * Z), *O = malloc(sizeof(float) * T * E);
  float *dq = calloc(T * Z, sizeof(float)), *dk = calloc(T * Z, sizeof(float)), *dv = calloc(T * E, sizeof(float));
  float *drpb = calloc(2 * C, sizeof(float));
  double *ns = calloc(S, sizeof(double)), *ks = calloc(S * Z, sizeof(double));
  int32_t *code = malloc(sizeof(int32_t) * T);
  uint8_t *m = malloc((size_t)T);
  for (int64_t t = 0; t < T; t++) m[t] = 1;

  /* Quantize the keys once (also times vq_forward). */
  vq_plan vp;
  vq_plan_init(&vp, &ctx, T, Z, S);
  float *vsc = malloc(sizeof(float) * vq_scratch_floats(T, S));
  double cs = 0, cnt = 0;
  vq_forward(&vp, &ctx, code, kh, &cs, &cnt, ns, ks, k, m, cb, vsc); /* warm-up */
  double t0 = omp_get_wtime();
  for (int64_t r = 0; r < reps; r++) vq_forward(&vp, &ctx, code, kh, &cs, &cnt, ns, ks, k, m, cb, vsc);
  double tv = (omp_get_wtime() - t0) / reps;
  printf("vq_forward: %.3f ms per batch, %.1f ns/token\n", tv * 1e3, tv / T * 1e9);
  vq_plan_free(&vp);
  free(vsc);

  printf("%-8s %7s %5s %12s %12s %12s %10s\n", "mode", "L", "B", "fwd ns/tok", "bwd ns/tok", "f+b ns/tok",
         "GFLOP/s");
  for (int mode = 0; mode < 2; mode++)
    for (int li = 0; li < 3; li++) {
      const int64_t L = Ls[li];
      if (T % L) continue;
      const int64_t B = T / L;
      vq_attn_plan p;
      vq_attn_plan_init(&p, &ctx, B, L, C, Z, E, S, (lv_mode)mode);
      float *sc = malloc(sizeof(float) * vq_attn_scratch_floats(B, L, C, E, S, (lv_mode)mode));
      float *saved = malloc(sizeof(float) * vq_attn_saved_floats(B, L));
      CHECK_ALLOC(sc);
      /* warm-up, then timed repeats */
      vq_attn_forward(&p, &ctx, O, saved, q, kh, code, v, m, rpb, cb, sc, 1);
      vq_attn_backward(&p, &ctx, dq, dk, dv, drpb, dO, q, kh, code, v, m, rpb, cb, O, saved, sc, 1);
      double tf = 0, tb = 0;
      for (int64_t r = 0; r < reps; r++) {
        double a = omp_get_wtime();
        vq_attn_forward(&p, &ctx, O, saved, q, kh, code, v, m, rpb, cb, sc, 1);
        double b = omp_get_wtime();
        vq_attn_backward(&p, &ctx, dq, dk, dv, drpb, dO, q, kh, code, v, m, rpb, cb, O, saved, sc, 1);
        tb += omp_get_wtime() - b;
        tf += b - a;
      }
      tf /= reps;
      tb /= reps;
      double fl = vq_attn_forward_flops(&p, 1) + vq_attn_backward_flops(&p, 1);
      printf("%-8s %7lld %5lld %12.1f %12.1f %12.1f %10.1f\n", mode ? "decoder" : "encoder", (long long)L,
             (long long)B, tf / T * 1e9, tb / T * 1e9, (tf + tb) / T * 1e9, fl / (tf + tb) * 1e-9);
      vq_attn_plan_free(&p);
      free(sc);
      free(saved);
    }
  double chk = 0;
  for (int64_t i = 0; i < T * E; i++) chk += O[i];
  printf("(checksum %.6g)\n", chk);
  free(q); free(k); free(v); free(dO); free(cb); free(rpb); free(kh); free(O); free(dq); free(dk); free(dv);
  free(drpb); free(ns); free(ks); free(code); free(m);
  dnn_ctx_free(&ctx);
  return 0;
}
