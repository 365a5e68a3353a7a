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

/* Spec init with `seed`; with bump > 0 every parameter gets + U(-bump, bump) on top (non-zero biases,
 * norm weights != 1, larger activations: every path of the network carries signal). */
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
  }
  for (size_t i = 0; i < np; i++) v->pd[i] = v->pf[i];
  for (size_t i = 0; i < ns; i++) v->sd[i] = v->sf[i];
}

static double ref_loss(const model_vals *v, const double *pd, const tbatch *t, double cw, const lv_ref_io *io,
                       double *grads, lv_ref_stats *st);

/* Codebooks seeded from the batch's own keys, layer by layer (as the spec's dead-code re-seeding
 * does): code s of layer i = the key of valid token floor((s + 0.5) * n_valid / S), scaled by 0.95,
 * with c_count = 0.6 .. 1.8 (so Cb = c_sum / c_count is exercised). The random unit-vector init
 * often sends every key of a tiny batch to one code; seeded codebooks spread the assignments so the
 * far-attention per-code sums and the commitment term see several codes. */
static void seed_codebooks(model_vals *v, const tbatch *t) {
  const lv_dims *d = &v->lay.dims;
  const int64_t BT = t->B * t->L, Z = d->Z;
  double *keys = NEW(double, d->n_layers * BT * Z);
  int64_t *valid = NEW(int64_t, BT), nv = 0;
  for (int64_t r = 0; r < BT; r++)
    if (t->mask[r]) valid[nv++] = r;
  for (int64_t i = 0; i < d->n_layers; i++) {
    lv_ref_io io = {.keys_out = keys};
    ref_loss(v, v->pd, t, 0.0, &io, NULL, NULL);
    const lv_layer_offsets *o = &v->lay.layer[i];
    for (int64_t s = 0; s < d->S; s++) {
      int64_t r = valid[(int64_t)(((double)s + 0.5) * (double)nv / (double)d->S)];
      double cnt = 0.6 + 0.4 * (double)(s % 4);
      v->sf[o->c_count + s] = (float)cnt;
      for (int64_t j = 0; j < Z; j++) v->sf[o->c_sum + s * Z + j] = (float)(0.95 * cnt * keys[(i * BT + r) * Z + j]);
    }
    for (size_t k = 0; k < v->lay.n_state_floats; k++) v->sd[k] = v->sf[k];
  }
  free(keys);
  free(valid);
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

/* Every entry of every trained tensor. err = |fd - an| / max(|fd| + |an|, 1e-7), as tests/gradcheck.h,
 * with the four-point stencil at h = 2e-4 (truncation O(h^4)): the two-point stencil's round-off
 * (~1e-11 absolute) is already 1e-4 relative on the smallest gradients (~1e-7), and h >= 1e-3 feels
 * the curvature of lnz on rows whose z variance is near its eps. Observed <= 4e-6; a missing term
 * (commitment gradient, the straight-through FD mode) gives 0.1 - 1. Bound 1e-4. */
static double fd_check(const cfg *c, uint64_t seed) {
  const lv_dims *d = &c->d;
  model_vals v;
  vals_make(&v, d, seed, 0.25);
  const int64_t B = 2, L = 12, BT = B * L, lens[2] = {L + d->decoder, 7};
  tbatch t;
  batch_make(&t, d, B, L, lens, seed);
  seed_codebooks(&v, &t);
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
  const double h = 2e-4, floor_ = 1e-7;
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
    }
  }
  printf("(a) %-44s loss %.6f  FD max rel err %.3e over %lld entries (worst %s[%lld])\n", c->name, l0, worst,
         (long long)n, worst_name, (long long)worst_i);
  EXPECT(worst < 1e-4, "%s: end-to-end FD max rel err %.3e at %s[%lld]", c->name, worst, worst_name,
         (long long)worst_i);
  free(codes); free(k0); free(grad);
  batch_free(&t);
  vals_free(&v);
  return worst;
}

/* The code and near-tie helpers on hand-made keys: Cb = {(1,0), (0,1), (-1,0)}. */
static void code_helpers(void) {
  const double cb[6] = {1, 0, 0, 1, -1, 0};
  const double k_on[2] = {0.9, 0.1}, k_mid[2] = {0.5, 0.5 + 1e-9}, k_far[2] = {0.3, 0.7}, k_tie[2] = {0, 0.5};
  EXPECT(lv_ref_code_f32(k_on, cb, 3, 2) == 0 && !lv_ref_near_tie(k_on, cb, 3, 2), "clear code 0");
  EXPECT(lv_ref_near_tie(k_mid, cb, 3, 2), "equidistant key is a near-tie");
  EXPECT(lv_ref_code_f32(k_far, cb, 3, 2) == 1 && !lv_ref_near_tie(k_far, cb, 3, 2), "clear code 1");
  EXPECT(lv_ref_code_f32(k_tie, cb, 3, 2) == 1, "a key on the bisector of codes 0 and 2 is nearest 1");
  const double k_ex[2] = {0, -0.5}; /* exact tie between codes 0 and 2 (and 1 farther): lowest s wins */
  const double cb2[4] = {1, 0, -1, 0};
  EXPECT(lv_ref_code_f32(k_ex, cb2, 2, 2) == 0 && lv_ref_near_tie(k_ex, cb2, 2, 2), "exact tie -> lowest code");
}

/* ---- (b) fast float32 model against the reference ------------------------------------------------ */
typedef struct {
  lv_model *m;
  float *grads;          /* (n_param_floats) */
  lv_fwd_stats st;
  double loss;
  int32_t *codes;        /* (n_layers, BT) */
  double *n_s, *key_sums; /* (n_layers, S), (n_layers, S, Z) */
} fast_run;

/* Forward + backward of the fast model; training path (the one that keeps what backward needs) with
 * dropout 0. The model is kept (for logits/keys) until fast_free. */
static void fast_eval(fast_run *f, const model_vals *v, const tbatch *t, double cw, const dnn_ctx *ctx) {
  const lv_dims *d = &v->lay.dims;
  const int64_t BT = t->B * t->L;
  memset(f, 0, sizeof *f);
  f->m = lv_model_create(&v->lay, t->B, t->L, ctx);
  lv_model_set_codebooks(f->m, v->sf);
  f->grads = NEW(float, v->lay.n_param_floats);
  f->codes = NEW(int32_t, d->n_layers * BT);
  f->n_s = NEW(double, d->n_layers * d->S);
  f->key_sums = NEW(double, d->n_layers * d->S * d->Z);
  lv_fwd_opts o = {.training = 1, .seed = 5, .step = 1};
  lv_model_forward(f->m, v->pf, &t->b, &o, &f->st, f->n_s, f->key_sums);
  lv_model_backward(f->m, v->pf, f->grads, &t->b, &o, t->task_scale, t->commit_scale, cw);
  double cs = 0;
  for (int64_t i = 0; i < d->n_layers; i++) {
    cs += f->st.commit_sum[i];
    memcpy(f->codes + i * BT, lv_model_codes(f->m, (int)i), sizeof(int32_t) * (size_t)BT);
  }
  f->loss = f->st.task_sum * t->task_scale + cw * t->commit_scale * cs;
}

static void fast_free(fast_run *f) {
  lv_model_free(f->m);
  free(f->grads); free(f->codes); free(f->n_s); free(f->key_sums);
}

/* ||a - b|| / ||b|| over n entries (a float or double: the macro below, b double); 0 when both are 0. */
#define REL_L2_BODY                                                                                          \
  double num = 0, den = 0;                                                                                   \
  for (int64_t i = 0; i < n; i++) {                                                                          \
    num += ((double)a[i] - b[i]) * ((double)a[i] - b[i]);                                                    \
    den += b[i] * b[i];                                                                                      \
  }                                                                                                          \
  if (den == 0) return num == 0 ? 0 : INFINITY;                                                              \
  return sqrt(num / den);
static double rel_l2(const float *a, const double *b, int64_t n) { REL_L2_BODY }
static double rel_l2_d(const double *a, const double *b, int64_t n) { REL_L2_BODY }

/* Tolerances (spec "Agreement"): loss 1e-5 relative, every gradient tensor 1e-4 relative L2; the
 * logits, commitment sums and codebook statistics are forward values like the loss: 1e-5 relative
 * (L2 for the logits). Codes must agree except at near-ties. The reference runs with the fast
 * model's codes forced, so that a legitimate near-tie flip upstream cannot change everything
 * downstream; each forced code is then checked against the reference's own argmin of its keys. */
static void fast_vs_ref(const cfg *c, const char *what, const model_vals *v, const tbatch *t, double cw,
                        const dnn_ctx *ctx) {
  const lv_dims *d = &v->lay.dims;
  const int64_t BT = t->B * t->L, Z = d->Z, S = d->S, nl = d->n_layers;
  const int64_t R = d->decoder ? BT : t->B, K = d->decoder ? d->V : d->K;
  fast_run f;
  fast_eval(&f, v, t, cw, ctx);
  double *keys = NEW(double, nl * BT * Z), *logits = NEW(double, R * K), *gr = NEW(double, v->lay.n_param_floats);
  int32_t *own = NEW(int32_t, nl * BT);
  lv_ref_stats rs;
  lv_ref_io io = {.force_codes = f.codes, .keys_out = keys, .logits_out = logits};
  double lr = ref_loss(v, v->pd, t, cw, &io, gr, &rs);
  /* codes */
  int64_t mismatch = 0, ties = 0, excluded = 0;
  double *cb = NEW(double, S * Z);
  for (int64_t i = 0; i < nl; i++) {
    const lv_layer_offsets *o = &v->lay.layer[i];
    vq_codebook_ref(cb, v->sd + o->c_sum, v->sd + o->c_count, S, Z);
    for (int64_t r = 0; r < BT; r++) {
      const double *k = keys + (i * BT + r) * Z;
      int tie = lv_ref_near_tie(k, cb, S, Z);
      own[i * BT + r] = lv_ref_code_f32(k, cb, S, Z);
      if (!t->mask[r]) continue; /* a padded row's code is used by nothing */
      ties += tie;
      if (own[i * BT + r] != f.codes[i * BT + r]) {
        if (tie) excluded++;
        else mismatch++;
      }
    }
  }
  int used[LV_MAX_LAYERS][64] = {{0}}, n_used = 0;
  for (int64_t i = 0; i < nl; i++)
    for (int64_t r = 0; r < BT; r++)
      if (t->mask[r] && !used[i][f.codes[i * BT + r]]++) n_used++;
  EXPECT(mismatch == 0, "%s %s: %lld codes differ away from near-ties", c->name, what, (long long)mismatch);
  /* the unforced reference picks the same codes when nothing is near a tie */
  if (ties == 0) {
    int32_t *rc = NEW(int32_t, nl * BT);
    lv_ref_io io2 = {.codes_out = rc};
    double l2 = ref_loss(v, v->pd, t, cw, &io2, NULL, NULL);
    int64_t diff = 0;
    for (int64_t i = 0; i < nl * BT; i++) diff += t->mask[i % BT] && rc[i] != f.codes[i];
    EXPECT(diff == 0 && l2 == lr, "%s %s: unforced reference: %lld codes differ, loss %.17g vs %.17g", c->name, what,
           (long long)diff, l2, lr);
    free(rc);
  }
  /* loss, statistics, logits */
  double loss_rel = fabs(f.loss - lr) / fabs(lr);
  EXPECT(loss_rel <= 1e-5, "%s %s: loss %.9g vs ref %.9g", c->name, what, f.loss, lr);
  EXPECT(f.st.task_count == rs.task_count && f.st.valid == rs.valid && f.st.correct == rs.correct,
         "%s %s: counts fast (%g, %g, %g) ref (%g, %g, %g)", c->name, what, f.st.task_count, f.st.valid,
         f.st.correct, rs.task_count, rs.valid, rs.correct);
  double commit_rel = 0;
  for (int64_t i = 0; i < nl; i++) {
    EXPECT_NEAR(f.st.commit_sum[i], rs.commit_sum[i], 1e-9, 1e-5);
    commit_rel = fmax(commit_rel, fabs(f.st.commit_sum[i] - rs.commit_sum[i]) / fabs(rs.commit_sum[i]));
  }
  double logit_rel = rel_l2(lv_model_logits(f.m), logits, R * K);
  EXPECT(logit_rel <= 1e-5, "%s %s: logits rel L2 %.3e", c->name, what, logit_rel);
  /* codebook statistics of the step: n_s and key sums of valid tokens (keys k, not k_hat) */
  double *ns = NEW(double, nl * S), *ks = NEW(double, nl * S * Z);
  for (int64_t i = 0; i < nl; i++)
    for (int64_t r = 0; r < BT; r++) {
      if (!t->mask[r]) continue;
      int64_t cd = f.codes[i * BT + r];
      ns[i * S + cd] += 1;
      for (int64_t j = 0; j < Z; j++) ks[(i * S + cd) * Z + j] += keys[(i * BT + r) * Z + j];
    }
  double ns_rel = rel_l2_d(f.n_s, ns, nl * S), ks_rel = rel_l2_d(f.key_sums, ks, nl * S * Z);
  EXPECT(ns_rel == 0 && ks_rel <= 1e-5, "%s %s: codebook statistics n_s rel %.3e key_sums rel %.3e", c->name, what,
         ns_rel, ks_rel);
  /* every gradient tensor: ||gf - gr|| <= 1e-4 ||gr|| + 1e-6 ||gr_all||. The absolute part is float32
   * round-off at the scale of the whole gradient: a tensor whose exact gradient is a near-total
   * cancellation (postnorm + scalenorm at init: the next scalenorm makes the loss almost invariant
   * to the mixer-norm scale, whose gradient ~1e-9 is a sum of terms of ~1e-3 magnitude in total)
   * cannot be resolved to 1e-4 relative by any float32 implementation. Tensors that pass only
   * thanks to it are counted and printed; the whole gradient must meet 1e-4 relative too. */
  double all_num = 0, all_den = 0;
  for (size_t i = 0; i < v->lay.n_param_floats; i++) {
    all_num += ((double)f.grads[i] - gr[i]) * ((double)f.grads[i] - gr[i]);
    all_den += gr[i] * gr[i];
  }
  const double all_rel = sqrt(all_num / all_den), atol = 1e-6 * sqrt(all_den);
  EXPECT(all_rel <= 1e-4, "%s %s: whole gradient rel L2 %.3e", c->name, what, all_rel);
  double worst = 0;
  const char *worst_name = "";
  char ill[512] = "";
  for (int p = 0; p < v->lay.n_params; p++) {
    const lv_tensor *ts = &v->lay.params[p];
    double e = rel_l2(f.grads + ts->offset, gr + ts->offset, ts->numel), nrm = 0;
    for (int64_t i = 0; i < ts->numel; i++) nrm += gr[ts->offset + i] * gr[ts->offset + i];
    nrm = sqrt(nrm);
    EXPECT(e * nrm <= 1e-4 * nrm + atol, "%s %s: gradient %s rel L2 %.3e (norm %.3e, whole %.3e)", c->name, what,
           ts->name, e, nrm, sqrt(all_den));
    if (e > 1e-4 && strlen(ill) + strlen(ts->name) + 32 < sizeof ill)
      snprintf(ill + strlen(ill), sizeof ill - strlen(ill), " %s (rel %.1e, norm %.1e)", ts->name, e, nrm);
    else if (e > worst || isnan(e)) { worst = isnan(e) ? INFINITY : e; worst_name = ts->name; }
  }
  printf("(b) %-44s %-6s cw %-6g loss %.6f rel %.1e  logits %.1e  grads: whole %.1e, per tensor max %.1e (%s); "
         "commit %.0e, key sums %.0e; codes: %d in use over %lld layers, %lld near-ties, %lld differ there\n", c->name,
         what, cw, lr, loss_rel, logit_rel, all_rel, worst, worst_name, commit_rel, ks_rel, n_used, (long long)nl,
         (long long)ties, (long long)excluded);
  if (ill[0]) printf("    ill-conditioned (within 1e-6 of the whole gradient's norm):%s\n", ill);
  free(ns); free(ks); free(cb); free(own); free(keys); free(logits); free(gr);
  fast_free(&f);
}

static void agreement(const cfg *c, uint64_t seed, const dnn_ctx *ctx) {
  const lv_dims *d = &c->d;
  const int64_t B = 2, L = 12, lens[2] = {L + d->decoder, 7};
  tbatch t;
  batch_make(&t, d, B, L, lens, seed);
  model_vals v;
  vals_make(&v, d, seed, 0.0); /* the spec's init, codebooks included: what step 1 of training sees */
  fast_vs_ref(c, "init", &v, &t, 1e-4, ctx);
  fast_vs_ref(c, "init", &v, &t, 0.1, ctx);
  vals_free(&v);
  vals_make(&v, d, seed, 0.25); /* larger signals, codebooks seeded from keys: several codes in use */
  seed_codebooks(&v, &t);
  fast_vs_ref(c, "bumped", &v, &t, 1e-4, ctx);
  fast_vs_ref(c, "bumped", &v, &t, 0.1, ctx);
  vals_free(&v);
  batch_free(&t);
}

/* ---- (c) padding and batch invariance ------------------------------------------------------------ */
/* Max |a - b| / (1 + |b|) over n entries. */
static double max_diff(const float *a, const float *b, int64_t n) {
  double w = 0;
  for (int64_t i = 0; i < n; i++) {
    double e = fabs((double)a[i] - (double)b[i]) / (1 + fabs((double)b[i]));
    if (!(e <= w)) w = e;
  }
  return w;
}

/* Encoder: sequence A (8 tokens) alone (B = 1, L = 8) against A right-padded to L = 12 inside a
 * batch of two, in row 0 and in row 1, next to a 10-token sequence. The logits of A must agree
 * (fast: to float rounding, 1e-5; reference: 1e-12); the keys of A must get the same codes. */
static void encoder_padding(const cfg *c, uint64_t seed, const dnn_ctx *ctx) {
  const lv_dims *d = &c->d;
  model_vals v;
  vals_make(&v, d, seed, 0.25);
  int64_t lens2[2] = {8, 10};
  tbatch t2;
  batch_make(&t2, d, 2, 12, lens2, seed + 1);
  seed_codebooks(&v, &t2);
  tbatch t1, t3;
  int64_t lens1[1] = {8}, lens3[2] = {10, 8};
  batch_make(&t1, d, 1, 8, lens1, seed + 2);
  batch_make(&t3, d, 2, 12, lens3, seed + 3);
  for (int64_t i = 0; i < 12; i++) { /* t3 = t2 with the rows swapped; t1 = A alone */
    t3.tokens[i] = t2.tokens[12 + i]; t3.tokens[12 + i] = t2.tokens[i];
    if (i < 8) t1.tokens[i] = t2.tokens[i];
  }
  t1.labels[0] = t3.labels[1] = t2.labels[0];
  t3.labels[0] = t2.labels[1];
  fast_run f1, f2, f3;
  fast_eval(&f1, &v, &t1, 1e-4, ctx);
  fast_eval(&f2, &v, &t2, 1e-4, ctx);
  fast_eval(&f3, &v, &t3, 1e-4, ctx);
  const float *l1 = lv_model_logits(f1.m), *l2 = lv_model_logits(f2.m), *l3 = lv_model_logits(f3.m);
  const int64_t K = d->K;
  double e12 = max_diff(l2, l1, K), e13 = max_diff(l3 + K, l1, K), eo = max_diff(l3, l2 + K, K);
  EXPECT(max_diff(l2 + K, l2, K) > 1e-3, "%s: the two sequences have the same logits: the check would be vacuous",
         c->name);
  EXPECT(e12 <= 1e-5 && e13 <= 1e-5 && eo <= 1e-5, "%s: A alone vs padded in row 0 %.2e, in row 1 %.2e; other row %.2e",
         c->name, e12, e13, eo);
  int64_t code_diff = 0;
  for (int64_t i = 0; i < d->n_layers; i++)
    for (int64_t p = 0; p < 8; p++) {
      int32_t a = f1.codes[i * 8 + p];
      code_diff += a != f2.codes[i * 24 + p] || a != f3.codes[i * 24 + 12 + p];
    }
  EXPECT(code_diff == 0, "%s: %lld codes of A change with padding/batch position", c->name, (long long)code_diff);
  /* the reference, in double */
  double r1[8], r2[16], r3[16];
  lv_ref_io i1 = {.logits_out = r1}, i2 = {.logits_out = r2}, i3 = {.logits_out = r3};
  ref_loss(&v, v.pd, &t1, 1e-4, &i1, NULL, NULL);
  ref_loss(&v, v.pd, &t2, 1e-4, &i2, NULL, NULL);
  ref_loss(&v, v.pd, &t3, 1e-4, &i3, NULL, NULL);
  double er = 0;
  for (int64_t k = 0; k < K; k++)
    er = fmax(er, fmax(fabs(r2[k] - r1[k]), fmax(fabs(r3[K + k] - r1[k]), fabs(r3[k] - r2[K + k]))));
  EXPECT(er <= 1e-12, "%s: reference logits of A differ by %.3e with padding/batch position", c->name, er);
  printf("(c) %-44s A alone vs padded in a batch: fast max diff %.1e / %.1e (other row %.1e), ref %.1e, "
         "codes differ %lld\n", c->name, e12, e13, eo, er, (long long)code_diff);
  fast_free(&f1); fast_free(&f2); fast_free(&f3);
  batch_free(&t1); batch_free(&t2); batch_free(&t3);
  vals_free(&v);
}

/* Decoder: (1) changing the ids at padded positions (inputs and uncounted targets) changes nothing;
 * (2) causality: changing input token p of sample 0 leaves its logits at t < p and all of sample 1
 * unchanged, and changes position p. Fast (1e-6: same values, same shapes) and reference (exact). */
static void decoder_padding_causal(const cfg *c, uint64_t seed, const dnn_ctx *ctx) {
  const lv_dims *d = &c->d;
  const int64_t B = 2, L = 12, BT = B * L, V = d->V, lens[2] = {L + 1, 7}, p = 6;
  model_vals v;
  vals_make(&v, d, seed, 0.25);
  tbatch t;
  batch_make(&t, d, B, L, lens, seed);
  seed_codebooks(&v, &t);
  fast_run f0, f1, f2;
  fast_eval(&f0, &v, &t, 0.1, ctx);
  double *r0 = NEW(double, BT * V), *r1 = NEW(double, BT * V), *r2 = NEW(double, BT * V);
  lv_ref_io i0 = {.logits_out = r0}, i1 = {.logits_out = r1}, i2 = {.logits_out = r2};
  double rl0 = ref_loss(&v, v.pd, &t, 0.1, &i0, NULL, NULL);
  for (int64_t r = 0; r < BT; r++) {
    if (!t.mask[r]) t.tokens[r] = (t.tokens[r] + 3) % (int32_t)V;
    if (!t.tmask[r]) t.targets[r] = (t.targets[r] + 5) % (int32_t)V;
  }
  fast_eval(&f1, &v, &t, 0.1, ctx);
  double rl1 = ref_loss(&v, v.pd, &t, 0.1, &i1, NULL, NULL);
  double ep = max_diff(lv_model_logits(f1.m), lv_model_logits(f0.m), BT * V), gp = 0, epr = 0;
  for (int64_t r = 0; r < BT; r++) /* logits of padded rows are not part of the model's output */
    for (int64_t k = 0; k < V; k++) epr = t.mask[r] ? fmax(epr, fabs(r1[r * V + k] - r0[r * V + k])) : epr;
  ep = 0;
  for (int64_t r = 0; r < BT; r++)
    if (t.mask[r]) ep = fmax(ep, max_diff(lv_model_logits(f1.m) + r * V, lv_model_logits(f0.m) + r * V, V));
  for (size_t i = 0; i < v.lay.n_param_floats; i++)
    gp = fmax(gp, fabs((double)f1.grads[i] - (double)f0.grads[i]) / (1e-6 + fabs((double)f0.grads[i])));
  EXPECT(ep <= 1e-6 && fabs(f1.loss - f0.loss) <= 1e-6 * fabs(f0.loss) && gp <= 1e-4,
         "%s: padded ids change the fast model: logits %.2e, loss %.9g vs %.9g, grads %.2e", c->name, ep, f1.loss,
         f0.loss, gp);
  EXPECT(epr <= 1e-13 && fabs(rl1 - rl0) <= 1e-13, "%s: padded ids change the reference: logits %.2e", c->name, epr);
  t.tokens[p] = (t.tokens[p] + 1) % (int32_t)V; /* sample 0, position p */
  fast_eval(&f2, &v, &t, 0.1, ctx);
  ref_loss(&v, v.pd, &t, 0.1, &i2, NULL, NULL);
  const float *a = lv_model_logits(f1.m), *b = lv_model_logits(f2.m);
  double before = max_diff(b, a, p * V), other = max_diff(b + L * V, a + L * V, L * V);
  double at = max_diff(b + p * V, a + p * V, V), rbefore = 0, rat = 0;
  for (int64_t k = 0; k < p * V; k++) rbefore = fmax(rbefore, fabs(r2[k] - r1[k]));
  for (int64_t k = L * V; k < BT * V; k++) rbefore = fmax(rbefore, fabs(r2[k] - r1[k]));
  for (int64_t k = p * V; k < (p + 1) * V; k++) rat = fmax(rat, fabs(r2[k] - r1[k]));
  EXPECT(before <= 1e-6 && other <= 1e-6 && at > 1e-3, "%s: causality (fast): before %.2e other sample %.2e at %.2e",
         c->name, before, other, at);
  EXPECT(rbefore == 0 && rat > 1e-3, "%s: causality (ref): before/other %.2e at %.2e", c->name, rbefore, rat);
  printf("(c) %-44s padded ids: fast logits %.1e grads %.1e, ref %.1e; causality: fast past %.1e, other %.1e, "
         "at p %.1e; ref past %.1e\n", c->name, ep, gp, epr, before, other, at, rbefore);
  fast_free(&f0); fast_free(&f1); fast_free(&f2);
  free(r0); free(r1); free(r2);
  batch_free(&t);
  vals_free(&v);
}

/* ---- (d) bad input dies with a clear message ------------------------------------------------------ */
/* Child mode: builds a tiny model and runs a forward on a broken batch; returning means no death. */
static int child_main(const char *mode) {
  int dec = strcmp(mode, "label") && strcmp(mode, "empty");
  lv_dims d = tiny(dec, 1, 0, 1, 1);
  model_vals v;
  vals_make(&v, &d, 3, 0.0);
  int64_t lens[2] = {12 + dec, 7};
  tbatch t;
  batch_make(&t, &d, 2, 12, lens, 3);
  if (!strcmp(mode, "token")) t.tokens[5] = (int32_t)d.V;         /* valid row 5: id == V */
  if (!strcmp(mode, "negative")) t.tokens[13] = -2;               /* a valid row of sample 1 */
  if (!strcmp(mode, "target")) t.targets[4] = (int32_t)d.V + 4;   /* a counted target */
  if (!strcmp(mode, "label")) t.labels[1] = (int32_t)d.K;
  if (!strcmp(mode, "empty")) memset(t.mask + 12, 0, 12);         /* sample 1 has no valid token */
  dnn_ctx ctx;
  dnn_ctx_init(&ctx);
  lv_model *m = lv_model_create(&v.lay, 2, 12, &ctx);
  lv_model_set_codebooks(m, v.sf);
  lv_fwd_opts o = {.training = 1, .seed = 1, .step = 1};
  lv_fwd_stats st;
  lv_model_forward(m, v.pf, &t.b, &o, &st, NULL, NULL);
  printf("child %s: forward returned, loss sum %g\n", mode, st.task_sum);
  return 0;
}

/* Runs this binary in child mode (fork + exec: no OpenMP or oneDNN state crosses the fork); returns
 * 1 if it failed with a non-zero exit and its stderr contains every one of the `want` words. */
static int dies_with(const char *self, const char *mode, const char *want1, const char *want2) {
  int fd[2];
  if (pipe(fd)) abort();
  pid_t pid = fork();
  if (pid < 0) abort();
  if (pid == 0) {
    dup2(fd[1], 2);
    close(fd[0]);
    close(fd[1]);
    execl(self, self, "--child", mode, (char *)NULL);
    _exit(99);
  }
  close(fd[1]);
  char buf[4096];
  size_t n = 0;
  ssize_t k;
  while ((k = read(fd[0], buf + n, sizeof buf - 1 - n)) > 0) n += (size_t)k;
  buf[n] = 0;
  close(fd[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  int failed = (WIFEXITED(status) && WEXITSTATUS(status) != 0 && WEXITSTATUS(status) != 99) || WIFSIGNALED(status);
  int clear = strstr(buf, want1) && strstr(buf, want2);
  char *nl = strchr(buf, '\n');
  if (nl) *nl = 0;
  printf("(d) %-9s -> %s, exit %d: %s\n", mode, failed ? "died" : "DID NOT DIE",
         WIFEXITED(status) ? WEXITSTATUS(status) : -1, buf);
  EXPECT(failed && clear, "mode %s: status %d, stderr '%s' (want '%s', '%s')", mode, status, buf, want1, want2);
  return failed && clear;
}

int main(int argc, char **argv) {
  if (argc == 3 && !strcmp(argv[1], "--child")) return child_main(argv[2]);
  const cfg cfgs[4] = {
      {"encoder prenorm layernorm", tiny(0, 1, 0, 0, 1)},
      {"encoder postnorm scalenorm", tiny(0, 0, 2, 0, 1)},
      {"decoder prenorm rmsnorm tied", tiny(1, 1, 1, 1, 1)},
      {"decoder postnorm layernorm untied far-off", tiny(1, 0, 0, 0, 0)},
  };
  /* (d) first: children are spawned before this process starts any thread. */
  const char *self = "/proc/self/exe";
  dies_with(self, "token", "token", "11");
  dies_with(self, "negative", "token", "-2");
  dies_with(self, "target", "target", "15");
  dies_with(self, "label", "target", "3");
  dies_with(self, "empty", "no valid token", "1");
  code_helpers();
  for (int i = 0; i < 4; i++) fd_check(&cfgs[i], 11 + (uint64_t)i);
  dnn_ctx ctx;
  dnn_ctx_init(&ctx);
  for (int i = 0; i < 4; i++) agreement(&cfgs[i], 21 + (uint64_t)i, &ctx);
  for (int i = 0; i < 2; i++) encoder_padding(&cfgs[i], 31 + (uint64_t)i, &ctx);
  for (int i = 2; i < 4; i++) decoder_padding_causal(&cfgs[i], 41 + (uint64_t)i, &ctx);
  dnn_ctx_free(&ctx);
  return tu_finish("test_model");
}
