/* The whole model in double, literally as the spec's "Forward pass" writes it, from the reference
 * twins; backward is the chain rule through the same twins in reverse. Every intermediate is kept
 * (one pool of callocs, freed at the end). */
#include "layers/ref/model_ref.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "layers/ref/act_ref.h"
#include "layers/ref/ema_ref.h"
#include "layers/ref/embed_ref.h"
#include "layers/ref/gate_ref.h"
#include "layers/ref/head_ref.h"
#include "layers/ref/linear_ref.h"
#include "layers/ref/norm_ref.h"
#include "layers/ref/vq_attn_ref.h"
#include "layers/ref/vq_ref.h"
#include "layers/ref/xent_ref.h"
#include "trainer/base/check.h"

/* ---- allocation pool: every buffer of one evaluation, zeroed ---------------------------------- */
typedef struct {
  void **p;
  int n, cap;
} pool;

static void *palloc(pool *pl, int64_t n, size_t size) {
  if (pl->n == pl->cap) {
    pl->cap = pl->cap ? 2 * pl->cap : 256;
    pl->p = realloc(pl->p, sizeof(void *) * (size_t)pl->cap);
    CHECK_ALLOC(pl->p);
  }
  void *q = calloc((size_t)(n > 0 ? n : 1), size);
  CHECK_ALLOC(q);
  pl->p[pl->n++] = q;
  return q;
}
static double *dz(pool *pl, int64_t n) { return palloc(pl, n, sizeof(double)); }
static void pool_free(pool *pl) {
  for (int i = 0; i < pl->n; i++) free(pl->p[i]);
  free(pl->p);
}

/* ---- one evaluation ---------------------------------------------------------------------------- */
/* Everything one layer's backward reads. Names follow the spec; sv_* are norm saved stats. */
typedef struct {
  double *x;                 /* (BT, D) layer input */
  double *xn, *sv_mn;        /* Norm_mixer(x) (prenorm) or x; mixer-norm stats (of x or of g) */
  double *xm;                /* xn * m: the EMA input */
  double *v_pre, *v;         /* (BT, E) */
  double *ema_saved, *mx;    /* mx (BT, D) */
  double *base;              /* (BT, M), M = 2D+Z+E: [u | z | r | hx] pre-activations */
  double *u, *z, *r;         /* (BT, D), (BT, Z), (BT, E) */
  double *qr, *kr, *q, *k;   /* (BT, Z): before and after lnz * Z^-1/4 */
  double *sv_q, *sv_k;
  double *cb;                /* (S, Z) this layer's codebook */
  int32_t *code;             /* (BT) */
  double *kh;                /* (BT, Z) the key near pairs read: Cb[code] (+ k - k0 in FD mode) */
  double *O, *rO, *hpre, *h; /* (BT, E), (BT, E), (BT, D), (BT, D) */
  double *g, *y;             /* gate output; y = g (prenorm) or Norm_mixer(g) */
  double *yn, *sv_fn;        /* Norm_ffn(y) (prenorm) or y; ffn-norm stats (of y or of s) */
  double *a_pre, *a, *f;     /* (BT, F), (BT, F), (BT, D) */
  double *s;                 /* y + f */
} lact;

typedef struct {
  const lv_layout *lay;
  const lv_dims *d;
  const double *P; /* params */
  double *G;       /* grads or NULL */
  int64_t B, L, BT, M;
  norm_kind nk;
  const uint8_t *m8;
  double *mf;      /* (BT) mask as double */
} mctx;

static const double *opt(const double *base, size_t off) { return off == SIZE_MAX ? NULL : base + off; }
static double *optg(double *base, size_t off) { return off == SIZE_MAX || !base ? NULL : base + off; }

static void normf(const mctx *c, size_t w, size_t b, double *y, const double *x, double *sv) {
  norm_forward_ref(c->nk, y, x, c->P + w, opt(c->P, b), sv, c->BT, c->d->D);
}
static void normb(const mctx *c, size_t w, size_t b, double *dx, const double *dy, const double *x,
                  const double *sv) {
  norm_backward_ref(c->nk, dx, c->G + w, optg(c->G, b), dy, x, c->P + w, sv, c->BT, c->d->D);
}

static linear_desc ldesc(int64_t rows, int64_t in, int64_t out, mm_act act) {
  return (linear_desc){.rows = rows, .in = in, .out = out, .bias = 1, .act = act};
}

int32_t lv_ref_code_f32(const double *k, const double *cb, int64_t S, int64_t Z) {
  int32_t best_s = 0;
  float best = 0;
  for (int64_t s = 0; s < S; s++) {
    double sq = 0, dot = 0;
    for (int64_t j = 0; j < Z; j++) {
      double cj = (float)cb[s * Z + j];
      sq += cj * cj;
      dot += (double)(float)k[j] * cj;
    }
    float dist = (float)sq - 2.0f * (float)dot;
    if (s == 0 || dist < best) { best = dist; best_s = (int32_t)s; }
  }
  return best_s;
}

int lv_ref_near_tie(const double *k, const double *cb, int64_t S, int64_t Z) {
  double d1 = INFINITY, d2 = INFINITY, kk = 0;
  for (int64_t j = 0; j < Z; j++) kk += k[j] * k[j];
  for (int64_t s = 0; s < S; s++) {
    double e = 0;
    for (int64_t j = 0; j < Z; j++) e += (k[j] - cb[s * Z + j]) * (k[j] - cb[s * Z + j]);
    if (e < d1) { d2 = d1; d1 = e; }
    else if (e < d2) d2 = e;
  }
  return S > 1 && d2 - d1 < 1e-4 * kk;
}

/* One layer forward: a->x is set; writes `out` (BT, D), the next layer's input. */
static void layer_forward(const mctx *c, int i, lact *a, double *out, const double *state, const lv_ref_io *io,
                          double *commit_sum, pool *pl) {
  const lv_dims *d = c->d;
  const lv_layer_offsets *o = &c->lay->layer[i];
  const double *P = c->P;
  const int64_t BT = c->BT, D = d->D, Z = d->Z, E = d->E, S = d->S, F = d->F, M = c->M;
  const int pre = d->prenorm;
  a->sv_mn = dz(pl, 2 * BT);
  a->sv_fn = dz(pl, 2 * BT);
  /* mixer */
  a->xn = a->x;
  if (pre) normf(c, o->mnorm_w, o->mnorm_b, a->xn = dz(pl, BT * D), a->x, a->sv_mn);
  a->v_pre = dz(pl, BT * E);
  a->v = dz(pl, BT * E);
  linear_desc dv = ldesc(BT, D, E, MM_ACT_SILU);
  linear_forward_ref(a->v, a->xn, P + o->v_w, P + o->v_b, a->v_pre, &dv);
  a->xm = dz(pl, BT * D);
  for (int64_t t = 0; t < BT; t++)
    for (int64_t j = 0; j < D; j++) a->xm[t * D + j] = a->xn[t * D + j] * c->mf[t];
  a->mx = dz(pl, BT * D);
  a->ema_saved = dz(pl, (int64_t)ema_saved_doubles_ref(c->B, c->L, D, d->N, !d->decoder));
  ema_forward_ref(a->mx, a->xm, P + o->delta, P + o->alpha, P + o->beta, P + o->gamma, P + o->omega, a->ema_saved,
                  c->B, c->L, D, d->N, !d->decoder);
  a->base = dz(pl, BT * M);
  linear_desc dm = ldesc(BT, D, M, MM_ACT_NONE);
  linear_forward_ref(a->base, a->mx, P + o->mx_w, P + o->mx_b, NULL, &dm);
  a->u = dz(pl, BT * D);
  a->z = dz(pl, BT * Z);
  a->r = dz(pl, BT * E);
  act_forward_2d_ref(MM_ACT_SIGMOID, a->u, D, a->base, M, BT, D);
  act_forward_2d_ref(MM_ACT_SILU, a->z, Z, a->base + D, M, BT, Z);
  act_forward_2d_ref(MM_ACT_SILU, a->r, E, a->base + D + Z, M, BT, E);
  a->qr = dz(pl, BT * Z);
  a->kr = dz(pl, BT * Z);
  const double *g0 = P + o->qk_gamma, *g1 = P + o->qk_gamma + Z, *qb = P + o->q_beta;
  for (int64_t t = 0; t < BT; t++)
    for (int64_t j = 0; j < Z; j++) {
      a->qr[t * Z + j] = a->z[t * Z + j] * g0[j] + qb[j];
      a->kr[t * Z + j] = a->z[t * Z + j] * g1[j];
    }
  const double zs = pow((double)Z, -0.25);
  a->q = dz(pl, BT * Z);
  a->k = dz(pl, BT * Z);
  a->sv_q = dz(pl, 2 * BT);
  a->sv_k = dz(pl, 2 * BT);
  lnz_forward_ref(a->q, a->qr, zs, a->sv_q, BT, Z);
  lnz_forward_ref(a->k, a->kr, zs, a->sv_k, BT, Z);
  /* VQ */
  a->cb = dz(pl, S * Z);
  vq_codebook_ref(a->cb, state + o->c_sum, state + o->c_count, S, Z);
  a->code = palloc(pl, BT, sizeof(int32_t));
  a->kh = dz(pl, BT * Z);
  for (int64_t t = 0; t < BT; t++) {
    const double *kt = a->k + t * Z;
    int32_t cd = io && io->force_codes ? io->force_codes[i * BT + t] : lv_ref_code_f32(kt, a->cb, S, Z);
    if (cd < 0 || cd >= S) DIE("lv_model_loss_ref: forced code %d of layer %d row %lld is outside [0, %lld)", cd, i,
                               (long long)t, (long long)S);
    a->code[t] = cd;
    double e2 = 0;
    for (int64_t j = 0; j < Z; j++) {
      double cbj = a->cb[cd * Z + j];
      a->kh[t * Z + j] = cbj + (io && io->ste_k0 ? kt[j] - io->ste_k0[(i * BT + t) * Z + j] : 0.0);
      e2 += (kt[j] - cbj) * (kt[j] - cbj);
    }
    *commit_sum += c->mf[t] * e2;
  }
  if (io && io->codes_out) memcpy(io->codes_out + i * BT, a->code, sizeof(int32_t) * (size_t)BT);
  if (io && io->keys_out) memcpy(io->keys_out + i * BT * Z, a->k, sizeof(double) * (size_t)(BT * Z));
  /* attention and the gated residual */
  a->O = dz(pl, BT * E);
  vq_attn_forward_ref(a->O, a->q, a->kh, a->code, a->v, c->m8, P + o->rel_pos, a->cb, c->B, c->L, d->C, Z, E, S,
                      d->decoder ? LV_MODE_DECODER : LV_MODE_ENCODER, d->far_attention);
  a->rO = dz(pl, BT * E);
  for (int64_t n = 0; n < BT * E; n++) a->rO[n] = a->r[n] * a->O[n];
  a->hpre = dz(pl, BT * D);
  for (int64_t t = 0; t < BT; t++)
    for (int64_t j = 0; j < D; j++) a->hpre[t * D + j] = a->base[t * M + D + Z + E + j];
  linear_desc dh = ldesc(BT, E, D, MM_ACT_NONE);
  dh.accumulate = 1;
  linear_forward_ref(a->hpre, a->rO, P + o->h_w, P + o->h_b, NULL, &dh);
  a->h = dz(pl, BT * D);
  silu_forward_ref(a->h, a->hpre, BT * D);
  a->g = dz(pl, BT * D);
  gate_forward_ref(a->g, a->x, a->u, a->h, BT * D);
  a->y = a->g;
  if (!pre) normf(c, o->mnorm_w, o->mnorm_b, a->y = dz(pl, BT * D), a->g, a->sv_mn);
  /* feed-forward */
  a->yn = a->y;
  if (pre) normf(c, o->fnorm_w, o->fnorm_b, a->yn = dz(pl, BT * D), a->y, a->sv_fn);
  a->a_pre = dz(pl, BT * F);
  a->a = dz(pl, BT * F);
  linear_desc d1 = ldesc(BT, D, F, MM_ACT_SILU), d2 = ldesc(BT, F, D, MM_ACT_NONE);
  linear_forward_ref(a->a, a->yn, P + o->fc1_w, P + o->fc1_b, a->a_pre, &d1);
  a->f = dz(pl, BT * D);
  linear_forward_ref(a->f, a->a, P + o->fc2_w, P + o->fc2_b, NULL, &d2);
  a->s = dz(pl, BT * D);
  for (int64_t n = 0; n < BT * D; n++) a->s[n] = a->y[n] + a->f[n];
  if (pre) memcpy(out, a->s, sizeof(double) * (size_t)(BT * D));
  else normf(c, o->fnorm_w, o->fnorm_b, out, a->s, a->sv_fn);
  for (int64_t t = 0; t < BT; t++)
    for (int64_t j = 0; j < D; j++) out[t * D + j] *= c->mf[t];
}

/* One layer backward: dx (BT, D) += d loss / d x given dout = d loss / d (layer output). */
static void layer_backward(const mctx *c, int i, const lact *a, double *dx, const double *dout, double commit_w,
                           pool *pl) {
  const lv_dims *d = c->d;
  const lv_layer_offsets *o = &c->lay->layer[i];
  const double *P = c->P;
  double *G = c->G;
  const int64_t BT = c->BT, D = d->D, Z = d->Z, E = d->E, S = d->S, F = d->F, M = c->M;
  const int pre = d->prenorm;
  /* out = (pre ? s : Norm_ffn(s)) * m */
  double *dom = dz(pl, BT * D), *ds = dz(pl, BT * D);
  for (int64_t t = 0; t < BT; t++)
    for (int64_t j = 0; j < D; j++) dom[t * D + j] = dout[t * D + j] * c->mf[t];
  if (pre) memcpy(ds, dom, sizeof(double) * (size_t)(BT * D));
  else normb(c, o->fnorm_w, o->fnorm_b, ds, dom, a->s, a->sv_fn);
  /* s = y + f, f = fc2(silu(fc1(yn))) */
  double *dy = dz(pl, BT * D), *da = dz(pl, BT * F), *dyn = dz(pl, BT * D);
  memcpy(dy, ds, sizeof(double) * (size_t)(BT * D));
  linear_desc d1 = ldesc(BT, D, F, MM_ACT_SILU), d2 = ldesc(BT, F, D, MM_ACT_NONE);
  linear_backward_ref(da, G + o->fc2_w, G + o->fc2_b, ds, a->a, P + o->fc2_w, NULL, &d2);
  linear_backward_ref(dyn, G + o->fc1_w, G + o->fc1_b, da, a->yn, P + o->fc1_w, a->a_pre, &d1);
  if (pre) normb(c, o->fnorm_w, o->fnorm_b, dy, dyn, a->y, a->sv_fn);
  else for (int64_t n = 0; n < BT * D; n++) dy[n] += dyn[n];
  /* y = g (pre) or Norm_mixer(g); g = x + u (h - x) */
  double *dg = dy;
  if (!pre) normb(c, o->mnorm_w, o->mnorm_b, dg = dz(pl, BT * D), dy, a->g, a->sv_mn);
  double *du = dz(pl, BT * D), *dh = dz(pl, BT * D), *dhpre = dz(pl, BT * D), *dbase = dz(pl, BT * M);
  gate_backward_ref(dx, du, dh, dg, a->x, a->u, a->h, BT * D);
  /* h = silu(hx + h_proj(r * O)) */
  silu_backward_ref(dhpre, dh, a->hpre, BT * D);
  for (int64_t t = 0; t < BT; t++)
    for (int64_t j = 0; j < D; j++) dbase[t * M + D + Z + E + j] += dhpre[t * D + j];
  double *drO = dz(pl, BT * E), *dr = dz(pl, BT * E), *dO = dz(pl, BT * E);
  linear_desc dhd = ldesc(BT, E, D, MM_ACT_NONE);
  linear_backward_ref(drO, G + o->h_w, G + o->h_b, dhpre, a->rO, P + o->h_w, NULL, &dhd);
  for (int64_t n = 0; n < BT * E; n++) {
    dr[n] = drO[n] * a->O[n];
    dO[n] = drO[n] * a->r[n];
  }
  /* attention (dk: straight-through from near pairs) and the commitment term */
  double *dq = dz(pl, BT * Z), *dk = dz(pl, BT * Z), *dv = dz(pl, BT * E);
  vq_attn_backward_ref(dq, dk, dv, G + o->rel_pos, dO, a->q, a->kh, a->code, a->v, c->m8, P + o->rel_pos, a->cb,
                       c->B, c->L, d->C, Z, E, S, d->decoder ? LV_MODE_DECODER : LV_MODE_ENCODER, d->far_attention);
  vq_backward_ref(dk, commit_w, a->k, c->m8, a->cb, a->code, BT, Z);
  /* q, k = lnz(z g0 + q_beta), lnz(z g1), times Z^-1/4 */
  const double zs = pow((double)Z, -0.25);
  double *dqr = dz(pl, BT * Z), *dkr = dz(pl, BT * Z), *dzz = dz(pl, BT * Z);
  lnz_backward_ref(dqr, dq, a->qr, zs, a->sv_q, BT, Z);
  lnz_backward_ref(dkr, dk, a->kr, zs, a->sv_k, BT, Z);
  const double *g0 = P + o->qk_gamma, *g1 = P + o->qk_gamma + Z;
  for (int64_t t = 0; t < BT; t++)
    for (int64_t j = 0; j < Z; j++) {
      double zz = a->z[t * Z + j], gq = dqr[t * Z + j], gk = dkr[t * Z + j];
      dzz[t * Z + j] = gq * g0[j] + gk * g1[j];
      G[o->qk_gamma + j] += gq * zz;
      G[o->qk_gamma + Z + j] += gk * zz;
      G[o->q_beta + j] += gq;
    }
  act_backward_2d_ref(MM_ACT_SIGMOID, dbase, M, du, D, a->base, M, BT, D);
  act_backward_2d_ref(MM_ACT_SILU, dbase + D, M, dzz, Z, a->base + D, M, BT, Z);
  act_backward_2d_ref(MM_ACT_SILU, dbase + D + Z, M, dr, E, a->base + D + Z, M, BT, E);
  /* base = mx_proj(mx), mx = EMA(xn * m), v = silu(v_proj(xn)) */
  double *dmx = dz(pl, BT * D), *dxm = dz(pl, BT * D), *dxn = dz(pl, BT * D);
  linear_desc dm = ldesc(BT, D, M, MM_ACT_NONE), dvd = ldesc(BT, D, E, MM_ACT_SILU);
  linear_backward_ref(dmx, G + o->mx_w, G + o->mx_b, dbase, a->mx, P + o->mx_w, NULL, &dm);
  ema_backward_ref(dxm, G + o->delta, G + o->alpha, G + o->beta, G + o->gamma, G + o->omega, dmx, a->xm,
                   P + o->delta, P + o->alpha, P + o->beta, P + o->gamma, P + o->omega, a->ema_saved, c->B, c->L, D,
                   d->N, !d->decoder);
  for (int64_t t = 0; t < BT; t++)
    for (int64_t j = 0; j < D; j++) dxn[t * D + j] = dxm[t * D + j] * c->mf[t];
  linear_backward_ref(dxn, G + o->v_w, G + o->v_b, dv, a->xn, P + o->v_w, a->v_pre, &dvd);
  if (pre) normb(c, o->mnorm_w, o->mnorm_b, dx, dxn, a->x, a->sv_mn);
  else for (int64_t n = 0; n < BT * D; n++) dx[n] += dxn[n];
}

double lv_model_loss_ref(const lv_layout *lay, const double *params, const double *state, const lv_batch *b,
                         int64_t B, int64_t L, const lv_fwd_opts *opts, double task_scale, double commit_scale,
                         double commit_weight, const lv_ref_io *io, double *grads, lv_ref_stats *stats) {
  const lv_dims *d = &lay->dims;
  if (opts && opts->training && (opts->dropout > 0 || opts->hidden_dropout > 0))
    DIE("lv_model_loss_ref: the reference model has no dropout (got %g, %g)", opts->dropout, opts->hidden_dropout);
  if (L % d->C) DIE("lv_model_loss_ref: L = %lld is not a multiple of C = %lld", (long long)L, (long long)d->C);
  if (io && io->ste_k0 && !io->force_codes) DIE("lv_model_loss_ref: ste_k0 needs force_codes");
  pool pl = {0};
  const int64_t BT = B * L, D = d->D, nl = d->n_layers;
  mctx c = {.lay = lay, .d = d, .P = params, .G = grads, .B = B, .L = L, .BT = BT,
            .M = 2 * D + d->Z + d->E, .nk = d->norm, .m8 = b->mask};
  c.mf = dz(&pl, BT);
  lv_ref_stats st;
  memset(&st, 0, sizeof st);
  for (int64_t t = 0; t < BT; t++) st.valid += c.mf[t] = b->mask[t] ? 1.0 : 0.0;
  /* embedding, layers, final norm */
  lact *acts = palloc(&pl, nl, sizeof(lact));
  double *x = dz(&pl, BT * D);
  embed_forward_ref(x, b->tokens, c.mf, params + lay->embed, BT, d->V, D);
  for (int i = 0; i < nl; i++) {
    acts[i].x = x;
    x = dz(&pl, BT * D);
    layer_forward(&c, i, &acts[i], x, state, io, &st.commit_sum[i], &pl);
  }
  double *xf = x, *sv_final = dz(&pl, 2 * BT);
  if (d->prenorm) normf(&c, lay->final_norm_w, lay->final_norm_b, xf = dz(&pl, BT * D), x, sv_final);
  /* head and cross-entropy */
  const int64_t R = d->decoder ? BT : B, K = d->decoder ? d->V : d->K;
  const int32_t *tgt = d->decoder ? b->targets : b->labels;
  double *logits = dz(&pl, R * K), *tmask = NULL, *xsv = dz(&pl, 2 * R), *hsv = dz(&pl, 3 * B * D + B);
  const double *lmW = NULL;
  if (d->decoder) {
    tmask = dz(&pl, R);
    for (int64_t r = 0; r < R; r++) tmask[r] = b->target_mask[r] ? 1.0 : 0.0;
    lmW = params + (d->tie_embeddings ? lay->embed : lay->lm_head);
    lm_head_forward_ref(logits, xf, lmW, BT, D, d->V);
  } else {
    head_forward_ref(logits, xf, c.mf, params + lay->head_dense_w, params + lay->head_dense_b,
                     params + lay->head_out_w, params + lay->head_out_b, hsv, B, L, D, d->K);
  }
  for (int64_t r = 0; r < R; r++)
    if ((!tmask || tmask[r]) && (tgt[r] < 0 || tgt[r] >= K))
      DIE("lv_model_loss_ref: %s %d of row %lld is outside [0, %lld)", d->decoder ? "target" : "label", tgt[r],
          (long long)r, (long long)K);
  xent_stats xs;
  xent_forward_ref(&xs, logits, tgt, tmask, xsv, R, K);
  st.task_sum = xs.loss_sum;
  st.task_count = (double)xs.count;
  st.correct = (double)xs.correct;
  double csum = 0;
  for (int i = 0; i < nl; i++) csum += st.commit_sum[i];
  const double loss = st.task_sum * task_scale + commit_weight * commit_scale * csum;
  if (io && io->logits_out) memcpy(io->logits_out, logits, sizeof(double) * (size_t)(R * K));
  if (stats) *stats = st;
  if (grads) {
    double *dlog = dz(&pl, R * K), *dxf = dz(&pl, BT * D);
    xent_backward_ref(dlog, task_scale, logits, tgt, tmask, xsv, R, K);
    if (d->decoder)
      lm_head_backward_ref(dxf, grads + (d->tie_embeddings ? lay->embed : lay->lm_head), dlog, xf, lmW, BT, D, d->V);
    else
      head_backward_ref(dxf, grads + lay->head_dense_w, grads + lay->head_dense_b, grads + lay->head_out_w,
                        grads + lay->head_out_b, dlog, c.mf, params + lay->head_dense_w, params + lay->head_out_w,
                        hsv, B, L, D, d->K);
    double *dxl = dxf;
    if (d->prenorm) normb(&c, lay->final_norm_w, lay->final_norm_b, dxl = dz(&pl, BT * D), dxf, x, sv_final);
    for (int i = (int)nl - 1; i >= 0; i--) {
      double *dxi = dz(&pl, BT * D);
      layer_backward(&c, i, &acts[i], dxi, dxl, commit_weight * commit_scale, &pl);
      dxl = dxi;
    }
    embed_backward_ref(grads + lay->embed, dxl, b->tokens, c.mf, BT, d->V, D);
  }
  pool_free(&pl);
  return loss;
}
