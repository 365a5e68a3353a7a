/* Vector quantization of keys: argmin over the codebook via one matmul, statistics, codebook update,
 * dead-code re-seeding (see vq.h). */
#include "layers/vq.h"

#include <math.h>
#include <string.h>

#include "trainer/base/check.h"

void vq_plan_init(vq_plan *p, const dnn_ctx *ctx, int64_t BT, int64_t Z, int64_t S) {
  if (BT < 1 || Z < 1 || S < 1)
    DIE("vq_plan_init: bad shape BT %lld Z %lld S %lld", (long long)BT, (long long)Z, (long long)S);
  memset(p, 0, sizeof *p);
  p->BT = BT;
  p->Z = Z;
  p->S = S;
  /* dots (BT, S) = k (BT, Z) @ Cb^T: Cb stored (S, Z), trans_b. f32 in every precision: the argmin
   * over these distances picks the codes (docs/layers.md, "Precision"). */
  mm_plan_init(&p->dots, ctx, (mm_desc){.batch = 1, .M = BT, .N = S, .K = Z, .trans_b = 1, .f32_only = 1});
}

void vq_plan_free(vq_plan *p) { mm_plan_free(&p->dots); }

size_t vq_scratch_floats(int64_t BT, int64_t S) { return (size_t)(BT * S + S); }

void vq_codebook(float *cb, const float *c_sum, const float *c_count, int64_t S, int64_t Z) {
  for (int64_t s = 0; s < S; s++) {
    float den = c_count[s] > 0.01f ? c_count[s] : 0.01f;
    for (int64_t z = 0; z < Z; z++) cb[s * Z + z] = c_sum[s * Z + z] / den;
  }
}

void vq_codebook_sqnorms(float *cbsq, const float *cb, int64_t S, int64_t Z) {
  for (int64_t s = 0; s < S; s++) {
    double a = 0;
    for (int64_t z = 0; z < Z; z++) a += (double)cb[s * Z + z] * cb[s * Z + z];
    cbsq[s] = (float)a;
  }
}

int32_t vq_argmin_row(float *d, const float *cbsq, int64_t S) {
  for (int64_t s = 0; s < S; s++) d[s] = cbsq[s] - 2.0f * d[s];
  float best = d[0];
  for (int64_t s = 1; s < S; s++) best = d[s] < best ? d[s] : best;
  int32_t bs = 0;
  while (bs < S - 1 && !(d[bs] == best)) bs++; /* no match (NaN key): the last code */
  return bs;
}

void vq_forward(const vq_plan *p, const dnn_ctx *ctx, int32_t *code, float *k_hat, double *commit_sum,
                double *valid_count, double *n_s, double *key_sums, const float *k, const uint8_t *m,
                const float *cb, float *scratch) {
  const int64_t BT = p->BT, Z = p->Z, S = p->S;
  float *dots = scratch, *cbsq = scratch + BT * S;
  vq_codebook_sqnorms(cbsq, cb, S, Z);
  mm_exec(&p->dots, ctx, dots, k, cb, NULL);

  /* Per row: argmin (ties keep the lowest s), k_hat, and the row's squared distance to its code, kept
   * in the first float of its (now consumed) dots row for the ordered sum below. The distances are
   * formed in place; the minimum is found branch-free, then its first index. */
#pragma omp parallel for schedule(static)
  for (int64_t t = 0; t < BT; t++) {
    float *dr = dots + t * S;
    const int32_t bs = vq_argmin_row(dr, cbsq, S);
    code[t] = bs;
    const float *c = cb + (int64_t)bs * Z, *kt = k + t * Z;
    float *kh = k_hat + t * Z;
    double lane[8] = {0}, dist = 0;
    int64_t z = 0;
    for (; z + 8 <= Z; z += 8)
      for (int l = 0; l < 8; l++) {
        const double e = (double)kt[z + l] - c[z + l];
        lane[l] += e * e;
      }
    for (; z < Z; z++) dist += ((double)kt[z] - c[z]) * ((double)kt[z] - c[z]);
    for (int l = 0; l < 8; l++) dist += lane[l];
    for (z = 0; z < Z; z++) kh[z] = c[z];
    dr[0] = (float)dist;
  }
  double cs = 0, cnt = 0;
  for (int64_t t = 0; t < BT; t++)
    if (m[t]) { cs += dots[t * S]; cnt += 1; }
  *commit_sum += cs;
  *valid_count += cnt;

  /* Per-code statistics. Counts: one ordered pass. Key sums: threads own column blocks and add the
   * valid tokens in order, so every sum has a fixed order and no two threads share an element. */
  for (int64_t t = 0; t < BT; t++)
    if (m[t]) n_s[code[t]] += 1;
  const int64_t zb = 16, nzb = (Z + zb - 1) / zb;
#pragma omp parallel for schedule(static)
  for (int64_t b = 0; b < nzb; b++) {
    const int64_t z0 = b * zb, z1 = z0 + zb < Z ? z0 + zb : Z;
    for (int64_t t = 0; t < BT; t++) {
      if (!m[t]) continue;
      double *ks = key_sums + (int64_t)code[t] * Z;
      const float *kt = k + t * Z;
      for (int64_t z = z0; z < z1; z++) ks[z] += kt[z];
    }
  }
}

void vq_backward(float *dk, double w, const float *k, const uint8_t *m, const float *cb, const int32_t *code,
                 int64_t BT, int64_t Z) {
  const float w2 = (float)(2.0 * w);
#pragma omp parallel for schedule(static)
  for (int64_t t = 0; t < BT; t++) {
    if (!m[t]) continue;
    const float *kt = k + t * Z, *c = cb + (int64_t)code[t] * Z;
    float *g = dk + t * Z;
    for (int64_t z = 0; z < Z; z++) g[z] += w2 * (kt[z] - c[z]);
  }
}

void vq_codebook_update(float *c_sum, float *c_count, const double *n_s, const double *key_sums, float decay,
                        int64_t S, int64_t Z) {
  const double g = decay, om = 1.0 - g;
  for (int64_t s = 0; s < S; s++) {
    c_count[s] = (float)(g * c_count[s] + om * n_s[s]);
    for (int64_t z = 0; z < Z; z++) c_sum[s * Z + z] = (float)(g * c_sum[s * Z + z] + om * key_sums[s * Z + z]);
  }
}

double vq_reseed_tau(double n_tokens, int64_t S) { return 0.01 * n_tokens / (double)S; }

int64_t vq_reseed_candidates(uint8_t *maybe, const float *c_count, float decay, double n_tokens, int64_t S) {
  const double tau = vq_reseed_tau(n_tokens, S);
  int64_t n = 0;
  for (int64_t s = 0; s < S; s++) {
    /* The same rounding as the update's first term: (float)(g c) <= (float)(g c + (1-g) n). */
    maybe[s] = (double)(float)((double)decay * c_count[s]) < tau;
    n += maybe[s];
  }
  return n;
}

int64_t vq_reseed_token(double u, int64_t n_tokens) {
  if (n_tokens < 1) DIE("vq_reseed_token: no valid tokens in the step (N_t = %lld)", (long long)n_tokens);
  int64_t j = (int64_t)floor(u * (double)n_tokens);
  if (j < 0) j = 0;
  if (j > n_tokens - 1) j = n_tokens - 1;
  return j;
}

int64_t vq_reseed(float *c_sum, float *c_count, uint8_t *reseeded, const double *keys, double n_tokens, int64_t S,
                  int64_t Z) {
  const double tau = vq_reseed_tau(n_tokens, S);
  int64_t n = 0;
  for (int64_t s = 0; s < S; s++) {
    int r = (double)c_count[s] < tau;
    if (reseeded) reseeded[s] = (uint8_t)r;
    if (!r) continue;
    n++;
    for (int64_t z = 0; z < Z; z++) c_sum[s * Z + z] = (float)(2.0 * tau * keys[s * Z + z]);
    c_count[s] = (float)(2.0 * tau);
  }
  return n;
}

void vq_usage(int64_t *in_use, double *perplexity, const double *n_s, int64_t S) {
  double tot = 0;
  int64_t u = 0;
  for (int64_t s = 0; s < S; s++) {
    tot += n_s[s];
    u += n_s[s] > 0;
  }
  *in_use = u;
  if (tot <= 0) { *perplexity = 0; return; }
  double h = 0;
  for (int64_t s = 0; s < S; s++)
    if (n_s[s] > 0) {
      double pr = n_s[s] / tot;
      h -= pr * log(pr);
    }
  *perplexity = exp(h);
}
