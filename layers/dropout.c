/* Inverted dropout with Philox masks (see dropout.h). The masks are generated 16 Philox blocks
 * (64 elements) at a time in structure-of-arrays form so the rounds vectorize; the words are the
 * same as trainer/rng.h's rng_u32 (checked by tests/test_dense_dropout.c against the reference). */
#include "layers/dropout.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "trainer/base/check.h"
#include "trainer/base/rng.h"

#define NB 16            /* Philox blocks per group */
#define GE (4 * NB)      /* elements per group */
#define CHUNK 4096       /* elements per work item (a multiple of GE) */

char *dropout_domain(char *buf, size_t cap, int layer, const char *site) {
  if (layer < 0) snprintf(buf, cap, "dropout/embed/%s", site);
  else snprintf(buf, cap, "dropout/%d/%s", layer, site);
  return buf;
}

/* Words of blocks blk0 .. blk0+NB-1 of stream s: w[word][block]. Same rounds as philox4x32_10. */
static void philox_group(uint32_t w[4][NB], const rng_stream *s, uint32_t blk0) {
  uint32_t c0[NB], c1[NB], c2[NB], c3[NB];
  for (int j = 0; j < NB; j++) {
    c0[j] = blk0 + (uint32_t)j;
    c1[j] = s->c1;
    c2[j] = s->c2;
    c3[j] = s->c3;
  }
  uint32_t k0 = s->key[0], k1 = s->key[1];
  for (int r = 0; r < 10; r++) {
    if (r > 0) {
      k0 += 0x9E3779B9u;
      k1 += 0xBB67AE85u;
    }
#pragma omp simd
    for (int j = 0; j < NB; j++) {
      uint64_t p0 = (uint64_t)0xD2511F53u * c0[j], p1 = (uint64_t)0xCD9E8D57u * c2[j];
      uint32_t n0 = (uint32_t)(p1 >> 32) ^ c1[j] ^ k0, n2 = (uint32_t)(p0 >> 32) ^ c3[j] ^ k1;
      c1[j] = (uint32_t)p1;
      c3[j] = (uint32_t)p0;
      c0[j] = n0;
      c2[j] = n2;
    }
  }
  memcpy(w[0], c0, sizeof c0);
  memcpy(w[1], c1, sizeof c1);
  memcpy(w[2], c2, sizeof c2);
  memcpy(w[3], c3, sizeof c3);
}

/* out[i] (+)= in[i] * mask[i] over one sample's n = L*W elements [e0, e1) (e0 a multiple of GE). */
static void apply(float *out, const float *in, int accumulate, const rng_stream *s, uint32_t thr, float scale,
                  int64_t e0, int64_t e1) {
  for (int64_t g = e0; g < e1; g += GE) {
    uint32_t w[4][NB];
    philox_group(w, s, (uint32_t)(g / 4));
    float mk[GE];
    for (int j = 0; j < NB; j++)
      for (int k = 0; k < 4; k++) mk[4 * j + k] = w[k][j] < thr ? 0.0f : scale;
    int64_t m = e1 - g < GE ? e1 - g : GE;
    if (accumulate) {
#pragma omp simd
      for (int64_t i = 0; i < m; i++) out[g + i] += in[g + i] * mk[i];
    } else {
#pragma omp simd
      for (int64_t i = 0; i < m; i++) out[g + i] = in[g + i] * mk[i];
    }
  }
}

static void run(float *out, const float *in, int accumulate, const dropout_cfg *c, int64_t B, int64_t L, int64_t W) {
  int64_t n = L * W;
  if (!(c->p >= 0.0f && c->p <= 1.0f)) DIE("dropout: probability %g is not in [0, 1]", (double)c->p);
  if (c->sample0 < 0 || c->sample0 + B - 1 > (int64_t)UINT32_MAX)
    DIE("dropout: global sample index %lld does not fit the 32-bit key", (long long)(c->sample0 + B - 1));
  if (n > ((int64_t)1 << 34)) DIE("dropout: %lld elements per sample exceed the 2^34 counter range", (long long)n);
  if (c->p == 0.0f) {
    if (!accumulate) {
      if (out != in) memcpy(out, in, sizeof(float) * (size_t)(B * n));
    } else {
#pragma omp parallel for simd schedule(static) if (B * n >= 32768)
      for (int64_t i = 0; i < B * n; i++) out[i] += in[i];
    }
    return;
  }
  /* dropped iff word < ceil(p 2^32) (== rng_uniform < p); p = 1: everything, scale 0. */
  uint32_t thr = 0;
  float scale = 0.0f;
  if (c->p < 1.0f) {
    thr = (uint32_t)ceil((double)c->p * 4294967296.0);
    scale = (float)(1.0 / (1.0 - (double)c->p));
  }
  int p_one = c->p >= 1.0f;
  int64_t per = (n + CHUNK - 1) / CHUNK, items = B * per;
#pragma omp parallel for schedule(static) if (B * n >= 32768)
  for (int64_t it = 0; it < items; it++) {
    int64_t b = it / per, e0 = (it % per) * CHUNK, e1 = e0 + CHUNK < n ? e0 + CHUNK : n;
    float *o = out + b * n;
    const float *x = in + b * n;
    if (p_one) {
      for (int64_t i = e0; i < e1; i++) o[i] = accumulate ? o[i] + x[i] * 0.0f : x[i] * 0.0f;
      continue;
    }
    rng_stream s = rng_make(c->seed, c->domain, c->step, (uint32_t)(c->sample0 + b));
    apply(o, x, accumulate, &s, thr, scale, e0, e1);
  }
}

void dropout_forward(float *y, const float *x, const dropout_cfg *cfg, int64_t B, int64_t L, int64_t W) {
  run(y, x, 0, cfg, B, L, W);
}

void dropout_backward(float *dx, const float *dy, const dropout_cfg *cfg, int64_t B, int64_t L, int64_t W) {
  run(dx, dy, 1, cfg, B, L, W);
}
