/* Incremental decoding (layers/decode.h) against the full forward, and the sampler (trainer/sample.h).
 *
 * (a) Exactness. For five decoder models (pre/postnorm, the three norms, tied/untied, far attention
 *     on/off, chunk 4 over 16 chunks and chunk 8 over 64 chunks), the decoder is fed a random sequence
 *     token by token; its logits at EVERY position are compared with
 *       - the double-precision reference model (layers/ref/model_ref.h, the arbiter) run on the whole
 *         sequence, teacher-forced, with the decoder's codes: relative L2 error per position <= 1e-5,
 *         the spec's "Agreement" bar for forward values (the fast batched model meets the same bar,
 *         tests/test_model.c). Why that bound holds for float32: each logit comes through 2 layers of
 *         sums of <= 2C + S = 24 (attention) or F = 32 (projections) terms, each rounding to
 *         u = 6e-8 relative, with the norms rescaling but not amplifying errors; we measure ~1e-7.
 *       - the fast float32 batched forward (layers/model.h, evaluation), which sums in other orders:
 *         relative L2 difference per position <= 2e-5 (both within 1e-5 of the arbiter).
 *     The decoder's codes must be the reference's own argmin of the keys, except at near-ties (spec
 *     "Agreement"), and those of the fast model.
 *     Not vacuous: far attention changes the reference logits beyond position 2C by > 1e-3 relative
 *     (so a decoder that dropped or mis-summed the far part would fail by 100x the bound), and the
 *     first two chunks of a far-on model equal the far-off model's (the far part is empty there).
 * (b) Reset: after lv_decoder_reset the same tokens give bit-identical logits.
 * (c) Memory: the plan does not depend on the position (it has no position argument) and the
 *     decoder's arena stays the one allocation: checked by feeding 4096 tokens through a model with
 *     chunk 4 and comparing VmRSS before and after (<= 64 KiB apart; the state is 1.6 KiB per layer).
 * (d) Sampling: top-k 1 is the argmax (ties to the lower id); draws are a function of (seed,
 *     position); 40 000 draws at T = 1 and T = 0.5, k = V and k = 3, match the softmax probabilities to
 *     4 standard errors; a non-finite logit gives -1. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "layers/decode.h"
#include "layers/model.h"
#include "layers/ref/model_ref.h"
#include "tests/gradcheck.h"
#include "tests/test_util.h"
#include "trainer/sample.h"

static void *xalloc(size_t n) { void *p = calloc(n ? n : 1, 1); if (!p) abort(); return p; }
#define NEW(T, n) ((T *)xalloc(sizeof(T) * (size_t)(n)))

static uint32_t rnd(uint64_t *s) { *s ^= *s << 13; *s ^= *s >> 7; *s ^= *s << 17; return (uint32_t)(*s >> 11); }

typedef struct {
  const char *name;
  lv_dims d;
  int64_t L;
} cfg;

static lv_dims dec_dims(int prenorm, norm_kind norm, int tie, int far, int64_t C) {
  return (lv_dims){.decoder = 1, .prenorm = prenorm, .norm = norm, .tie_embeddings = tie, .far_attention = far,
                   .V = 13, .K = 0, .D = 16, .Z = 8, .E = 16, .N = 4, .S = 8, .C = C, .F = 32, .n_layers = 2};
}

/* A model and one sequence of L+1 tokens as a decoder batch (B = 1, every token valid). */
typedef struct {
  lv_layout lay;
  float *pf, *sf;
  double *pd, *sd;
  int64_t L;
  int32_t *tokens, *targets;
  uint8_t *mask;
  lv_batch b;
} setup;

static double ref_run(const setup *u, const lv_layout *lay, const lv_ref_io *io) {
  return lv_model_loss_ref(lay, u->pd, u->sd, &u->b, 1, u->L, NULL, 1.0 / (double)u->L, 1.0 / (double)u->L, 0.0,
                           io, NULL, NULL);
}

/* Spec init plus U(-0.25, 0.25) on every parameter (every path carries signal); codebooks seeded
 * from the sequence's own keys, layer by layer, so that the keys spread over the codes and the far
 * sums hold several codes (the random init often sends a short sequence to one code). */
static void setup_make(setup *u, const lv_dims *d, int64_t L, uint64_t seed) {
  char err[256];
  memset(u, 0, sizeof *u);
  if (lv_layout_build(&u->lay, d, err, sizeof err)) { fprintf(stderr, "layout: %s\n", err); exit(1); }
  const size_t np = u->lay.n_param_floats, ns = u->lay.n_state_floats;
  u->pf = NEW(float, np); u->sf = NEW(float, ns); u->pd = NEW(double, np); u->sd = NEW(double, ns);
  lv_layout_init(&u->lay, seed, u->pf, u->sf);
  double *noise = NEW(double, np);
  gc_fill(noise, (int64_t)np, (unsigned)seed + 101, 0.25);
  for (size_t i = 0; i < np; i++) u->pd[i] = u->pf[i] = (float)(u->pf[i] + noise[i]);
  for (size_t i = 0; i < ns; i++) u->sd[i] = u->sf[i];
  free(noise);
  u->L = L;
  u->tokens = NEW(int32_t, L); u->targets = NEW(int32_t, L); u->mask = NEW(uint8_t, L);
  uint64_t s = seed * 0x9E3779B97F4A7C15ull + 3;
  int32_t prev = (int32_t)(rnd(&s) % (uint32_t)d->V);
  for (int64_t t = 0; t < L; t++) {
    u->tokens[t] = prev;
    u->targets[t] = prev = (int32_t)(rnd(&s) % (uint32_t)d->V);
    u->mask[t] = 1;
  }
  u->b = (lv_batch){.tokens = u->tokens, .mask = u->mask, .targets = u->targets, .target_mask = u->mask};
  double *keys = NEW(double, d->n_layers * L * d->Z);
  for (int64_t i = 0; i < d->n_layers; i++) {
    lv_ref_io io = {.keys_out = keys};
    ref_run(u, &u->lay, &io);
    const lv_layer_offsets *o = &u->lay.layer[i];
    for (int64_t c = 0; c < d->S; c++) {
      const int64_t r = (int64_t)(((double)c + 0.5) * (double)L / (double)d->S);
      const double cnt = 0.6 + 0.4 * (double)(c % 4);
      u->sf[o->c_count + c] = (float)cnt;
      for (int64_t z = 0; z < d->Z; z++) u->sf[o->c_sum + c * d->Z + z] = (float)(0.95 * cnt * keys[(i * L + r) * d->Z + z]);
    }
    for (size_t k = 0; k < ns; k++) u->sd[k] = u->sf[k];
  }
  free(keys);
}

static void setup_free(setup *u) {
  free(u->pf); free(u->sf); free(u->pd); free(u->sd);
  free(u->tokens); free(u->targets); free(u->mask);
  lv_layout_free(&u->lay);
}

/* ||a - b|| / ||ref|| over n entries. */
static double rel_diff(const float *a, const double *b, const double *ref, int64_t n) {
  double num = 0, den = 0;
  for (int64_t i = 0; i < n; i++) {
    num += ((double)a[i] - b[i]) * ((double)a[i] - b[i]);
    den += ref[i] * ref[i];
  }
  return den > 0 ? sqrt(num / den) : (num == 0 ? 0 : INFINITY);
}

static double proc_kib(const char *field) {
  FILE *f = fopen("/proc/self/status", "r");
  char line[256];
  double v = -1;
  while (f && fgets(line, sizeof line, f))
    if (!strncmp(line, field, strlen(field))) v = atof(line + strlen(field));
  if (f) fclose(f);
  return v;
}

static void exactness(const cfg *c, uint64_t seed, const dnn_ctx *ctx) {
  const lv_dims *d = &c->d;
  const int64_t L = c->L, V = d->V, nl = d->n_layers, Z = d->Z, C = d->C;
  setup u;
  setup_make(&u, d, L, seed);
  /* the decoder, token by token */
  float *dl = NEW(float, L * V);
  int32_t *codes = NEW(int32_t, nl * L);
  lv_decoder *g = lv_decoder_create(&u.lay, u.pf, u.sf);
  for (int64_t t = 0; t < L; t++) {
    EXPECT(lv_decoder_position(g) == t, "%s: position %lld before token %lld", c->name,
           (long long)lv_decoder_position(g), (long long)t);
    memcpy(dl + t * V, lv_decoder_step(g, u.tokens[t]), sizeof(float) * (size_t)V);
    for (int64_t i = 0; i < nl; i++) codes[i * L + t] = lv_decoder_last_code(g, (int)i);
  }
  /* the arbiter with the decoder's codes; each code checked against the arbiter's own argmin */
  double *rl = NEW(double, L * V), *keys = NEW(double, nl * L * Z), *cbd = NEW(double, d->S * Z);
  lv_ref_io io = {.force_codes = codes, .keys_out = keys, .logits_out = rl};
  ref_run(&u, &u.lay, &io);
  int64_t bad_codes = 0, ties = 0;
  for (int64_t i = 0; i < nl; i++) {
    const lv_layer_offsets *o = &u.lay.layer[i];
    for (int64_t s = 0; s < d->S * Z; s++) {
      float den = u.sf[o->c_count + s / Z] > 0.01f ? u.sf[o->c_count + s / Z] : 0.01f;
      cbd[s] = (double)(u.sf[o->c_sum + s] / den);
    }
    for (int64_t t = 0; t < L; t++) {
      const double *k = keys + (i * L + t) * Z;
      if (lv_ref_code_f32(k, cbd, d->S, Z) == codes[i * L + t]) continue;
      if (lv_ref_near_tie(k, cbd, d->S, Z)) ties++;
      else bad_codes++;
    }
  }
  EXPECT(bad_codes == 0, "%s: %lld decoder codes differ from the reference argmin (not near-ties)", c->name,
         (long long)bad_codes);
  double worst_ref = 0;
  int64_t worst_t = 0;
  for (int64_t t = 0; t < L; t++) {
    double e = rel_diff(dl + t * V, rl + t * V, rl + t * V, V);
    if (!(e <= worst_ref)) { worst_ref = e; worst_t = t; }
  }
  EXPECT(worst_ref <= 1e-5, "%s: decoder logits vs reference: rel L2 %.3e at position %lld", c->name, worst_ref,
         (long long)worst_t);
  /* the fast batched model (evaluation forward) */
  lv_model *m = lv_model_create(&u.lay, 1, L, ctx);
  lv_model_set_codebooks(m, u.sf);
  lv_fwd_opts fo = {.training = 0, .seed = 1, .step = 1};
  lv_fwd_stats st;
  lv_model_forward(m, u.pf, &u.b, &fo, &st, NULL, NULL);
  int64_t fast_codes = 0;
  for (int64_t i = 0; i < nl; i++)
    for (int64_t t = 0; t < L; t++) fast_codes += lv_model_codes(m, (int)i)[t] != codes[i * L + t];
  double worst_fast = 0;
  double *fl = NEW(double, L * V);
  for (int64_t t = 0; t < L * V; t++) fl[t] = lv_model_logits(m)[t];
  for (int64_t t = 0; t < L; t++) worst_fast = fmax(worst_fast, rel_diff(dl + t * V, fl + t * V, rl + t * V, V));
  if (fast_codes == 0)
    EXPECT(worst_fast <= 2e-5, "%s: decoder logits vs fast forward: rel L2 %.3e", c->name, worst_fast);
  else /* a legitimate near-tie flip between two float32 implementations changes what follows it */
    EXPECT(fast_codes <= ties, "%s: %lld codes differ from the fast model's, %lld near-ties", c->name,
           (long long)fast_codes, (long long)ties);
  /* not vacuous: the far part matters beyond 2C, and is empty before */
  double far_effect = 0, early = 0;
  if (d->far_attention) {
    lv_layout nofar;
    lv_dims dn = *d;
    dn.far_attention = 0;
    char err[256];
    if (lv_layout_build(&nofar, &dn, err, sizeof err)) { fprintf(stderr, "layout: %s\n", err); exit(1); }
    double *nl_ = NEW(double, L * V);
    lv_ref_io io2 = {.force_codes = codes, .logits_out = nl_};
    ref_run(&u, &nofar, &io2);
    float *tmp = NEW(float, V);
    for (int64_t t = 0; t < L; t++) {
      for (int64_t v = 0; v < V; v++) tmp[v] = (float)nl_[t * V + v];
      double e = rel_diff(tmp, rl + t * V, rl + t * V, V);
      if (t >= 2 * C) far_effect = fmax(far_effect, e);
      else early = fmax(early, rel_diff(dl + t * V, nl_ + t * V, nl_ + t * V, V));
    }
    EXPECT(far_effect > 1e-3, "%s: far attention changes the logits by only %.3e: the check would be vacuous",
           c->name, far_effect);
    EXPECT(early <= 1e-5, "%s: in the first two chunks the decoder differs from the far-off model by %.3e", c->name,
           early);
    free(tmp); free(nl_);
    lv_layout_free(&nofar);
  }
  /* (b) reset: the same tokens, the same bits */
  lv_decoder_reset(g);
  int64_t n2 = 3 * C + 1 < L ? 3 * C + 1 : L, diff = 0;
  for (int64_t t = 0; t < n2; t++) diff += memcmp(lv_decoder_step(g, u.tokens[t]), dl + t * V, sizeof(float) * (size_t)V) != 0;
  EXPECT(diff == 0 && lv_decoder_position(g) == n2, "%s: after reset %lld positions differ", c->name, (long long)diff);
  printf("(a) %-40s L %4lld (%3lld chunks): vs ref max rel %.1e (pos %lld), vs fast %.1e, codes: %lld near-ties, "
         "%lld differ from fast; far effect %.1e, first 2 chunks vs far-off %.1e\n",
         c->name, (long long)L, (long long)(L / C), worst_ref, (long long)worst_t, worst_fast, (long long)ties,
         (long long)fast_codes, far_effect, early);
  lv_model_free(m);
  lv_decoder_free(g);
  free(dl); free(codes); free(rl); free(keys); free(cbd); free(fl);
  setup_free(&u);
}

static void memory_flat(void) {
  lv_dims d = dec_dims(1, NORM_LAYERNORM, 1, 1, 4);
  setup u;
  setup_make(&u, &d, 8, 5);
  lv_decoder *g = lv_decoder_create(&u.lay, u.pf, u.sf);
  lv_decode_mem mem = lv_decode_plan(&d);
  uint64_t s = 9;
  for (int64_t t = 0; t < 64; t++) lv_decoder_step(g, (int32_t)(rnd(&s) % 13u));
  const double before = proc_kib("VmRSS:");
  for (int64_t t = 0; t < 4096; t++) lv_decoder_step(g, (int32_t)(rnd(&s) % 13u));
  const double after = proc_kib("VmRSS:");
  printf("(c) state %.1f KiB per layer, arena %.1f KiB; VmRSS %.0f KiB after 64 tokens, %.0f KiB after 4160\n",
         (double)mem.state_per_layer * 4 / 1024, (double)mem.total * 4 / 1024, before, after);
  EXPECT(before > 0 && after - before <= 64, "memory grew from %.0f to %.0f KiB over 4096 tokens", before, after);
  lv_decoder_free(g);
  setup_free(&u);
}

static void sampling(void) {
  enum { V = 7 };
  const float lg[V] = {0.5f, 2.0f, -1.0f, 2.0f, 1.0f, -3.0f, 0.0f};
  lv_sampler sm;
  lv_sampler_init(&sm, V);
  for (int64_t p = 0; p < 50; p++)
    EXPECT(lv_sample(&sm, lg, 1.0, 1, 7, p) == 1, "top-k 1 is not the argmax with ties to the lower id");
  int same = 1, varies = 0;
  for (int64_t p = 0; p < 200; p++) {
    int32_t a = lv_sample(&sm, lg, 1.0, V, 11, p);
    same &= a == lv_sample(&sm, lg, 1.0, V, 11, p);
    varies |= a != lv_sample(&sm, lg, 1.0, V, 11, 0);
  }
  EXPECT(same && varies, "draws are not a function of (seed, position): same %d varies %d", same, varies);
  int seeds_differ = 0;
  for (int64_t p = 0; p < 64; p++) seeds_differ += lv_sample(&sm, lg, 1.0, V, 1, p) != lv_sample(&sm, lg, 1.0, V, 2, p);
  EXPECT(seeds_differ > 10, "seeds 1 and 2 give nearly the same draws (%d of 64 differ)", seeds_differ);
  const double temps[2] = {1.0, 0.5};
  const int64_t ks[2] = {V, 3};
  for (int a = 0; a < 2; a++)
    for (int b = 0; b < 2; b++) {
      double p[V], z = 0;
      int top[V] = {0, 1, 0, 1, 1, 0, 0}; /* the 3 best: ids 1, 3, 4 */
      for (int v = 0; v < V; v++) z += p[v] = (ks[b] == V || top[v]) ? exp(lg[v] / temps[a]) : 0;
      int64_t cnt[V] = {0}, n = 40000;
      for (int64_t q = 0; q < n; q++) {
        int32_t t = lv_sample(&sm, lg, temps[a], ks[b], 3, q);
        if (t >= 0 && t < V) cnt[t]++;
      }
      double worst = 0;
      for (int v = 0; v < V; v++) {
        double pv = p[v] / z, se = sqrt(pv * (1 - pv) / (double)n) + 1e-12;
        worst = fmax(worst, fabs((double)cnt[v] / (double)n - pv) / se);
        if (pv == 0) EXPECT(cnt[v] == 0, "T %g k %lld: token %d drawn %lld times outside the top k", temps[a],
                            (long long)ks[b], v, (long long)cnt[v]);
      }
      printf("(d) T %.1f top-k %lld: %lld draws, worst deviation %.2f standard errors\n", temps[a], (long long)ks[b],
             (long long)n, worst);
      EXPECT(worst <= 4.0, "T %g k %lld: frequencies off by %.2f standard errors", temps[a], (long long)ks[b], worst);
    }
  float bad[V];
  memcpy(bad, lg, sizeof bad);
  bad[5] = NAN;
  EXPECT(lv_sample(&sm, bad, 1.0, V, 1, 0) == -1, "a NaN logit was not reported");
  lv_sampler_free(&sm);
}

int main(void) {
  const cfg cfgs[] = {
      {"prenorm layernorm tied, C 4", dec_dims(1, NORM_LAYERNORM, 1, 1, 4), 64},
      {"prenorm rmsnorm untied, C 4", dec_dims(1, NORM_RMSNORM, 0, 1, 4), 64},
      {"postnorm scalenorm tied, C 4", dec_dims(0, NORM_SCALENORM, 1, 1, 4), 64},
      {"prenorm layernorm tied far-off, C 4", dec_dims(1, NORM_LAYERNORM, 1, 0, 4), 64},
      {"prenorm layernorm tied, C 8, 64 chunks", dec_dims(1, NORM_LAYERNORM, 1, 1, 8), 512},
  };
  dnn_ctx ctx;
  dnn_ctx_init(&ctx);
  for (size_t i = 0; i < sizeof cfgs / sizeof cfgs[0]; i++) exactness(&cfgs[i], 31 + i, &ctx);
  dnn_ctx_free(&ctx);
  memory_flat();
  sampling();
  return tu_finish("test_decode");
}
