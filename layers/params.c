/* Parameter/state layout and spec initialization. */
#include "layers/params.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "trainer/base/check.h"
#include "trainer/base/rng.h"

typedef struct {
  lv_tensor *t;
  int n, cap;
  size_t floats;
  int overflow; /* the first tensor whose size did not fit (the limits below make this impossible) */
} table;

static size_t add(table *tb, lv_init init, double std, int decay, int64_t d0, int64_t d1, const char *fmt, ...) {
  if (tb->n == tb->cap) {
    tb->cap = tb->cap ? 2 * tb->cap : 64;
    tb->t = realloc(tb->t, sizeof(lv_tensor) * (size_t)tb->cap);
    CHECK_ALLOC(tb->t);
  }
  lv_tensor *t = &tb->t[tb->n++];
  memset(t, 0, sizeof *t);
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(t->name, sizeof t->name, fmt, ap);
  va_end(ap);
  t->ndim = d1 > 0 ? 2 : 1;
  t->shape[0] = d0;
  t->shape[1] = d1 > 0 ? d1 : 0;
  t->offset = tb->floats;
  t->init = init;
  t->std = std;
  t->decay = decay;
  /* 16-float alignment (64 bytes) for every tensor: aligned vector loads and no false sharing.
   * Checked arithmetic: a size that wraps would make a small arena and writes past it. */
  int64_t padded;
  if (__builtin_mul_overflow(d0, d1 > 0 ? d1 : 1, &t->numel) || __builtin_add_overflow(t->numel, 15, &padded) ||
      __builtin_add_overflow(tb->floats, (size_t)(padded / 16 * 16), &tb->floats)) {
    if (!tb->overflow) tb->overflow = tb->n;
    t->numel = 0;
  }
  return t->offset;
}

/* Norm parameters of kind dims->norm under prefix; writes offsets (SIZE_MAX if absent). */
static void add_norm(table *tb, const lv_dims *d, const char *prefix, size_t *w, size_t *b) {
  *w = *b = SIZE_MAX;
  if (d->norm == NORM_SCALENORM) {
    *w = add(tb, INIT_ONE, 0, 0, 1, 0, "%s.scale", prefix);
  } else {
    *w = add(tb, INIT_ONE, 0, 0, d->D, 0, "%s.weight", prefix);
    if (d->norm == NORM_LAYERNORM) *b = add(tb, INIT_ZERO, 0, 0, d->D, 0, "%s.bias", prefix);
  }
}

int lv_layout_build(lv_layout *lay, const lv_dims *d, char *err, size_t cap) {
  memset(lay, 0, sizeof *lay);
  lay->dims = *d;
  if (d->n_layers < 1 || d->n_layers > LV_MAX_LAYERS) {
    snprintf(err, cap, "model.n_layers: %lld is outside [1, %d]", (long long)d->n_layers, LV_MAX_LAYERS);
    return 1;
  }
  if (d->V < 1 || d->D < 1 || d->Z < 1 || d->E < 1 || d->N < 1 || d->S < 1 || d->C < 1 || d->F < 1 ||
      (!d->decoder && d->K < 2)) {
    snprintf(err, cap, "model sizes must be positive (and an encoder needs >= 2 classes)");
    return 1;
  }
  /* The limits (params.h) by the config key that sets each size; V and K may come from the dataset. */
  const struct { const char *field; int64_t v, max; } lim[] = {
      {"model.d_model", d->D, LV_MAX_WIDTH},        {"model.z_dim", d->Z, LV_MAX_WIDTH},
      {"model.v_dim", d->E, LV_MAX_WIDTH},          {"model.chunk_size", d->C, LV_MAX_WIDTH},
      {"model.ema_dim", d->N, LV_MAX_EMA_DIM},      {"model.codebook_size", d->S, LV_MAX_CODEBOOK},
      {"model.ffn_dim (0: 2 * d_model)", d->F, LV_MAX_FFN},
      {"model.vocab_size (0: the dataset's vocab_size)", d->V, LV_MAX_VOCAB},
      {"model.n_classes (0: the dataset's n_classes)", d->decoder ? 0 : d->K, LV_MAX_CLASSES},
  };
  for (size_t i = 0; i < sizeof lim / sizeof lim[0]; i++)
    if (lim[i].v > lim[i].max) {
      snprintf(err, cap, "%s: %lld is more than the limit %lld", lim[i].field, (long long)lim[i].v,
               (long long)lim[i].max);
      return 1;
    }
  table p = {0}, s = {0};
  const double lin = 0.02;
  int64_t D = d->D, Dp = lv_dims_dprime(d), M = 2 * D + d->Z + d->E;
  lay->embed = add(&p, INIT_NORMAL, 1.0 / sqrt((double)D), 1, d->V, D, "embed.weight");
  for (int i = 0; i < d->n_layers; i++) {
    lv_layer_offsets *o = &lay->layer[i];
    char pre[64];
    snprintf(pre, sizeof pre, "layers.%d.mixer.norm", i);
    add_norm(&p, d, pre, &o->mnorm_w, &o->mnorm_b);
    o->delta = add(&p, INIT_NORMAL, 0.2, 0, Dp, d->N, "layers.%d.mixer.ema.delta", i);
    o->alpha = add(&p, INIT_NORMAL, 0.2, 0, Dp, d->N, "layers.%d.mixer.ema.alpha", i);
    o->beta = add(&p, INIT_ALT_SIGN_NORMAL, 0.02, 0, Dp, d->N, "layers.%d.mixer.ema.beta", i);
    o->gamma = add(&p, INIT_NORMAL, 1.0, 0, Dp, d->N, "layers.%d.mixer.ema.gamma", i);
    o->omega = add(&p, INIT_NORMAL, 1.0, 0, D, 0, "layers.%d.mixer.ema.omega", i);
    o->v_w = add(&p, INIT_NORMAL, lin, 1, d->E, D, "layers.%d.mixer.v_proj.weight", i);
    o->v_b = add(&p, INIT_ZERO, 0, 0, d->E, 0, "layers.%d.mixer.v_proj.bias", i);
    o->mx_w = add(&p, INIT_NORMAL, lin, 1, M, D, "layers.%d.mixer.mx_proj.weight", i);
    o->mx_b = add(&p, INIT_ZERO, 0, 0, M, 0, "layers.%d.mixer.mx_proj.bias", i);
    o->h_w = add(&p, INIT_NORMAL, lin, 1, D, d->E, "layers.%d.mixer.h_proj.weight", i);
    o->h_b = add(&p, INIT_ZERO, 0, 0, D, 0, "layers.%d.mixer.h_proj.bias", i);
    o->qk_gamma = add(&p, INIT_ONE_PLUS_NORMAL, lin, 0, 2, d->Z, "layers.%d.mixer.qk_gamma", i);
    o->q_beta = add(&p, INIT_ZERO, 0, 0, d->Z, 0, "layers.%d.mixer.q_beta", i);
    o->rel_pos = add(&p, INIT_NORMAL, lin, 0, d->decoder ? 2 * d->C : 2 * d->C - 1, 0, "layers.%d.mixer.rel_pos_bias", i);
    o->c_sum = add(&s, INIT_UNIT_ROWS, pow((double)d->Z, 0.25), 0, d->S, d->Z, "layers.%d.mixer.codebook.c_sum", i);
    o->c_count = add(&s, INIT_ONE, 0, 0, d->S, 0, "layers.%d.mixer.codebook.c_count", i);
    snprintf(pre, sizeof pre, "layers.%d.ffn.norm", i);
    add_norm(&p, d, pre, &o->fnorm_w, &o->fnorm_b);
    o->fc1_w = add(&p, INIT_NORMAL, lin, 1, d->F, D, "layers.%d.ffn.fc1.weight", i);
    o->fc1_b = add(&p, INIT_ZERO, 0, 0, d->F, 0, "layers.%d.ffn.fc1.bias", i);
    o->fc2_w = add(&p, INIT_NORMAL, lin, 1, D, d->F, "layers.%d.ffn.fc2.weight", i);
    o->fc2_b = add(&p, INIT_ZERO, 0, 0, D, 0, "layers.%d.ffn.fc2.bias", i);
  }
  lay->final_norm_w = lay->final_norm_b = SIZE_MAX;
  if (d->prenorm) add_norm(&p, d, "final_norm", &lay->final_norm_w, &lay->final_norm_b);
  lay->head_dense_w = lay->head_dense_b = lay->head_out_w = lay->head_out_b = lay->lm_head = SIZE_MAX;
  if (!d->decoder) {
    lay->head_dense_w = add(&p, INIT_NORMAL, lin, 1, D, D, "head.dense.weight");
    lay->head_dense_b = add(&p, INIT_ZERO, 0, 0, D, 0, "head.dense.bias");
    lay->head_out_w = add(&p, INIT_NORMAL, lin, 1, d->K, D, "head.out.weight");
    lay->head_out_b = add(&p, INIT_ZERO, 0, 0, d->K, 0, "head.out.bias");
  } else if (!d->tie_embeddings) {
    lay->lm_head = add(&p, INIT_NORMAL, lin, 1, d->V, D, "lm_head.weight");
  }
  if (p.overflow || s.overflow) {
    const lv_tensor *t = p.overflow ? &p.t[p.overflow - 1] : &s.t[s.overflow - 1];
    snprintf(err, cap, "model: the size of %s (%lld x %lld) overflows", t->name, (long long)t->shape[0],
             (long long)t->shape[1]);
    free(p.t);
    free(s.t);
    return 1;
  }
  lay->params = p.t;
  lay->n_params = p.n;
  lay->n_param_floats = p.floats;
  lay->state = s.t;
  lay->n_state = s.n;
  lay->n_state_floats = s.floats;
  return 0;
}

void lv_layout_free(lv_layout *lay) {
  free(lay->params);
  free(lay->state);
  lay->params = lay->state = NULL;
}

static void init_tensor(const lv_tensor *t, uint64_t seed, float *x) {
  char dom[LV_NAME_MAX + 8];
  snprintf(dom, sizeof dom, "init/%s", t->name);
  rng_stream rs = rng_make(seed, dom, 0, 0);
  int64_t last = t->ndim == 2 ? t->shape[1] : t->shape[0];
  switch (t->init) {
    case INIT_ZERO:
      for (int64_t i = 0; i < t->numel; i++) x[i] = 0.0f;
      break;
    case INIT_ONE:
      for (int64_t i = 0; i < t->numel; i++) x[i] = 1.0f;
      break;
    case INIT_NORMAL:
      for (int64_t i = 0; i < t->numel; i++) x[i] = (float)(t->std * rng_normal(&rs, (uint64_t)i));
      break;
    case INIT_ONE_PLUS_NORMAL:
      for (int64_t i = 0; i < t->numel; i++) x[i] = (float)(1.0 + t->std * rng_normal(&rs, (uint64_t)i));
      break;
    case INIT_ALT_SIGN_NORMAL:
      for (int64_t i = 0; i < t->numel; i++)
        x[i] = (float)(((i % last) % 2 == 0 ? 1.0 : -1.0) + t->std * rng_normal(&rs, (uint64_t)i));
      break;
    case INIT_UNIT_ROWS:
      for (int64_t r = 0; r < t->shape[0]; r++) {
        double nrm = 0;
        for (int64_t c = 0; c < last; c++) {
          double z = rng_normal(&rs, (uint64_t)(r * last + c));
          x[r * last + c] = (float)z;
          nrm += z * z;
        }
        double sc = t->std / sqrt(nrm > 0 ? nrm : 1.0);
        for (int64_t c = 0; c < last; c++) x[r * last + c] = (float)(x[r * last + c] * sc);
      }
      break;
  }
}

void lv_layout_init(const lv_layout *lay, uint64_t seed, float *params, float *state) {
  for (int i = 0; i < lay->n_params; i++) init_tensor(&lay->params[i], seed, params + lay->params[i].offset);
  for (int i = 0; i < lay->n_state; i++) init_tensor(&lay->state[i], seed, state + lay->state[i].offset);
}

const lv_tensor *lv_layout_find(const lv_layout *lay, const char *name, int *is_state) {
  for (int i = 0; i < lay->n_params; i++)
    if (!strcmp(lay->params[i].name, name)) { if (is_state) *is_state = 0; return &lay->params[i]; }
  for (int i = 0; i < lay->n_state; i++)
    if (!strcmp(lay->state[i].name, name)) { if (is_state) *is_state = 1; return &lay->state[i]; }
  return NULL;
}
