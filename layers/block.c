/* One LongVQ layer (spec: "Forward pass", mixer + feed-forward), forward and backward, composed from
 * the layers in layers/. Activations live in the model's arena (model_internal.h); shapes are rows of
 * tokens: BT = B*L rows, M = 2D+Z+E columns of mx_proj's output base = [u | z | r | hx]. */
#include <math.h>
#include <string.h>

#include "layers/act.h"
#include "layers/dropout.h"
#include "layers/ema.h"
#include "layers/gate.h"
#include "layers/model_internal.h"
#include "layers/norm.h"

#define P_(off) (params + (off))
#define G_(off) (grads + (off))
#define OPT(off) ((off) == SIZE_MAX ? NULL : params + (off))
#define GOPT(off) ((off) == SIZE_MAX ? NULL : grads + (off))

static dropout_cfg drop_cfg(char *dom, size_t cap, const lv_fwd_opts *o, const lv_batch *b, int layer,
                            const char *site, int hidden) {
  dropout_cfg c;
  c.p = o->training ? (hidden ? o->hidden_dropout : o->dropout) : 0.0f;
  c.seed = o->seed;
  c.domain = dropout_domain(dom, cap, layer, site);
  c.step = o->step;
  c.sample0 = b->sample0;
  return c;
}

/* y (rows, W) = x * m (per-row 0/1 mask). */
static void mul_mask(float *y, const float *x, const float *m, int64_t rows, int64_t W) {
#pragma omp parallel for schedule(static)
  for (int64_t t = 0; t < rows; t++)
    for (int64_t c = 0; c < W; c++) y[t * W + c] = x[t * W + c] * m[t];
}

/* y += x * m. */
static void add_mul_mask(float *y, const float *x, const float *m, int64_t rows, int64_t W) {
#pragma omp parallel for schedule(static)
  for (int64_t t = 0; t < rows; t++)
    for (int64_t c = 0; c < W; c++) y[t * W + c] += x[t * W + c] * m[t];
}

void lv_zero_floats(float *p, size_t n) {
  enum { PIECES = 64 }; /* page-sized or larger pieces, a static split: each thread zeroes its own */
#pragma omp parallel for schedule(static) if (n >= ((size_t)1 << 16))
  for (int c = 0; c < PIECES; c++) {
    size_t lo = n * (size_t)c / PIECES, hi = n * (size_t)(c + 1) / PIECES;
    memset(p + lo, 0, sizeof(float) * (hi - lo));
  }
}

static void add_into(float *y, const float *x, int64_t n) {
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; i++) y[i] += x[i];
}

void lv_block_forward(lv_model *m, int i, const float *params, const lv_batch *b, const lv_fwd_opts *o,
                      lv_fwd_stats *st, double *n_s, double *key_sums, float *x_next) {
  const lv_dims *d = &m->d;
  const lv_layer_offsets *off = &m->lay->layer[i];
  lv_layer_act *A = &m->la[i];
  const int64_t BT = m->BT, D = d->D, Z = d->Z, E = d->E, F = d->F, M = m->M;
  const norm_kind nk = d->norm;
  const float *cb = m->cb + (size_t)i * (size_t)(d->S * Z);
  char dom[64];
  dropout_cfg dc;

  if (d->prenorm) norm_forward(nk, A->xn, A->x, P_(off->mnorm_w), OPT(off->mnorm_b), A->mn_saved, BT, D);
  mul_mask(A->xm, A->xn, m->mask_f, BT, D);
  /* v = hdrop(silu(v_proj(xn))) */
  linear_forward(&m->v_proj, m->ctx, A->v_pre, A->xn, P_(off->v_w), P_(off->v_b), NULL);
  silu_forward(A->v, A->v_pre, BT * E);
  dc = drop_cfg(dom, sizeof dom, o, b, i, DROPOUT_SITE_V, 1);
  dropout_forward(A->v, A->v, &dc, m->B, m->L, E);
  /* mx = dropout(EMA(xn * m)) */
  ema_forward(A->mx, A->xm, P_(off->delta), P_(off->alpha), P_(off->beta), P_(off->gamma), P_(off->omega),
              A->ema_saved, m->scratch, m->B, m->L, D, d->N, !d->decoder);
  dc = drop_cfg(dom, sizeof dom, o, b, i, DROPOUT_SITE_MX, 0);
  dropout_forward(A->mx, A->mx, &dc, m->B, m->L, D);
  /* base = mx_proj(mx) = [u | z | r | hx] */
  linear_forward(&m->mx_proj, m->ctx, A->base, A->mx, P_(off->mx_w), P_(off->mx_b), NULL);
  act_forward_2d(MM_ACT_SIGMOID, A->u, D, A->base, M, BT, D);
  act_forward_2d(MM_ACT_SILU, A->zz, Z, A->base + D, M, BT, Z);
  act_forward_2d(MM_ACT_SILU, A->r, E, A->base + D + Z, M, BT, E);
  /* q = z * qk_gamma[0] + q_beta, k = z * qk_gamma[1], then lnz * Z^-1/4 */
  const float *g0 = P_(off->qk_gamma), *g1 = g0 + Z, *qb = P_(off->q_beta);
#pragma omp parallel for schedule(static)
  for (int64_t t = 0; t < BT; t++)
    for (int64_t c = 0; c < Z; c++) {
      A->qp[t * Z + c] = A->zz[t * Z + c] * g0[c] + qb[c];
      A->kp[t * Z + c] = A->zz[t * Z + c] * g1[c];
    }
  const float zs = (float)pow((double)Z, -0.25);
  lnz_forward(A->q, A->qp, zs, A->q_saved, BT, Z);
  lnz_forward(A->k, A->kp, zs, A->k_saved, BT, Z);
  /* VQ and attention */
  double valid = 0;
  vq_forward(&m->vq, m->ctx, A->code, A->khat, &st->commit_sum[i], &valid, n_s + (size_t)i * (size_t)d->S,
             key_sums + (size_t)i * (size_t)(d->S * Z), A->k, b->mask, cb, m->scratch);
  vq_attn_forward(&m->attn, m->ctx, A->O, A->attn_saved, A->q, A->khat, A->code, A->v, b->mask, P_(off->rel_pos), cb,
                  m->scratch, d->far_attention);
  /* h = dropout(silu(hx + h_proj(r * O))) */
#pragma omp parallel for schedule(static)
  for (int64_t j = 0; j < BT * E; j++) A->rO[j] = A->r[j] * A->O[j];
  linear_forward(&m->h_proj, m->ctx, A->h_pre, A->rO, P_(off->h_w), P_(off->h_b), NULL);
  const float *hx = A->base + D + Z + E;
#pragma omp parallel for schedule(static)
  for (int64_t t = 0; t < BT; t++)
    for (int64_t c = 0; c < D; c++) A->h_pre[t * D + c] += hx[t * M + c];
  silu_forward(A->h, A->h_pre, BT * D);
  dc = drop_cfg(dom, sizeof dom, o, b, i, DROPOUT_SITE_H, 0);
  dropout_forward(A->h, A->h, &dc, m->B, m->L, D);
  /* gated residual; postnorm normalizes after it */
  gate_forward(A->s1, A->x, A->u, A->h, BT * D);
  if (!d->prenorm) norm_forward(nk, A->y, A->s1, P_(off->mnorm_w), OPT(off->mnorm_b), A->mn_saved, BT, D);
  /* feed-forward: f = dropout(fc2(hdrop(silu(fc1(yn))))) */
  if (d->prenorm) norm_forward(nk, A->yn, A->y, P_(off->fnorm_w), OPT(off->fnorm_b), A->fn_saved, BT, D);
  linear_forward(&m->fc1, m->ctx, A->f1_pre, A->yn, P_(off->fc1_w), P_(off->fc1_b), NULL);
  silu_forward(A->f1, A->f1_pre, BT * F);
  dc = drop_cfg(dom, sizeof dom, o, b, i, DROPOUT_SITE_FFN_HID, 1);
  dropout_forward(A->f1, A->f1, &dc, m->B, m->L, F);
  linear_forward(&m->fc2, m->ctx, A->s2, A->f1, P_(off->fc2_w), P_(off->fc2_b), NULL);
  dc = drop_cfg(dom, sizeof dom, o, b, i, DROPOUT_SITE_FFN_OUT, 0);
  dropout_forward(A->s2, A->s2, &dc, m->B, m->L, D);
  add_into(A->s2, A->y, BT * D);
  /* next layer's input */
  if (d->prenorm) {
    mul_mask(x_next, A->s2, m->mask_f, BT, D);
  } else {
    norm_forward(nk, x_next, A->s2, P_(off->fnorm_w), OPT(off->fnorm_b), A->fn_saved, BT, D);
    mul_mask(x_next, x_next, m->mask_f, BT, D);
  }
}

void lv_block_backward(lv_model *m, int i, const float *params, float *grads, const lv_fwd_opts *o,
                       const lv_batch *b, double commit_w, const float *dx_next, float *dx_in) {
  const lv_dims *d = &m->d;
  const lv_layer_offsets *off = &m->lay->layer[i];
  const lv_layer_act *A = &m->la[i];
  const lv_layer_grad *g = &m->lg;
  const int64_t BT = m->BT, D = d->D, Z = d->Z, E = d->E, F = d->F, M = m->M;
  const norm_kind nk = d->norm;
  const float *cb = m->cb + (size_t)i * (size_t)(d->S * Z);
  char dom[64];
  dropout_cfg dc;
  lv_zero_floats(m->grad_arena, m->mem.grad_scratch);

  /* x_next = s2 * m (prenorm) or Norm_ffn(s2) * m (postnorm) */
  if (d->prenorm) {
    add_mul_mask(g->ds2, dx_next, m->mask_f, BT, D);
  } else {
    mul_mask(g->df, dx_next, m->mask_f, BT, D);
    norm_backward(nk, g->ds2, G_(off->fnorm_w), GOPT(off->fnorm_b), g->df, A->s2, P_(off->fnorm_w), A->fn_saved, BT, D);
  }
  /* s2 = y + dropout(fc2(f1)) */
  add_into(g->dy, g->ds2, BT * D);
  dc = drop_cfg(dom, sizeof dom, o, b, i, DROPOUT_SITE_FFN_OUT, 0);
  dropout_backward(g->df2, g->ds2, &dc, m->B, m->L, D);
  linear_backward(&m->fc2, m->ctx, g->df1, G_(off->fc2_w), G_(off->fc2_b), g->df2, A->f1, P_(off->fc2_w), NULL, NULL);
  /* f1 = hdrop(silu(f1_pre)); df1_pre first holds the gradient of silu's output */
  dc = drop_cfg(dom, sizeof dom, o, b, i, DROPOUT_SITE_FFN_HID, 1);
  float *dsilu_f = g->df1_pre + (size_t)(BT * F); /* second half of the (2 BT F) buffer */
  dropout_backward(dsilu_f, g->df1, &dc, m->B, m->L, F);
  silu_backward(g->df1_pre, dsilu_f, A->f1_pre, BT * F);
  linear_backward(&m->fc1, m->ctx, g->dyn, G_(off->fc1_w), G_(off->fc1_b), g->df1_pre, A->yn, P_(off->fc1_w), NULL,
                  NULL);
  if (d->prenorm)
    norm_backward(nk, g->dy, G_(off->fnorm_w), GOPT(off->fnorm_b), g->dyn, A->y, P_(off->fnorm_w), A->fn_saved, BT, D);
  else
    add_into(g->dy, g->dyn, BT * D);
  /* y = s1 (prenorm) or Norm_mixer(s1) (postnorm) */
  const float *ds1 = g->dy;
  if (!d->prenorm) {
    norm_backward(nk, g->ds1, G_(off->mnorm_w), GOPT(off->mnorm_b), g->dy, A->s1, P_(off->mnorm_w), A->mn_saved, BT, D);
    ds1 = g->ds1;
  }
  /* s1 = x + u (h - x) */
  gate_backward(dx_in, g->du, g->dh, ds1, A->x, A->u, A->h, BT * D);
  /* h = dropout(silu(h_pre)), h_pre = hx + h_proj(rO) */
  dc = drop_cfg(dom, sizeof dom, o, b, i, DROPOUT_SITE_H, 0);
  float *dsilu_h = g->dh_pre + (size_t)(BT * D);
  dropout_backward(dsilu_h, g->dh, &dc, m->B, m->L, D);
  silu_backward(g->dh_pre, dsilu_h, A->h_pre, BT * D);
  float *dhx = g->dbase + D + Z + E;
#pragma omp parallel for schedule(static)
  for (int64_t t = 0; t < BT; t++)
    for (int64_t c = 0; c < D; c++) dhx[t * M + c] += g->dh_pre[t * D + c];
  linear_backward(&m->h_proj, m->ctx, g->drO, G_(off->h_w), G_(off->h_b), g->dh_pre, A->rO, P_(off->h_w), NULL, NULL);
#pragma omp parallel for schedule(static)
  for (int64_t j = 0; j < BT * E; j++) {
    g->dr[j] += g->drO[j] * A->O[j];
    g->dO[j] += g->drO[j] * A->r[j];
  }
  /* attention, then the commitment term of VQ (straight-through dk comes from attention) */
  vq_attn_backward(&m->attn, m->ctx, g->dq, g->dk, g->dv, G_(off->rel_pos), g->dO, A->q, A->khat, A->code, A->v, b->mask,
                   P_(off->rel_pos), cb, A->O, A->attn_saved, m->scratch, d->far_attention);
  vq_backward(g->dk, commit_w, A->k, b->mask, cb, A->code, BT, Z);
  const float zs = (float)pow((double)Z, -0.25);
  lnz_backward(g->dqp, g->dq, A->qp, zs, A->q_saved, BT, Z);
  lnz_backward(g->dkp, g->dk, A->kp, zs, A->k_saved, BT, Z);
  /* q = z g0 + qb, k = z g1: parameter sums in double, rows in order (same bits for any thread count) */
  const float *g0 = P_(off->qk_gamma), *g1 = g0 + Z;
  float *dg0 = G_(off->qk_gamma), *dg1 = dg0 + Z, *dqb = G_(off->q_beta);
#pragma omp parallel for schedule(static)
  for (int64_t c = 0; c < Z; c++) {
    double s0 = 0, s1 = 0, sb = 0;
    for (int64_t t = 0; t < BT; t++) {
      s0 += (double)g->dqp[t * Z + c] * A->zz[t * Z + c];
      s1 += (double)g->dkp[t * Z + c] * A->zz[t * Z + c];
      sb += g->dqp[t * Z + c];
    }
    dg0[c] += (float)s0;
    dg1[c] += (float)s1;
    dqb[c] += (float)sb;
  }
#pragma omp parallel for schedule(static)
  for (int64_t t = 0; t < BT; t++)
    for (int64_t c = 0; c < Z; c++) g->dzz[t * Z + c] += g->dqp[t * Z + c] * g0[c] + g->dkp[t * Z + c] * g1[c];
  /* base = [u | z | r | hx] through the activations */
  act_backward_2d(MM_ACT_SIGMOID, g->dbase, M, g->du, D, A->base, M, BT, D);
  act_backward_2d(MM_ACT_SILU, g->dbase + D, M, g->dzz, Z, A->base + D, M, BT, Z);
  act_backward_2d(MM_ACT_SILU, g->dbase + D + Z, M, g->dr, E, A->base + D + Z, M, BT, E);
  linear_backward(&m->mx_proj, m->ctx, g->dmx, G_(off->mx_w), G_(off->mx_b), g->dbase, A->mx, P_(off->mx_w), NULL,
                  NULL);
  /* mx = dropout(EMA(xm)) */
  dc = drop_cfg(dom, sizeof dom, o, b, i, DROPOUT_SITE_MX, 0);
  dropout_backward(g->dema, g->dmx, &dc, m->B, m->L, D);
  ema_backward(g->dxm, G_(off->delta), G_(off->alpha), G_(off->beta), G_(off->gamma), G_(off->omega), g->dema, A->xm,
               P_(off->delta), P_(off->alpha), P_(off->beta), P_(off->gamma), P_(off->omega), A->ema_saved, m->scratch,
               m->B, m->L, D, d->N, !d->decoder);
  add_mul_mask(g->dxn, g->dxm, m->mask_f, BT, D);
  /* v = hdrop(silu(v_pre)) */
  dc = drop_cfg(dom, sizeof dom, o, b, i, DROPOUT_SITE_V, 1);
  float *dsilu_v = g->dv_pre + (size_t)(BT * E);
  dropout_backward(dsilu_v, g->dv, &dc, m->B, m->L, E);
  silu_backward(g->dv_pre, dsilu_v, A->v_pre, BT * E);
  linear_backward(&m->v_proj, m->ctx, g->dxn, G_(off->v_w), G_(off->v_b), g->dv_pre, A->xn, P_(off->v_w), NULL, NULL);
  if (d->prenorm)
    norm_backward(nk, dx_in, G_(off->mnorm_w), GOPT(off->mnorm_b), g->dxn, A->x, P_(off->mnorm_w), A->mn_saved, BT, D);
  else
    add_into(dx_in, g->dxn, BT * D);
}
