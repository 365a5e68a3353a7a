/* VQ attention, one decoder query at a time over a fixed-size state (see vq_attn.h, "one query at a
 * time"). Plain loops: one query is (2C + S) x E multiply-adds. */
#include <math.h>
#include <string.h>

#include "layers/vq_attn.h"
#include "layers/vq_attn_internal.h"
#include "trainer/base/check.h"

static size_t up16(size_t n) { return (n + 15) & ~(size_t)15; }

size_t vq_attn_step_state_floats(int64_t C, int64_t E, int64_t S) {
  return up16((size_t)(2 * C)) + up16((size_t)(2 * C * E)) + up16((size_t)(2 * S * E)) + up16((size_t)(2 * S)) +
         up16((size_t)(S * E));
}

/* qc (S) | e (S) far weights | lg (2C) near logits | w (S, E) and wc (S) one chunk's value sums and counts */
size_t vq_attn_step_scratch_floats(int64_t C, int64_t E, int64_t S) {
  return 2 * up16((size_t)S) + up16((size_t)(2 * C)) + up16((size_t)(S * E)) + up16((size_t)S);
}

void vq_attn_step_init(vq_attn_step_state *st, float *base, int64_t C, int64_t Z, int64_t E, int64_t S) {
  if (C < 1 || Z < 1 || E < 1 || S < 1)
    DIE("vq_attn_step_init: bad sizes C %lld Z %lld E %lld S %lld", (long long)C, (long long)Z, (long long)E,
        (long long)S);
  memset(base, 0, sizeof(float) * vq_attn_step_state_floats(C, E, S));
  st->C = C; st->Z = Z; st->E = E; st->S = S;
  size_t o = 0;
  st->code = (int32_t *)(void *)(base + o); o += up16((size_t)(2 * C));
  st->v = base + o; o += up16((size_t)(2 * C * E));
  st->u = (double *)(void *)(base + o); o += up16((size_t)(2 * S * E));
  st->cnt = (double *)(void *)(base + o); o += up16((size_t)(2 * S));
  st->uf = base + o;
}

/* Chunk n-2 (ring slots from `slot0`, C of them) leaves the ring: its per-chunk float sums go into
 * the far sums in double, and uf is refreshed. */
static void fold_chunk(vq_attn_step_state *st, int64_t slot0, float *w, float *wc) {
  const int64_t C = st->C, E = st->E, S = st->S;
  memset(w, 0, sizeof(float) * (size_t)(S * E));
  memset(wc, 0, sizeof(float) * (size_t)S);
  for (int64_t j = slot0; j < slot0 + C; j++) {
    const int64_t s = st->code[j];
    const float *vj = st->v + j * E;
    float *ws = w + s * E;
    wc[s] += 1;
#pragma omp simd
    for (int64_t e = 0; e < E; e++) ws[e] += vj[e];
  }
  for (int64_t s = 0; s < S; s++) {
    if (wc[s] == 0) continue;
    st->cnt[s] += wc[s];
    double *us = st->u + s * E;
    float *ufs = st->uf + s * E;
    const float *ws = w + s * E;
    for (int64_t e = 0; e < E; e++) {
      us[e] += ws[e];
      ufs[e] = (float)us[e];
    }
  }
}

void vq_attn_step(vq_attn_step_state *st, float *O, int64_t t, const float *q, int32_t code, const float *v,
                  const float *rpb, const float *cb, float *scratch, int far) {
  const int64_t C = st->C, Z = st->Z, E = st->E, S = st->S, n = t / C, i = t % C;
  float *qc = scratch, *es = scratch + up16((size_t)S), *lg = es + up16((size_t)S);
  float *w = lg + up16((size_t)(2 * C)), *wc = w + up16((size_t)(S * E));
  if (far && i == 0 && n >= 2) fold_chunk(st, (n % 2) * C, w, wc);
  const int64_t slot_t = t % (2 * C);
  st->code[slot_t] = code;
  memcpy(st->v + slot_t * E, v, sizeof(float) * (size_t)E);
  /* q . Cb_s for every code: the near logits' dot products and the far logits. */
  for (int64_t s = 0; s < S; s++) qc[s] = (float)vqa_dot(q, cb + s * Z, Z);
  /* Near keys j = j0 .. t: chunk n-1 (if any) and chunk n up to t; logit q . Cb[code_j] + bias[t - j]. */
  const int64_t j0 = n > 0 ? (n - 1) * C : 0, nn = t - j0 + 1;
  float M = -INFINITY;
  int nan = 0;
  for (int64_t a = 0; a < nn; a++) {
    const int64_t j = j0 + a;
    lg[a] = qc[st->code[j % (2 * C)]] + rpb[t - j];
    M = lg[a] > M ? lg[a] : M;
    nan |= lg[a] != lg[a];
  }
  int any_far = 0;
  if (far)
    for (int64_t s = 0; s < S; s++)
      if (st->cnt[s] > 0) {
        any_far = 1;
        M = qc[s] > M ? qc[s] : M;
        nan |= qc[s] != qc[s];
      }
  if (nan) { /* a NaN logit: a NaN output, as the batched forward gives */
    for (int64_t e = 0; e < E; e++) O[e] = NAN;
    return;
  }
  double z = 0;
  for (int64_t a = 0; a < nn; a++) {
    lg[a] = vqa_exp(lg[a] - M);
    z += lg[a];
  }
  if (any_far)
    for (int64_t s = 0; s < S; s++) {
      es[s] = st->cnt[s] > 0 ? vqa_exp(qc[s] - M) : 0.0f;
      z += (double)es[s] * st->cnt[s];
    }
  const float inv = 1.0f / (float)z;
  for (int64_t e = 0; e < E; e++) O[e] = 0;
  for (int64_t a = 0; a < nn; a++) {
    const float p = lg[a] * inv;
    const float *vj = st->v + ((j0 + a) % (2 * C)) * E;
#pragma omp simd
    for (int64_t e = 0; e < E; e++) O[e] += p * vj[e];
  }
  if (any_far)
    for (int64_t s = 0; s < S; s++) {
      if (st->cnt[s] == 0) continue;
      const float r = es[s] * inv;
      const float *us = st->uf + s * E;
#pragma omp simd
      for (int64_t e = 0; e < E; e++) O[e] += r * us[e];
    }
}
