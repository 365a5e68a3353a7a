/* Incremental decoding, one token through every layer (see decode.h). The steps follow
 * layers/block.c's forward line by line, for one row, with dropout off and the mask 1. */
#include "layers/decode.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "layers/act.h"
#include "layers/ema.h"
#include "layers/gate.h"
#include "layers/norm.h"
#include "layers/vq.h"
#include "layers/vq_attn.h"
#include "trainer/base/alloc.h"
#include "trainer/base/check.h"

/* Weights from which a projection is split over the OpenMP threads. One token's product is small: a
 * parallel region costs microseconds on an idle machine, and on a shared one each region waits
 * for a second core to be scheduled (measured: the 2-layer D 128 text model ran 20x slower on 2
 * threads than on 1 under a load of 20, docs/generate.md). Only products of 2^19 weights and more
 * (D 512 and up: ~0.1 ms per product) are split. */
#define MATVEC_PAR_MIN ((int64_t)1 << 19)

typedef struct {
  float *phiT, *qT;       /* (N, D) EMA coefficients (ema_coeffs) */
  float *cb, *cbsq;       /* (S, Z) codebook, (S) its squared norms */
  float *ema;             /* (N, D) EMA state */
  vq_attn_step_state at;  /* attention ring and far sums */
  int32_t code;           /* code of the last token */
} dec_layer;

/* One token's activations (names as in model_internal.h's lv_layer_act). */
typedef struct {
  float *x, *xn, *v, *mx, *base, *u, *zz, *qp, *kp, *q, *k, *dist, *O, *rO, *h_pre, *h, *s1, *y, *yn, *f1, *s2;
  float *xf, *logits, *saved, *attn;
} dec_scratch;

struct lv_decoder {
  lv_dims d;
  const lv_layout *lay;
  const float *params;
  int64_t pos, M;
  lv_decode_mem mem;
  float *arena;
  dec_layer L[LV_MAX_LAYERS];
  dec_scratch s;
};

/* Lays out (base NULL: counts) the constants, the state and the scratch; fills g when g != NULL. */
static void carve_all(const lv_dims *d, float *base, lv_decoder *g, lv_decode_mem *mem) {
  const size_t D = (size_t)d->D, Z = (size_t)d->Z, E = (size_t)d->E, N = (size_t)d->N, S = (size_t)d->S,
               F = (size_t)d->F, M = 2 * D + Z + E;
  lv_cursor c = {base, 0};
  dec_layer tmp;
  for (int i = 0; i < d->n_layers; i++) {
    dec_layer *Ly = g ? &g->L[i] : &tmp;
    Ly->phiT = lv_carve(&c, N * D);
    Ly->qT = lv_carve(&c, N * D);
    Ly->cb = lv_carve(&c, S * Z);
    Ly->cbsq = lv_carve(&c, S);
  }
  mem->consts = c.used;
  for (int i = 0; i < d->n_layers; i++) {
    dec_layer *Ly = g ? &g->L[i] : &tmp;
    size_t before = c.used;
    Ly->ema = lv_carve(&c, N * D);
    float *at = lv_carve(&c, vq_attn_step_state_floats(d->C, d->E, d->S));
    if (g) vq_attn_step_init(&Ly->at, at, d->C, d->Z, d->E, d->S);
    mem->state_per_layer = c.used - before;
  }
  mem->state = c.used - mem->consts;
  dec_scratch t, *s = g ? &g->s : &t;
  float **vecs[] = {&s->x, &s->xn, &s->mx, &s->u, &s->h_pre, &s->h, &s->s1, &s->y, &s->yn, &s->s2, &s->xf};
  for (size_t k = 0; k < sizeof vecs / sizeof vecs[0]; k++) *vecs[k] = lv_carve(&c, D);
  s->v = lv_carve(&c, E);
  s->O = lv_carve(&c, E);
  s->rO = lv_carve(&c, E);
  s->base = lv_carve(&c, M);
  s->zz = lv_carve(&c, Z);
  s->qp = lv_carve(&c, Z);
  s->kp = lv_carve(&c, Z);
  s->q = lv_carve(&c, Z);
  s->k = lv_carve(&c, Z);
  s->dist = lv_carve(&c, S);
  s->f1 = lv_carve(&c, F);
  s->logits = lv_carve(&c, (size_t)d->V);
  s->saved = lv_carve(&c, 2);
  s->attn = lv_carve(&c, vq_attn_step_scratch_floats(d->C, d->E, d->S));
  mem->scratch = c.used - mem->consts - mem->state;
  mem->total = c.used;
}

lv_decode_mem lv_decode_plan(const lv_dims *d) {
  if (!d->decoder) DIE("lv_decode_plan: incremental decoding needs a decoder-mode model");
  lv_decode_mem mem;
  memset(&mem, 0, sizeof mem);
  carve_all(d, NULL, NULL, &mem);
  return mem;
}

static double kib(size_t floats) { return (double)floats * 4.0 / 1024.0; }

void lv_decode_print_plan(FILE *f, const lv_dims *d) {
  lv_decode_mem m = lv_decode_plan(d);
  const double ema = (double)(d->N * d->D), ring = (double)(2 * d->C * (1 + d->E)), far = (double)(d->S * (3 * d->E + 2));
  fprintf(f, "decoder state (fixed, any position): %.1f KiB per layer x %lld layers = %.1f KiB\n",
          kib(m.state_per_layer), (long long)d->n_layers, kib(m.state));
  fprintf(f, "  per layer: EMA N x D = %.0f floats, ring 2C x (1 + E) = %.0f, far sums S x (1 + E) double "
          "+ S x E float = %.0f floats\n", ema, ring, far);
  fprintf(f, "  constants %.1f KiB, one token's scratch %.1f KiB, total %.1f KiB (parameters not included)\n",
          kib(m.consts), kib(m.scratch), kib(m.total));
}

lv_decoder *lv_decoder_create(const lv_layout *lay, const float *params, const float *state) {
  const lv_dims *d = &lay->dims;
  if (!d->decoder) DIE("lv_decoder_create: incremental decoding needs a decoder-mode model");
  lv_decoder *g = calloc(1, sizeof *g);
  CHECK_ALLOC(g);
  g->d = *d;
  g->lay = lay;
  g->params = params;
  g->M = 2 * d->D + d->Z + d->E;
  g->mem = lv_decode_plan(d);
  g->arena = lv_alloc_floats(g->mem.total);
  carve_all(d, g->arena, g, &g->mem);
  for (int i = 0; i < d->n_layers; i++) {
    const lv_layer_offsets *o = &lay->layer[i];
    dec_layer *Ly = &g->L[i];
    ema_coeffs(Ly->phiT, Ly->qT, params + o->delta, params + o->alpha, params + o->beta, params + o->gamma, d->D, d->N,
               1, d->D);
    vq_codebook(Ly->cb, state + o->c_sum, state + o->c_count, d->S, d->Z);
    vq_codebook_sqnorms(Ly->cbsq, Ly->cb, d->S, d->Z);
  }
  lv_decoder_reset(g);
  return g;
}

void lv_decoder_free(lv_decoder *g) {
  if (!g) return;
  free(g->arena);
  free(g);
}

void lv_decoder_reset(lv_decoder *g) {
  const lv_dims *d = &g->d;
  for (int i = 0; i < d->n_layers; i++) {
    dec_layer *Ly = &g->L[i];
    memset(Ly->ema, 0, sizeof(float) * (size_t)(d->N * d->D));
    vq_attn_step_init(&Ly->at, (float *)(void *)Ly->at.code, d->C, d->Z, d->E, d->S);
    Ly->code = 0;
  }
  g->pos = 0;
}

int64_t lv_decoder_position(const lv_decoder *g) { return g->pos; }
int32_t lv_decoder_last_code(const lv_decoder *g, int layer) { return g->L[layer].code; }

/* y (out) = W x + b (b may be NULL); W stored (out, in) as a Linear weight. */
static void matvec(float *y, const float *W, const float *x, const float *b, int64_t out, int64_t in) {
#pragma omp parallel for schedule(static) if (out * in >= MATVEC_PAR_MIN)
  for (int64_t o = 0; o < out; o++) {
    const float *w = W + o * in;
    float a = 0;
#pragma omp simd reduction(+ : a)
    for (int64_t k = 0; k < in; k++) a += w[k] * x[k];
    y[o] = b ? a + b[o] : a;
  }
}

#define P_(off) (g->params + (off))
#define OPT(off) ((off) == SIZE_MAX ? NULL : g->params + (off))

/* Layer i on the token in s->x; leaves the next layer's input in s->x. */
static void layer_step(lv_decoder *g, int i) {
  const lv_dims *d = &g->d;
  const lv_layer_offsets *off = &g->lay->layer[i];
  dec_layer *Ly = &g->L[i];
  dec_scratch *s = &g->s;
  const int64_t D = d->D, Z = d->Z, E = d->E, F = d->F;
  const norm_kind nk = d->norm;
  const float *xn = s->x;
  if (d->prenorm) {
    norm_forward(nk, s->xn, s->x, P_(off->mnorm_w), OPT(off->mnorm_b), s->saved, 1, D);
    xn = s->xn;
  }
  /* v = silu(v_proj(xn)); mx = EMA(xn) */
  matvec(s->v, P_(off->v_w), xn, P_(off->v_b), E, D);
  silu_forward(s->v, s->v, E);
  ema_step(s->mx, Ly->ema, xn, Ly->phiT, Ly->qT, P_(off->omega), D, d->N);
  /* base = mx_proj(mx) = [u | z | r | hx] */
  matvec(s->base, P_(off->mx_w), s->mx, P_(off->mx_b), g->M, D);
  sigmoid_forward(s->u, s->base, D);
  silu_forward(s->zz, s->base + D, Z);
  float *r = s->rO; /* r lives in rO until it is multiplied by O */
  silu_forward(r, s->base + D + Z, E);
  const float *hx = s->base + D + Z + E;
  /* q, k: z * qk_gamma + q_beta, lnz, Z^-1/4; the key's code against the fixed codebook */
  const float *g0 = P_(off->qk_gamma), *g1 = g0 + Z, *qb = P_(off->q_beta);
  for (int64_t c = 0; c < Z; c++) {
    s->qp[c] = s->zz[c] * g0[c] + qb[c];
    s->kp[c] = s->zz[c] * g1[c];
  }
  const float zs = (float)pow((double)Z, -0.25);
  lnz_forward(s->q, s->qp, zs, s->saved, 1, Z);
  lnz_forward(s->k, s->kp, zs, s->saved, 1, Z);
  for (int64_t c = 0; c < d->S; c++) {
    double a = 0;
    for (int64_t z = 0; z < Z; z++) a += (double)s->k[z] * Ly->cb[c * Z + z];
    s->dist[c] = (float)a;
  }
  Ly->code = vq_argmin_row(s->dist, Ly->cbsq, d->S);
  vq_attn_step(&Ly->at, s->O, g->pos, s->q, Ly->code, s->v, P_(off->rel_pos), Ly->cb, s->attn, d->far_attention);
  /* h = silu(hx + h_proj(r * O)); gated residual */
  for (int64_t e = 0; e < E; e++) s->rO[e] = r[e] * s->O[e];
  matvec(s->h_pre, P_(off->h_w), s->rO, P_(off->h_b), D, E);
  for (int64_t c = 0; c < D; c++) s->h_pre[c] += hx[c];
  silu_forward(s->h, s->h_pre, D);
  gate_forward(s->s1, s->x, s->u, s->h, D);
  const float *y = s->s1;
  if (!d->prenorm) {
    norm_forward(nk, s->y, s->s1, P_(off->mnorm_w), OPT(off->mnorm_b), s->saved, 1, D);
    y = s->y;
  }
  /* feed-forward */
  const float *yn = y;
  if (d->prenorm) {
    norm_forward(nk, s->yn, y, P_(off->fnorm_w), OPT(off->fnorm_b), s->saved, 1, D);
    yn = s->yn;
  }
  matvec(s->f1, P_(off->fc1_w), yn, P_(off->fc1_b), F, D);
  silu_forward(s->f1, s->f1, F);
  matvec(s->s2, P_(off->fc2_w), s->f1, P_(off->fc2_b), D, F);
  for (int64_t c = 0; c < D; c++) s->s2[c] += y[c];
  if (d->prenorm)
    memcpy(s->x, s->s2, sizeof(float) * (size_t)D);
  else
    norm_forward(nk, s->x, s->s2, P_(off->fnorm_w), OPT(off->fnorm_b), s->saved, 1, D);
}

const float *lv_decoder_step(lv_decoder *g, int32_t token) {
  const lv_dims *d = &g->d;
  const lv_layout *lay = g->lay;
  dec_scratch *s = &g->s;
  if (token < 0 || token >= d->V)
    DIE("lv_decoder_step: token %d at position %lld is outside the vocabulary [0, %lld)", token, (long long)g->pos,
        (long long)d->V);
  memcpy(s->x, P_(lay->embed) + (int64_t)token * d->D, sizeof(float) * (size_t)d->D);
  for (int i = 0; i < d->n_layers; i++) layer_step(g, i);
  const float *xf = s->x;
  if (d->prenorm) {
    norm_forward(d->norm, s->xf, s->x, P_(lay->final_norm_w), OPT(lay->final_norm_b), s->saved, 1, d->D);
    xf = s->xf;
  }
  matvec(s->logits, P_(d->tie_embeddings ? lay->embed : lay->lm_head), xf, NULL, d->V, d->D);
  g->pos++;
  return s->logits;
}
