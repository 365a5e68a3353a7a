/* Whole model: (a) end-to-end finite-difference check of the double reference model
 * (layers/ref/model_ref.h) for every parameter entry, codes fixed and the straight-through FD mode;
 * (b) the fast float32 model (layers/model.h) against the reference: loss, logits, statistics, codes
 * (near-ties excluded) and every gradient tensor, per the spec's "Agreement"; (c) encoder output of a
 * sequence alone equals its output padded inside a batch, and decoder logits are causal and blind to
 * padding (fast and reference); (d) bad token / label / target ids die with a clear message (run in a
 * child process). Four configurations: encoder prenorm layernorm, encoder postnorm scalenorm,
 * decoder prenorm rmsnorm tied, decoder postnorm layernorm untied with far attention off. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "layers/model.h"
#include "layers/ref/model_ref.h"
#include "layers/ref/vq_ref.h"
#include "tests/gradcheck.h"
#include "tests/test_util.h"

typedef struct {
  const char *name;
  lv_dims d;
} cfg;

static lv_dims tiny(int decoder, int prenorm, int norm, int tie, int far) {
  return (lv_dims){.decoder = decoder, .prenorm = prenorm, .norm = norm, .tie_embeddings = tie,
                   .far_attention = far, .V = 11, .K = 3, .D = 8, .Z = 4, .E = 8, .N = 2, .S = 4, .C = 4,
                   .F = 16, .n_layers = 2};
}

static void *xalloc(size_t n) { void *p = calloc(n ? n : 1, 1); if (!p) abort(); return p; }
#define NEW(T, n) ((T *)xalloc(sizeof(T) * (size_t)(n)))

static uint32_t rnd(uint64_t *s) { *s ^= *s << 13; *s ^= *s >> 7; *s ^= *s << 17; return (uint32_t)(*s >> 11); }

/* ---- batches ------------------------------------------------------------------------------------ */
typedef struct {
  int64_t B, L;
  int32_t *tokens, *targets, *labels;
  uint8_t *mask, *tmask;
  lv_batch b;
  double task_scale, commit_scale;
} tbatch;

/* lens[b] valid tokens per sample: encoder of its L inputs; decoder of its L+1 tokens t_0..t_L (the
 * inputs are t_0..t_{L-1} with m_0..m_{L-1}, the targets t_1..t_L with m_1..m_L). Padded positions hold random ids in [0, V): masking,
 * not the pad value, must make them invisible. */
static void batch_make(tbatch *t, const lv_dims *d, int64_t B, int64_t L, const int64_t *lens, uint64_t seed) {
  memset(t, 0, sizeof *t);
  t->B = B; t->L = L;
  t->tokens = NEW(int32_t, B * L); t->mask = NEW(uint8_t, B * L);
  t->targets = NEW(int32_t, B * L); t->tmask = NEW(uint8_t, B * L); t->labels = NEW(int32_t, B);
  uint64_t s = seed * 0x9E3779B97F4A7C15ull + 7;
  double count = 0, valid = 0;
  for (int64_t b = 0; b < B; b++) {
    int32_t full[256];
    for (int64_t i = 0; i <= L; i++) full[i] = (int32_t)(rnd(&s) % (uint32_t)d->V);
    for (int64_t i = 0; i < L; i++) {
      t->tokens[b * L + i] = full[i];
      t->mask[b * L + i] = i < lens[b];
      t->targets[b * L + i] = full[i + 1];
      t->tmask[b * L + i] = d->decoder && i + 1 < lens[b];
      valid += t->mask[b * L + i];
      count += t->tmask[b * L + i];
    }
    t->labels[b] = (int32_t)(rnd(&s) % (uint32_t)d->K);
  }
  t->b = (lv_batch){.tokens = t->tokens, .mask = t->mask, .targets = d->decoder ? t->targets : NULL,
                    .target_mask = d->decoder ? t->tmask : NULL, .labels = d->decoder ? NULL : t->labels};
  t->task_scale = 1.0 / (d->decoder ? count : (double)B);
  t->commit_scale = 1.0 / valid;
}

static void batch_free(tbatch *t) {
  free(t->tokens); free(t->mask); free(t->targets); free(t->tmask); free(t->labels);
}

/* ---- parameters ---------------------------------------------------------------------------------- */
typedef struct {
  lv_layout lay;
  float *pf, *sf;   /* float params / state */
  double *pd, *sd;  /* the same values in double */
} model_vals;

/* Spec init with `seed`; with bump > 0 every parameter gets + U(-bump, bump) (non-zero biases, norm
 * weights != 1, larger activations: every path of the network carries signal), and c_count varies
 * in [0.6, 1.8] so that Cb = c_sum / c_count matters. */
static void vals_make(model_vals *v, const lv_dims *d, uint64_t seed, double bump) {
  char err[256];
  if (lv_layout_build(&v->lay, d, err, sizeof err)) { fprintf(stderr, "layout: %s\n", err); exit(1); }
  size_t np = v->lay.n_param_floats, ns = v->lay.n_state_floats;
  v->pf = NEW(float, np); v->sf = NEW(float, ns); v->pd = NEW(double, np); v->sd = NEW(double, ns);
  lv_layout_init(&v->lay, seed, v->pf, v->sf);
  if (bump > 0) {
    double *noise = NEW(double, np);
    gc_fill(noise, (int64_t)np, (unsigned)seed + 101, bump);
    for (size_t i = 0; i < np; i++) v->pf[i] += (float)noise[i];
    free(noise);
    for (int64_t i = 0; i < d->n_layers; i++)
      for (int64_t s = 0; s < d->S; s++) v->sf[v->lay.layer[i].c_count + s] = (float)(0.6 + 0.4 * (double)(s % 4));
  }
  for (size_t i = 0; i < np; i++) v->pd[i] = v->pf[i];
  for (size_t i = 0; i < ns; i++) v->sd[i] = v->sf[i];
}

static void vals_free(model_vals *v) {
  free(v->pf); free(v->sf); free(v->pd); free(v->sd);
  lv_layout_free(&v->lay);
}

static double ref_loss(const model_vals *v, const double *pd, const tbatch *t, double cw, const lv_ref_io *io,
                       double *grads, lv_ref_stats *st) {
  return lv_model_loss_ref(&v->lay, pd, v->sd, &t->b, t->B, t->L, NULL, t->task_scale, t->commit_scale, cw, io,
                           grads, st);
}

/* ---- (a) finite differences ---------------------------------------------------------------------- */
typedef struct {
  const model_vals *v;
  double *pd;
  const tbatch *t;
  const int32_t *codes;
  const double *k0;
  double cw;
} fd_ctx;

static double fd_loss(void *p) {
  fd_ctx *f = p;
  lv_ref_io io = {.force_codes = f->codes, .ste_k0 = f->k0};
  return ref_loss(f->v, f->pd, f->t, f->cw, &io, NULL, NULL);
}

/* Every entry of every trained tensor. err = |fd - an| / max(|fd| + |an|, 1e-7), as tests/gradcheck.h. */
static double fd_check(const cfg *c, uint64_t seed) {
  const lv_dims *d = &c->d;
  model_vals v;
  vals_make(&v, d, seed, 0.25);
  const int64_t B = 2, L = 12, BT = B * L, lens[2] = {L + d->decoder, 7};
  tbatch t;
  batch_make(&t, d, B, L, lens, seed);
  const double cw = 0.1; /* large enough that the commitment gradient is visible next to the task's */
  int32_t *codes = NEW(int32_t, d->n_layers * BT);
  double *k0 = NEW(double, d->n_layers * BT * d->Z), *grad = NEW(double, v.lay.n_param_floats);
  lv_ref_io io0 = {.codes_out = codes, .keys_out = k0};
  double l0 = ref_loss(&v, v.pd, &t, cw, &io0, NULL, NULL);
  lv_ref_io io1 = {.force_codes = codes, .ste_k0 = k0};
  double l1 = ref_loss(&v, v.pd, &t, cw, &io1, grad, NULL);
  EXPECT(l1 == l0, "%s: FD mode changes the loss at the unperturbed point: %.17g vs %.17g", c->name, l1, l0);
  for (int64_t i = 0; i < d->n_layers; i++) { /* the batch must exercise several codes per layer */
    int used[64] = {0}, n_used = 0;
    for (int64_t r = 0; r < BT; r++) used[codes[i * BT + r]] = 1;
    for (int64_t s = 0; s < d->S; s++) n_used += used[s];
    EXPECT(n_used >= 2, "%s: layer %lld uses %d codes", c->name, (long long)i, n_used);
  }
  fd_ctx f = {.v = &v, .pd = v.pd, .t = &t, .codes = codes, .k0 = k0, .cw = cw};
  const double h = getenv("FDH") ? atof(getenv("FDH")) : 1e-5, floor_ = 1e-7;
  double worst = 0;
  const char *worst_name = "";
  int64_t worst_i = -1, n = 0;
  for (int p = 0; p < v.lay.n_params; p++) {
    const lv_tensor *ts = &v.lay.params[p];
    double *x = v.pd + ts->offset;
    const double *g = grad + ts->offset;
    for (int64_t i = 0; i < ts->numel; i++, n++) {
      double x0 = x[i], l[4];
      const double off[4] = {2 * h, h, -h, -2 * h};
      for (int k = 0; k < 4; k++) {
        x[i] = x0 + off[k];
        l[k] = fd_loss(&f);
      }
      x[i] = x0;
      double fd = (8 * (l[1] - l[2]) - (l[0] - l[3])) / (12 * h), den = fabs(fd) + fabs(g[i]);
      double err = fabs(fd - g[i]) / (den > floor_ ? den : floor_);
      if (isnan(err)) err = INFINITY;
      if (err > worst) { worst = err; worst_name = ts->name; worst_i = i; }
      if (getenv("FDDBG") && err > 1e-6) printf("  %s[%lld] fd %.10e an %.10e err %.2e\n", ts->name, (long long)i, fd, g[i], err);
    }
  }
  printf("(a) %-44s loss %.6f  FD max rel err %.3e over %lld entries (worst %s[%lld])\n", c->name, l0, worst,
         (long long)n, worst_name, (long long)worst_i);
  EXPECT(worst < 1e-5, "%s: end-to-end FD max rel err %.3e at %s[%lld]", c->name, worst, worst_name,
         (long long)worst_i);
  free(codes); free(k0); free(grad);
  batch_free(&t);
  vals_free(&v);
  return worst;
}

int main(void) {
  const cfg cfgs[4] = {
      {"encoder prenorm layernorm", tiny(0, 1, 0, 0, 1)},
      {"encoder postnorm scalenorm", tiny(0, 0, 2, 0, 1)},
      {"decoder prenorm rmsnorm tied", tiny(1, 1, 1, 1, 1)},
      {"decoder postnorm layernorm untied far-off", tiny(1, 0, 0, 0, 0)},
  };
  for (int i = 0; i < 4; i++) fd_check(&cfgs[i], 11 + (uint64_t)i);
  return tu_finish("test_model");
}
