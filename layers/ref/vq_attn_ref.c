/* Reference VQ attention in double: the dense O(L^2) definition, straight from the spec. Positions
 * t, j are within one sequence; nothing is stored between passes (each pass recomputes the logits). */
#include "layers/ref/vq_attn_ref.h"

#include <math.h>

typedef struct {
  const double *q, *k_hat, *v, *rpb, *cb;
  const int32_t *code;
  const uint8_t *m;
  int64_t L, C, Z, E;
  int dec, far;
} seq_ctx;

/* Does key j take part for query t (allowed and valid, and near unless far attention is on)?
 * Sets *near and, if it takes part, *bias_idx (near) and returns 1. */
static int pair(const seq_ctx *s, int64_t t, int64_t j, int *near, int64_t *bias_idx) {
  if (!s->m[j]) return 0;
  const int64_t ct = t / s->C, cj = j / s->C;
  if (s->dec) {
    if (j > t) return 0;
    *near = cj == ct || cj == ct - 1;
    *bias_idx = t - j;
  } else {
    *near = cj == ct;
    *bias_idx = j - t + s->C - 1;
  }
  return *near || s->far;
}

static double logit(const seq_ctx *s, int64_t t, int64_t j, int near, int64_t bi) {
  const double *key = near ? s->k_hat + j * s->Z : s->cb + (int64_t)s->code[j] * s->Z;
  double a = near ? s->rpb[bi] : 0.0;
  for (int64_t z = 0; z < s->Z; z++) a += s->q[t * s->Z + z] * key[z];
  return a;
}

/* Max and normalizer of row t; returns 0 when no key takes part. */
static int row_stats(const seq_ctx *s, int64_t t, double *M, double *Zn) {
  int any = 0, near;
  int64_t bi;
  double mx = -INFINITY, z = 0;
  for (int64_t j = 0; j < s->L; j++)
    if (pair(s, t, j, &near, &bi)) {
      double l = logit(s, t, j, near, bi);
      if (l > mx) mx = l;
      any = 1;
    }
  if (!any) return 0;
  for (int64_t j = 0; j < s->L; j++)
    if (pair(s, t, j, &near, &bi)) z += exp(logit(s, t, j, near, bi) - mx);
  *M = mx;
  *Zn = z;
  return 1;
}

static seq_ctx seq_of(int64_t b, const double *q, const double *k_hat, const int32_t *code, const double *v,
                      const uint8_t *m, const double *rpb, const double *cb, int64_t L, int64_t C, int64_t Z,
                      int64_t E, lv_mode mode, int far) {
  return (seq_ctx){.q = q + b * L * Z, .k_hat = k_hat + b * L * Z, .v = v + b * L * E, .rpb = rpb, .cb = cb,
                   .code = code + b * L, .m = m + b * L, .L = L, .C = C, .Z = Z, .E = E,
                   .dec = mode == LV_MODE_DECODER, .far = far};
}

void vq_attn_forward_ref(double *O, const double *q, const double *k_hat, const int32_t *code, const double *v,
                         const uint8_t *m, const double *rel_pos_bias, const double *cb, int64_t B, int64_t L,
                         int64_t C, int64_t Z, int64_t E, int64_t S, lv_mode mode, int far) {
  (void)S;
  for (int64_t b = 0; b < B; b++) {
    seq_ctx s = seq_of(b, q, k_hat, code, v, m, rel_pos_bias, cb, L, C, Z, E, mode, far);
    for (int64_t t = 0; t < L; t++) {
      double *o = O + (b * L + t) * E, M, Zn;
      for (int64_t e = 0; e < E; e++) o[e] = 0;
      if (!row_stats(&s, t, &M, &Zn)) continue;
      int near;
      int64_t bi;
      for (int64_t j = 0; j < L; j++)
        if (pair(&s, t, j, &near, &bi)) {
          double pr = exp(logit(&s, t, j, near, bi) - M) / Zn;
          for (int64_t e = 0; e < E; e++) o[e] += pr * s.v[j * E + e];
        }
    }
  }
}

void vq_attn_backward_ref(double *dq, double *dk, double *dv, double *drel_pos_bias, const double *dO,
                          const double *q, const double *k_hat, const int32_t *code, const double *v,
                          const uint8_t *m, const double *rel_pos_bias, const double *cb, int64_t B, int64_t L,
                          int64_t C, int64_t Z, int64_t E, int64_t S, lv_mode mode, int far) {
  (void)S;
  for (int64_t b = 0; b < B; b++) {
    seq_ctx s = seq_of(b, q, k_hat, code, v, m, rel_pos_bias, cb, L, C, Z, E, mode, far);
    const double *dOb = dO + b * L * E;
    double *dqb = dq + b * L * Z, *dkb = dk + b * L * Z, *dvb = dv + b * L * E;
    for (int64_t t = 0; t < L; t++) {
      double M, Zn;
      if (!row_stats(&s, t, &M, &Zn)) continue;
      const double *g = dOb + t * E;
      int near;
      int64_t bi;
      /* delta_t = dO_t . O_t = sum_j P_tj (dO_t . v_j) */
      double delta = 0;
      for (int64_t j = 0; j < L; j++)
        if (pair(&s, t, j, &near, &bi)) {
          double pr = exp(logit(&s, t, j, near, bi) - M) / Zn, gv = 0;
          for (int64_t e = 0; e < E; e++) gv += g[e] * s.v[j * E + e];
          delta += pr * gv;
        }
      for (int64_t j = 0; j < L; j++)
        if (pair(&s, t, j, &near, &bi)) {
          double pr = exp(logit(&s, t, j, near, bi) - M) / Zn, gv = 0;
          for (int64_t e = 0; e < E; e++) {
            gv += g[e] * s.v[j * E + e];
            dvb[j * E + e] += pr * g[e];
          }
          double dlg = pr * (gv - delta);
          const double *key = near ? s.k_hat + j * Z : cb + (int64_t)s.code[j] * Z;
          for (int64_t z = 0; z < Z; z++) dqb[t * Z + z] += dlg * key[z];
          if (near) { /* far pairs: the codebook is constant, nothing reaches k */
            for (int64_t z = 0; z < Z; z++) dkb[j * Z + z] += dlg * s.q[t * Z + z];
            drel_pos_bias[bi] += dlg;
          }
        }
    }
  }
}
