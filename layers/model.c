/* The whole model: arenas and memory plan, embedding, layers, final norm, heads, loss. */
#include "layers/model.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "layers/dropout.h"
#include "layers/ema.h"
#include "layers/embed.h"
#include "layers/model_internal.h"
#include "layers/norm.h"
#include "layers/xent.h"
#include "trainer/base/alloc.h"
#include "trainer/base/check.h"
#include "trainer/base/range.h"

/* The arena cursor of trainer/base/alloc.h: with base == NULL it only counts, so the same code is the
 * memory plan (pure) and the allocation. */
typedef lv_cursor cursor;
static float *carve(cursor *c, size_t n) { return lv_carve(c, n); }

/* n doubles from the same float arena (64-byte aligned, so aligned for double). */
static double *carve_f64(cursor *c, size_t n) { return (double *)(void *)carve(c, 2 * n); }

static size_t max_sz(size_t a, size_t b) { return a > b ? a : b; }

/* Lays out (or counts) the kept activations; fills m's pointers when m != NULL. */
static size_t carve_acts(const lv_dims *d, int64_t B, int64_t L, float *base, lv_model *m, size_t *per_layer) {
  cursor c = {base, 0};
  const size_t BT = (size_t)(B * L), D = (size_t)d->D, Z = (size_t)d->Z, E = (size_t)d->E, F = (size_t)d->F;
  const size_t M = 2 * D + Z + E;
  lv_layer_act tmp;
  for (int i = 0; i < d->n_layers; i++) {
    lv_layer_act *A = m ? &m->la[i] : &tmp;
    size_t before = c.used;
    A->x = carve(&c, BT * D);
    A->mn_saved = carve(&c, 2 * BT);
    A->xn = d->prenorm ? carve(&c, BT * D) : A->x;
    A->xm = carve(&c, BT * D);
    A->ema_saved = carve(&c, ema_saved_floats(B, L, d->D, d->N, !d->decoder));
    A->mx = carve(&c, BT * D);
    A->v_pre = carve(&c, BT * E);
    A->v = carve(&c, BT * E);
    A->base = carve(&c, BT * M);
    A->u = carve(&c, BT * D);
    A->zz = carve(&c, BT * Z);
    A->r = carve(&c, BT * E);
    A->qp = carve(&c, BT * Z);
    A->kp = carve(&c, BT * Z);
    A->q_saved = carve(&c, 2 * BT);
    A->k_saved = carve(&c, 2 * BT);
    A->q = carve(&c, BT * Z);
    A->k = carve(&c, BT * Z);
    A->code = (int32_t *)carve(&c, BT); /* int32 and float have the same size */
    A->khat = carve(&c, BT * Z);
    A->attn_saved = carve(&c, vq_attn_saved_floats(B, L));
    A->O = carve(&c, BT * E);
    A->rO = carve(&c, BT * E);
    A->h_pre = carve(&c, BT * D);
    A->h = carve(&c, BT * D);
    A->s1 = carve(&c, BT * D);
    A->y = d->prenorm ? A->s1 : carve(&c, BT * D);
    A->fn_saved = carve(&c, 2 * BT);
    A->yn = d->prenorm ? carve(&c, BT * D) : A->y;
    A->f1_pre = carve(&c, BT * F);
    A->f1 = carve(&c, BT * F);
    A->s2 = carve(&c, BT * D);
    if (per_layer) *per_layer = c.used - before;
  }
  float *x_out = carve(&c, BT * D);
  float *xf = d->prenorm ? carve(&c, BT * D) : x_out;
  float *ff_saved = carve(&c, 2 * BT);
  size_t R = d->decoder ? BT : (size_t)B, K = d->decoder ? (size_t)d->V : (size_t)d->K;
  float *logits = carve(&c, R * K);
  float *xent_saved = carve(&c, xent_saved_floats((int64_t)R));
  float *head_saved = d->decoder ? NULL : carve(&c, head_saved_floats(B, d->D));
  float *mask_f = carve(&c, BT), *tmask_f = carve(&c, BT);
  float *cb = carve(&c, (size_t)(d->n_layers * d->S * d->Z));
  double *stat_ns = carve_f64(&c, (size_t)(d->n_layers * d->S));
  double *stat_keys = carve_f64(&c, (size_t)(d->n_layers * d->S * d->Z));
  double *target_nll = d->decoder ? carve_f64(&c, BT) : NULL;
  if (m) {
    m->x_out = x_out;
    m->xf = xf;
    m->ff_saved = ff_saved;
    m->logits = logits;
    m->xent_saved = xent_saved;
    m->head_saved = head_saved;
    m->mask_f = mask_f;
    m->tmask_f = tmask_f;
    m->cb = cb;
    m->stat_ns = stat_ns;
    m->stat_keys = stat_keys;
    m->target_nll = target_nll;
  }
  return c.used;
}

/* Gradients of one layer's activations + the model-level gradient buffers. */
static size_t carve_grads(const lv_dims *d, int64_t B, int64_t L, float *base, lv_model *m, size_t *layer_part) {
  cursor c = {base, 0};
  const size_t BT = (size_t)(B * L), D = (size_t)d->D, Z = (size_t)d->Z, E = (size_t)d->E, F = (size_t)d->F;
  lv_layer_grad tmp, *g = m ? &m->lg : &tmp;
  g->dxn = carve(&c, BT * D);
  g->dxm = carve(&c, BT * D);
  g->dmx = carve(&c, BT * D);
  g->dema = carve(&c, BT * D);
  g->dv = carve(&c, BT * E);
  g->dv_pre = carve(&c, 2 * BT * E);
  g->dbase = carve(&c, BT * (2 * D + Z + E));
  g->du = carve(&c, BT * D);
  g->dzz = carve(&c, BT * Z);
  g->dr = carve(&c, BT * E);
  g->dqp = carve(&c, BT * Z);
  g->dkp = carve(&c, BT * Z);
  g->dq = carve(&c, BT * Z);
  g->dk = carve(&c, BT * Z);
  g->dO = carve(&c, BT * E);
  g->drO = carve(&c, BT * E);
  g->dh = carve(&c, BT * D);
  g->dh_pre = carve(&c, 2 * BT * D);
  g->ds1 = carve(&c, BT * D);
  g->dy = carve(&c, BT * D);
  g->dyn = carve(&c, BT * D);
  g->df = carve(&c, BT * D);
  g->df2 = carve(&c, BT * D);
  g->df1 = carve(&c, BT * F);
  g->df1_pre = carve(&c, 2 * BT * F);
  g->ds2 = carve(&c, BT * D);
  if (layer_part) *layer_part = c.used; /* zeroed before each layer's backward */
  float *dx_a = carve(&c, BT * D), *dx_b = carve(&c, BT * D);
  size_t R = d->decoder ? BT : (size_t)B, K = d->decoder ? (size_t)d->V : (size_t)d->K;
  float *dlogits = carve(&c, R * K);
  if (m) {
    m->dx_a = dx_a;
    m->dx_b = dx_b;
    m->dlogits = dlogits;
  }
  return c.used;
}

static size_t scratch_floats(const lv_dims *d, int64_t B, int64_t L) {
  size_t s = ema_scratch_floats(B, L, d->D, d->N, !d->decoder);
  s = max_sz(s, vq_scratch_floats(B * L, d->S));
  s = max_sz(s, vq_attn_scratch_floats(B, L, d->C, d->E, d->S, d->decoder ? LV_MODE_DECODER : LV_MODE_ENCODER));
  if (!d->decoder) s = max_sz(s, head_scratch_floats(B, d->D));
  return s;
}

/* The plan's arithmetic is size_t products of B*L with the model's widths: refuse a micro-batch so
 * large that any of them could wrap (a wrapped size is a small arena and writes past its end). Every
 * buffer holds at most B*L x 2w floats, w the widest per-token width (the decoder's logits V, the
 * projections M and F, the codebook distances S, the attention window 2C) or the EMA state 2 D' N, and
 * there are fewer than 64 per layer: this over-estimate passes 2^62 only when B*L x w passes 2^48
 * floats, a petabyte. The widths themselves are bounded by lv_layout_build (params.h). */
static void plan_check(const lv_dims *d, int64_t B, int64_t L) {
  const int64_t widths[] = {d->decoder ? d->V : 1, 2 * d->D + d->Z + d->E, d->F, d->S, 2 * d->C,
                            2 * (2 * d->D + 16) * d->N};
  double w = 1;
  for (size_t i = 0; i < sizeof widths / sizeof widths[0]; i++)
    if ((double)widths[i] > w) w = (double)widths[i];
  double bound = (double)B * (double)L * 2.0 * w * 64.0 * (double)(d->n_layers + 2);
  if (B < 1 || L < 1 || bound > 0x1p62)
    DIE_INPUT("model: a micro-batch of %lld sequences x %lld tokens is too large to plan for this model "
              "(reduce train.batch_size per rank or data.seq_len)", (long long)B, (long long)L);
}

lv_model_mem lv_model_plan(const lv_dims *d, int64_t B, int64_t L) {
  plan_check(d, B, L);
  lv_model_mem mem;
  size_t layer_part = 0;
  mem.act = carve_acts(d, B, L, NULL, NULL, &mem.per_layer_act);
  mem.grad_scratch = carve_grads(d, B, L, NULL, NULL, &layer_part);
  mem.scratch = scratch_floats(d, B, L);
  return mem;
}

size_t lv_model_plan_total(const lv_model_mem *mem, size_t param_floats, size_t state_floats, int optimizer_copies) {
  return param_floats * (size_t)(2 + optimizer_copies) + state_floats + mem->act + mem->grad_scratch + mem->scratch;
}

static double mib(size_t floats) { return (double)floats * 4.0 / (1024.0 * 1024.0); }

void lv_model_print_plan(FILE *f, const lv_dims *d, int64_t B, int64_t L, size_t param_floats, size_t state_floats,
                         int optimizer_copies) {
  lv_model_mem mem = lv_model_plan(d, B, L);
  size_t total = lv_model_plan_total(&mem, param_floats, state_floats, optimizer_copies);
  fprintf(f, "memory plan (per rank, micro-batch %lld x %lld tokens):\n", (long long)B, (long long)L);
  fprintf(f, "  parameters          %10.1f MiB\n", mib(param_floats));
  fprintf(f, "  gradients           %10.1f MiB\n", mib(param_floats));
  fprintf(f, "  optimizer state     %10.1f MiB  (%d copies)\n", mib(param_floats * (size_t)optimizer_copies),
          optimizer_copies);
  fprintf(f, "  codebooks           %10.1f MiB\n", mib(state_floats));
  fprintf(f, "  activations         %10.1f MiB  (%.1f MiB per layer, %.0f bytes per token per layer)\n", mib(mem.act),
          mib(mem.per_layer_act), (double)mem.per_layer_act * 4.0 / (double)(B * L));
  fprintf(f, "  activation grads    %10.1f MiB\n", mib(mem.grad_scratch));
  fprintf(f, "  layer scratch       %10.1f MiB\n", mib(mem.scratch));
  fprintf(f, "  total               %10.1f MiB\n", mib(total));
}

void lv_model_proj_descs(linear_desc out[LV_N_PROJ], const lv_dims *d, int64_t rows) {
  out[LV_PROJ_V] = (linear_desc){.rows = rows, .in = d->D, .out = d->E, .bias = 1};
  out[LV_PROJ_MX] = (linear_desc){.rows = rows, .in = d->D, .out = 2 * d->D + d->Z + d->E, .bias = 1};
  out[LV_PROJ_H] = (linear_desc){.rows = rows, .in = d->E, .out = d->D, .bias = 1};
  out[LV_PROJ_FC1] = (linear_desc){.rows = rows, .in = d->D, .out = d->F, .bias = 1};
  out[LV_PROJ_FC2] = (linear_desc){.rows = rows, .in = d->F, .out = d->D, .bias = 1};
}

/* The model's plans of the projections, in LV_PROJ_* order. */
static void proj_plans(linear_plan *out[LV_N_PROJ], const lv_model *m) {
  lv_model *w = (lv_model *)m; /* the caller decides whether it writes through them */
  out[LV_PROJ_V] = &w->v_proj;
  out[LV_PROJ_MX] = &w->mx_proj;
  out[LV_PROJ_H] = &w->h_proj;
  out[LV_PROJ_FC1] = &w->fc1;
  out[LV_PROJ_FC2] = &w->fc2;
}

lv_model *lv_model_create(const lv_layout *lay, int64_t B, int64_t L, const dnn_ctx *ctx) {
  const lv_dims *d = &lay->dims;
  if (L % d->C != 0) DIE("lv_model_create: L = %lld is not a multiple of the chunk size %lld", (long long)L,
                         (long long)d->C);
  lv_model *m = calloc(1, sizeof *m);
  CHECK_ALLOC(m);
  m->d = *d;
  m->lay = lay;
  m->ctx = ctx;
  m->B = B;
  m->L = L;
  m->BT = B * L;
  linear_desc pd[LV_N_PROJ];
  lv_model_proj_descs(pd, d, B * L);
  m->M = pd[LV_PROJ_MX].out;
  m->mem = lv_model_plan(d, B, L);
  m->act_arena = lv_alloc_floats(m->mem.act);
  carve_acts(d, B, L, m->act_arena, m, NULL);
  size_t layer_part = 0;
  float *g = lv_alloc_floats(m->mem.grad_scratch);
  carve_grads(d, B, L, g, m, &layer_part);
  m->grad_arena = g;
  m->mem.grad_scratch = layer_part; /* what lv_block_backward zeroes */
  m->scratch = lv_alloc_floats(m->mem.scratch);
  const int64_t BT = m->BT;
  linear_plan *pp[LV_N_PROJ];
  proj_plans(pp, m);
  for (int j = 0; j < LV_N_PROJ; j++) linear_plan_init(pp[j], ctx, pd[j]);
  vq_plan_init(&m->vq, ctx, BT, d->Z, d->S);
  vq_attn_plan_init(&m->attn, ctx, B, L, d->C, d->Z, d->E, d->S, d->decoder ? LV_MODE_DECODER : LV_MODE_ENCODER);
  if (d->decoder)
    lm_head_plan_init(&m->lm, ctx, BT, d->D, d->V);
  else
    head_plan_init(&m->head, ctx, B, L, d->D, d->K);
  return m;
}

void lv_model_free(lv_model *m) {
  if (!m) return;
  linear_plan *pp[LV_N_PROJ];
  proj_plans(pp, m);
  for (int j = 0; j < LV_N_PROJ; j++) linear_plan_free(pp[j]);
  vq_plan_free(&m->vq);
  vq_attn_plan_free(&m->attn);
  if (m->d.decoder)
    lm_head_plan_free(&m->lm);
  else
    head_plan_free(&m->head);
  free(m->act_arena);
  free(m->grad_arena);
  free(m->scratch);
  free(m);
}

void lv_model_set_codebooks(lv_model *m, const float *state) {
  const lv_dims *d = &m->d;
  for (int i = 0; i < d->n_layers; i++)
    vq_codebook(m->cb + (size_t)i * (size_t)(d->S * d->Z), state + m->lay->layer[i].c_sum,
                state + m->lay->layer[i].c_count, d->S, d->Z);
}

static dropout_cfg embed_drop(char *dom, size_t cap, const lv_fwd_opts *o, const lv_batch *b) {
  dropout_cfg c = {o->training ? o->dropout : 0.0f, o->seed, dropout_domain(dom, cap, -1, DROPOUT_SITE_EMBED), o->step,
                   b->sample0};
  return c;
}

void lv_model_forward(lv_model *m, const float *params, const lv_batch *b, const lv_fwd_opts *o, lv_fwd_stats *st,
                      double *n_s, double *key_sums) {
  const lv_dims *d = &m->d;
  const lv_layout *lay = m->lay;
  const int64_t BT = m->BT, D = d->D;
  memset(st, 0, sizeof *st);
  if (!n_s || !key_sums) { /* evaluation: statistics go to a throwaway buffer */
    n_s = m->stat_ns;
    key_sums = m->stat_keys;
  }
  double valid = 0;
  for (int64_t t = 0; t < BT; t++) {
    m->mask_f[t] = b->mask[t] ? 1.0f : 0.0f;
    valid += m->mask_f[t];
    if (d->decoder) m->tmask_f[t] = b->target_mask[t] ? 1.0f : 0.0f;
  }
  st->valid = valid;
  char dom[64];
  dropout_cfg dc = embed_drop(dom, sizeof dom, o, b);
  float *x0 = m->la[0].x;
  embed_forward(x0, b->tokens, m->mask_f, params + lay->embed, BT, d->V, D);
  dropout_forward(x0, x0, &dc, m->B, m->L, D);
  for (int i = 0; i < d->n_layers; i++)
    lv_block_forward(m, i, params, b, o, st, n_s, key_sums, i + 1 < d->n_layers ? m->la[i + 1].x : m->x_out);
  if (d->prenorm)
    norm_forward(d->norm, m->xf, m->x_out, params + lay->final_norm_w,
                 lay->final_norm_b == SIZE_MAX ? NULL : params + lay->final_norm_b, m->ff_saved, BT, D);
  xent_stats xs;
  if (d->decoder) {
    const float *Emb = params + (d->tie_embeddings ? lay->embed : lay->lm_head);
    lm_head_forward(&m->lm, m->ctx, m->logits, m->xf, Emb);
    xent_forward(&xs, m->target_nll, m->logits, b->targets, m->tmask_f, m->xent_saved, BT, d->V);
  } else {
    head_forward(&m->head, m->ctx, m->logits, m->xf, m->mask_f, params + lay->head_dense_w, params + lay->head_dense_b,
                 params + lay->head_out_w, params + lay->head_out_b, m->head_saved);
    xent_forward(&xs, NULL, m->logits, b->labels, NULL, m->xent_saved, m->B, d->K);
  }
  st->task_sum = xs.loss_sum;
  st->task_count = (double)xs.count;
  st->correct = (double)xs.correct;
}

/* First float of layer i's parameters (its mixer norm comes first in the layout). */
static size_t layer_start_offset(const lv_layout *lay, int i) { return lay->layer[i].mnorm_w; }
/* One past layer i's parameters: the start of the next layer, or of what follows the layers. */
static size_t layer_end_offset(const lv_layout *lay, int i) {
  if (i + 1 < lay->dims.n_layers) return layer_start_offset(lay, i + 1);
  const lv_tensor *last = NULL;
  for (int k = 0; k < lay->n_params; k++) /* the layer's last tensor is fc2.bias */
    if (lay->params[k].offset >= lay->layer[i].fc2_b) { last = &lay->params[k]; break; }
  return last->offset + (size_t)((last->numel + 15) / 16 * 16);
}

void lv_model_backward(lv_model *m, const float *params, float *grads, const lv_batch *b, const lv_fwd_opts *o,
                       double task_scale, double commit_scale, double commit_weight) {
  const lv_dims *d = &m->d;
  const lv_layout *lay = m->lay;
  const int64_t BT = m->BT, D = d->D;
  const size_t nd = sizeof(float) * (size_t)(BT * D);
  int64_t R = d->decoder ? BT : m->B, K = d->decoder ? d->V : d->K;
  lv_zero_floats(m->dlogits, (size_t)(R * K));
  lv_zero_floats(m->dx_a, (size_t)(BT * D));
  if (d->decoder) {
    xent_backward(m->dlogits, task_scale, m->logits, b->targets, m->tmask_f, m->xent_saved, R, K);
    size_t eoff = d->tie_embeddings ? lay->embed : lay->lm_head;
    lm_head_backward(&m->lm, m->ctx, m->dx_a, grads + eoff, m->dlogits, m->xf, params + eoff);
  } else {
    xent_backward(m->dlogits, task_scale, m->logits, b->labels, NULL, m->xent_saved, R, K);
    head_backward(&m->head, m->ctx, m->dx_a, grads + lay->head_dense_w, grads + lay->head_dense_b,
                  grads + lay->head_out_w, grads + lay->head_out_b, m->dlogits, m->mask_f, params + lay->head_dense_w,
                  params + lay->head_out_w, m->head_saved, m->scratch);
  }
  float *cur = m->dx_a, *other = m->dx_b;
  const size_t layers_end = layer_end_offset(lay, d->n_layers - 1);
  if (d->prenorm) {
    memset(other, 0, nd);
    norm_backward(d->norm, other, grads + lay->final_norm_w,
                  lay->final_norm_b == SIZE_MAX ? NULL : grads + lay->final_norm_b, cur, m->x_out,
                  params + lay->final_norm_w, m->ff_saved, BT, D);
    float *t = cur;
    cur = other;
    other = t;
  }
  if (m->ready_fn) m->ready_fn(m->ready_ctx, layers_end); /* final norm, heads (and lm_head) are done */
  const double commit_w = commit_weight * commit_scale;
  for (int i = d->n_layers - 1; i >= 0; i--) {
    memset(other, 0, nd);
    lv_block_backward(m, i, params, grads, o, b, commit_w, cur, other);
    if (m->ready_fn) m->ready_fn(m->ready_ctx, layer_start_offset(lay, i));
    float *t = cur;
    cur = other;
    other = t;
  }
  /* x0 = dropout(embed(tokens) * m) */
  char dom[64];
  dropout_cfg dc = embed_drop(dom, sizeof dom, o, b);
  memset(other, 0, nd);
  dropout_backward(other, cur, &dc, m->B, m->L, D);
  embed_backward(grads + lay->embed, other, b->tokens, m->mask_f, BT, d->V, D);
  if (m->ready_fn) m->ready_fn(m->ready_ctx, 0);
}

void lv_model_set_grad_hook(lv_model *m, lv_grad_ready_fn fn, void *ctx) {
  m->ready_fn = fn;
  m->ready_ctx = ctx;
}

static int has_nonfinite(const float *x, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (!isfinite(x[i])) return 1;
  return 0;
}

int lv_model_find_nonfinite(const lv_model *m, char *where, size_t cap) {
  const lv_dims *d = &m->d;
  const size_t BT = (size_t)m->BT, D = (size_t)d->D, Z = (size_t)d->Z, E = (size_t)d->E, F = (size_t)d->F;
  if (has_nonfinite(m->la[0].x, BT * D)) {
    snprintf(where, cap, "embedding output");
    return 1;
  }
  for (int i = 0; i < d->n_layers; i++) {
    const lv_layer_act *A = &m->la[i];
    struct { const char *name; const float *p; size_t n; } sites[] = {
        {"mixer norm", A->xn, BT * D}, {"v_proj", A->v, BT * E},  {"EMA", A->mx, BT * D},
        {"mx_proj", A->base, BT * (size_t)m->M}, {"queries", A->q, BT * Z}, {"keys", A->k, BT * Z},
        {"attention", A->O, BT * E}, {"h_proj", A->h, BT * D},  {"gated residual", A->y, BT * D},
        {"fc1", A->f1, BT * F},     {"ffn output", A->s2, BT * D}};
    for (size_t k = 0; k < sizeof sites / sizeof sites[0]; k++)
      if (has_nonfinite(sites[k].p, sites[k].n)) {
        snprintf(where, cap, "layer %d %s", i, sites[k].name);
        return 1;
      }
  }
  if (has_nonfinite(m->xf, BT * D)) {
    snprintf(where, cap, "final norm");
    return 1;
  }
  size_t R = d->decoder ? BT : (size_t)m->B, K = d->decoder ? (size_t)d->V : (size_t)d->K;
  if (has_nonfinite(m->logits, R * K)) {
    snprintf(where, cap, "logits");
    return 1;
  }
  return 0;
}

const int32_t *lv_model_codes(const lv_model *m, int layer) { return m->la[layer].code; }
const float *lv_model_keys(const lv_model *m, int layer) { return m->la[layer].k; }
const float *lv_model_logits(const lv_model *m) { return m->logits; }
const double *lv_model_target_nll(const lv_model *m) { return m->target_nll; }

/* One forward + backward of a Linear plan (dx and dW). */
static double linear_step_flops(const linear_plan *p) {
  return linear_forward_flops(&p->d) + linear_backward_flops(&p->d);
}

lv_model_flops lv_model_count_flops(const lv_model *m) {
  const lv_dims *d = &m->d;
  const int far = d->far_attention;
  lv_model_flops f = {0};
  linear_plan *pp[LV_N_PROJ];
  proj_plans(pp, m);
  for (int j = 0; j < LV_N_PROJ; j++) f.proj += linear_step_flops(pp[j]);
  f.vq = mm_flops(&m->vq.dots.d);
  f.attn_recompute = vq_attn_recompute_flops(&m->attn, far);
  f.attn = vq_attn_forward_flops(&m->attn, far) + vq_attn_backward_flops(&m->attn, far) - f.attn_recompute;
  const double nl = (double)d->n_layers; /* every layer runs the same plans */
  f.proj *= nl;
  f.vq *= nl;
  f.attn *= nl;
  f.attn_recompute *= nl;
  f.head = d->decoder ? linear_step_flops(&m->lm.lin)
                      : linear_step_flops(&m->head.dense) + linear_step_flops(&m->head.out);
  f.model = f.proj + f.vq + f.attn + f.head;
  return f;
}
