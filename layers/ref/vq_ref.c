/* Reference VQ in double. */
#include "layers/ref/vq_ref.h"

void vq_codebook_ref(double *cb, const double *c_sum, const double *c_count, int64_t S, int64_t Z) {
  for (int64_t s = 0; s < S; s++) {
    double den = c_count[s] > 0.01 ? c_count[s] : 0.01;
    for (int64_t z = 0; z < Z; z++) cb[s * Z + z] = c_sum[s * Z + z] / den;
  }
}

void vq_forward_ref(int32_t *code, double *k_hat, double *commit_sum, double *valid_count, double *n_s,
                    double *key_sums, const double *k, const uint8_t *m, const double *cb, int64_t BT, int64_t Z,
                    int64_t S) {
  for (int64_t t = 0; t < BT; t++) {
    const double *kt = k + t * Z;
    double best = 0;
    int32_t bs = 0;
    for (int64_t s = 0; s < S; s++) {
      double sq = 0, dot = 0;
      for (int64_t z = 0; z < Z; z++) {
        sq += cb[s * Z + z] * cb[s * Z + z];
        dot += kt[z] * cb[s * Z + z];
      }
      double d = sq - 2 * dot;
      if (s == 0 || d < best) { best = d; bs = (int32_t)s; }
    }
    code[t] = bs;
    double dist = 0;
    for (int64_t z = 0; z < Z; z++) {
      k_hat[t * Z + z] = cb[bs * Z + z];
      double e = kt[z] - cb[bs * Z + z];
      dist += e * e;
    }
    if (!m[t]) continue;
    *commit_sum += dist;
    *valid_count += 1;
    n_s[bs] += 1;
    for (int64_t z = 0; z < Z; z++) key_sums[bs * Z + z] += kt[z];
  }
}

void vq_backward_ref(double *dk, double w, const double *k, const uint8_t *m, const double *cb, const int32_t *code,
                     int64_t BT, int64_t Z) {
  for (int64_t t = 0; t < BT; t++) {
    if (!m[t]) continue;
    for (int64_t z = 0; z < Z; z++) dk[t * Z + z] += w * 2 * (k[t * Z + z] - cb[(int64_t)code[t] * Z + z]);
  }
}
