/* Encoder classification head and LM head (see head.h). */
#include "layers/head.h"

#include <string.h>

#include "trainer/base/check.h"

#define CB 64

void head_plan_init(head_plan *p, const dnn_ctx *ctx, int64_t B, int64_t L, int64_t D, int64_t K) {
  memset(p, 0, sizeof *p);
  p->B = B;
  p->L = L;
  p->D = D;
  p->K = K;
  linear_plan_init(&p->dense, ctx, (linear_desc){.rows = B, .in = D, .out = D, .bias = 1, .act = MM_ACT_GELU_ERF});
  linear_plan_init(&p->out, ctx, (linear_desc){.rows = B, .in = D, .out = K, .bias = 1});
}

void head_plan_free(head_plan *p) {
  linear_plan_free(&p->dense);
  linear_plan_free(&p->out);
}

size_t head_saved_floats(int64_t B, int64_t D) { return (size_t)(3 * B * D + B); }
size_t head_scratch_floats(int64_t B, int64_t D) { return (size_t)(3 * B * D); }

/* sum_t m_bt of sequence b; dies on an empty sequence. */
static double count(const float *m, int64_t b, int64_t L) {
  double c = 0;
  for (int64_t t = 0; t < L; t++) c += m[b * L + t];
  if (!(c > 0)) DIE("head: sequence %lld of the batch has no valid token (mask sum %g)", (long long)b, c);
  return c;
}

void head_forward(const head_plan *p, const dnn_ctx *ctx, float *logits, const float *x, const float *m,
                  const float *dense_w, const float *dense_b, const float *out_w, const float *out_b, float *saved) {
  int64_t B = p->B, L = p->L, D = p->D;
  float *pooled = saved, *pre = saved + B * D, *hid = saved + 2 * B * D, *cnt = saved + 3 * B * D;
  for (int64_t b = 0; b < B; b++) cnt[b] = (float)count(m, b, L);
  int64_t nb = (D + CB - 1) / CB;
  /* Threads over (sequence, 64-column block); positions summed in order in double. */
#pragma omp parallel for schedule(static) if (B * L * D >= 32768)
  for (int64_t it = 0; it < B * nb; it++) {
    int64_t b = it / nb, c0 = (it % nb) * CB, nc = D - c0 < CB ? D - c0 : CB;
    double acc[CB] = {0};
    for (int64_t t = 0; t < L; t++) {
      const float *xr = x + (b * L + t) * D + c0;
      double mt = m[b * L + t];
#pragma omp simd
      for (int64_t j = 0; j < nc; j++) acc[j] += mt * xr[j];
    }
    for (int64_t j = 0; j < nc; j++) pooled[b * D + c0 + j] = (float)(acc[j] / cnt[b]);
  }
  linear_forward(&p->dense, ctx, hid, pooled, dense_w, dense_b, pre);
  linear_forward(&p->out, ctx, logits, hid, out_w, out_b, NULL);
}

void head_backward(const head_plan *p, const dnn_ctx *ctx, float *dx, float *d_dense_w, float *d_dense_b,
                   float *d_out_w, float *d_out_b, const float *dlogits, const float *m, const float *dense_w,
                   const float *out_w, const float *saved, float *scratch) {
  int64_t B = p->B, L = p->L, D = p->D;
  const float *pooled = saved, *pre = saved + B * D, *hid = saved + 2 * B * D, *cnt = saved + 3 * B * D;
  float *dhid = scratch, *dpooled = scratch + B * D, *dpre = scratch + 2 * B * D;
  memset(dhid, 0, sizeof(float) * (size_t)(2 * B * D));
  linear_backward(&p->out, ctx, dhid, d_out_w, d_out_b, dlogits, hid, out_w, NULL, NULL);
  linear_backward(&p->dense, ctx, dpooled, d_dense_w, d_dense_b, dhid, pooled, dense_w, pre, dpre);
  if (!dx) return;
#pragma omp parallel for schedule(static) if (B * L * D >= 32768)
  for (int64_t r = 0; r < B * L; r++) {
    int64_t b = r / L;
    float w = m[r] / cnt[b];
    const float *g = dpooled + b * D;
    float *dr = dx + r * D;
#pragma omp simd
    for (int64_t j = 0; j < D; j++) dr[j] += w * g[j];
  }
}

void lm_head_plan_init(lm_head_plan *p, const dnn_ctx *ctx, int64_t rows, int64_t D, int64_t V) {
  memset(p, 0, sizeof *p);
  p->rows = rows;
  p->D = D;
  p->V = V;
  linear_plan_init(&p->lin, ctx, (linear_desc){.rows = rows, .in = D, .out = V});
}

void lm_head_plan_free(lm_head_plan *p) { linear_plan_free(&p->lin); }

void lm_head_forward(const lm_head_plan *p, const dnn_ctx *ctx, float *logits, const float *x, const float *E) {
  linear_forward(&p->lin, ctx, logits, x, E, NULL, NULL);
}

void lm_head_backward(const lm_head_plan *p, const dnn_ctx *ctx, float *dx, float *dE, const float *dlogits,
                      const float *x, const float *E) {
  linear_backward(&p->lin, ctx, dx, dE, NULL, dlogits, x, E, NULL, NULL);
}
