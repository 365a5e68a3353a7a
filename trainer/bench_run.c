/* What one `longvq bench` child process measures (see bench_internal.h): the oneDNN f32 matmul rate,
 * or the training step of one model instance (forward, backward, update) with its FLOPs and memory. */
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "layers/model.h"
#include "layers/vq.h"
#include "trainer/base/clock.h"
#include "trainer/bench_internal.h"
#include "trainer/base/alloc.h"
#include "trainer/base/check.h"
#include "trainer/optim.h"
#include "trainer/base/procstat.h"
#include "trainer/base/rng.h"

double bench_plan_bytes(const lv_dims *d, int64_t B, int64_t L) {
  lv_layout lay;
  char err[256];
  if (lv_layout_build(&lay, d, err, sizeof err)) return 0;
  lv_model_mem mem = lv_model_plan(d, B, L);
  size_t floats = lv_model_plan_total(&mem, lay.n_param_floats, lay.n_state_floats, 2);
  lv_layout_free(&lay);
  return 4.0 * (double)floats;
}

static void fill_uniform(float *x, size_t n, uint64_t seed, const char *domain) {
  rng_stream rs = rng_make(seed, domain, 0, 0);
  for (size_t i = 0; i < n; i++) x[i] = (float)(rng_uniform(&rs, i) - 0.5);
}

/* Best and mean GFLOP/s of C (M, N) = A (M, K) @ B over repetitions worth about `budget` FLOPs (at
 * least 3, at most 200) after one warm-up; B is (K, N), or (N, K) stored when trans_b (a Linear's W). */
static void probe_rate(const dnn_ctx *ctx, int64_t M, int64_t N, int64_t K, int trans_b, double budget, uint64_t seed,
                       double *best, double *mean) {
  float *A = lv_alloc_floats((size_t)(M * K)), *B = lv_alloc_floats((size_t)(K * N));
  float *C = lv_alloc_floats((size_t)(M * N));
  fill_uniform(A, (size_t)(M * K), seed, "bench/probe_a");
  fill_uniform(B, (size_t)(K * N), seed, "bench/probe_b");
  mm_plan p;
  mm_plan_init(&p, ctx, (mm_desc){.batch = 1, .M = M, .N = N, .K = K, .trans_b = trans_b});
  const double fl = mm_flops(&p.d);
  int reps = (int)(budget / fl);
  reps = reps < 3 ? 3 : reps > 200 ? 200 : reps;
  mm_exec(&p, ctx, C, A, B, NULL);
  double tmin = INFINITY, tsum = 0;
  for (int r = 0; r < reps; r++) {
    double t0 = lv_now_s();
    mm_exec(&p, ctx, C, A, B, NULL);
    double t = lv_now_s() - t0;
    tsum += t;
    if (t < tmin) tmin = t;
  }
  *best = fl / tmin * 1e-9;
  *mean = fl / (tsum / reps) * 1e-9;
  mm_plan_free(&p);
  free(A);
  free(B);
  free(C);
}

void bench_run_probe(const bench_opts *o, bench_probe *r) {
  memset(r, 0, sizeof *r);
  r->threads = omp_get_max_threads();
  dnn_ctx ctx;
  dnn_ctx_init(&ctx);
  /* 1. a large square product (about 2 s of work at 350 GFLOP/s for n = 4096): the MFU reference */
  const uint64_t seed = (uint64_t)o->cfg.run.seed;
  r->n = o->probe_n;
  probe_rate(&ctx, r->n, r->n, r->n, 0, 7e11, seed, &r->square_best, &r->square_mean);
  char isa[32];
  dnn_ctx c16;
  r->bf16 = dnn_cpu_has_bf16(isa, sizeof isa);
  if (r->bf16) { /* the bf16 reference: the same square product, operands rounded per call */
    dnn_ctx_init(&c16);
    dnn_ctx_set_precision(&c16, MM_PREC_BF16);
    probe_rate(&c16, r->n, r->n, r->n, 0, 1.4e12, seed, &r->square16_best, &r->square16_mean);
  }
  /* 2. the model's largest projection (most weights; mx_proj unless F is large), forward over the
   * batch: (tokens, in) @ W^T, W (out, in) */
  linear_desc pd[LV_N_PROJ];
  lv_model_proj_descs(pd, o->run_enc ? &o->enc : &o->dec, o->tokens);
  int big = 0;
  for (int j = 1; j < LV_N_PROJ; j++)
    if (pd[j].in * pd[j].out > pd[big].in * pd[big].out) big = j;
  r->shape[0] = pd[big].rows;
  r->shape[1] = pd[big].in;
  r->shape[2] = pd[big].out;
  double mean;
  probe_rate(&ctx, r->shape[0], r->shape[2], r->shape[1], 1, 2e11, seed, &r->shape_best, &mean);
  if (r->bf16) {
    probe_rate(&c16, r->shape[0], r->shape[2], r->shape[1], 1, 4e11, seed, &r->shape16_best, &mean);
    dnn_ctx_free(&c16);
  }
  dnn_ctx_free(&ctx);
}

/* Random batch: tokens uniform in [0, V), no padding; decoder targets are the next tokens of a random
 * stream, encoder labels uniform in [0, K). */
void bench_make_batch(bench_batch *bb, const lv_dims *d, int64_t B, int64_t L, uint64_t seed) {
  const size_t BT = (size_t)(B * L);
  bb->tokens = calloc(BT, sizeof(int32_t));
  bb->targets = calloc(BT, sizeof(int32_t));
  bb->labels = calloc((size_t)B, sizeof(int32_t));
  bb->mask = malloc(BT);
  bb->tmask = malloc(BT);
  CHECK_ALLOC(bb->tokens);
  CHECK_ALLOC(bb->targets);
  CHECK_ALLOC(bb->labels);
  CHECK_ALLOC(bb->mask);
  CHECK_ALLOC(bb->tmask);
  rng_stream rs = rng_make(seed, "bench/tokens", 0, 0), rl = rng_make(seed, "bench/labels", 0, 0);
  for (int64_t b = 0; b < B; b++) {
    for (int64_t t = 0; t <= L; t++) {
      int32_t tok = (int32_t)(rng_u32(&rs, (uint64_t)(b * (L + 1) + t)) % (uint32_t)d->V);
      if (t < L) bb->tokens[b * L + t] = tok;
      if (t > 0) bb->targets[b * L + t - 1] = tok;
    }
    bb->labels[b] = d->decoder ? 0 : (int32_t)(rng_u32(&rl, (uint64_t)b) % (uint32_t)d->K);
  }
  memset(bb->mask, 1, BT);
  memset(bb->tmask, 1, BT);
}

void bench_free_batch(bench_batch *bb) {
  free(bb->tokens);
  free(bb->targets);
  free(bb->labels);
  free(bb->mask);
  free(bb->tmask);
}

void bench_model_init(bench_model *bm, const lv_config *c, const lv_dims *d, const lv_layout *lay, int64_t B,
                      int64_t L, mm_prec prec) {
  memset(bm, 0, sizeof *bm);
  bm->c = c, bm->d = d, bm->lay = lay;
  const uint64_t seed = (uint64_t)c->run.seed;
  dnn_ctx_init(&bm->ctx);
  dnn_ctx_set_precision(&bm->ctx, prec);
  const size_t np = lay->n_param_floats, nl = (size_t)d->n_layers, S = (size_t)d->S, Z = (size_t)d->Z;
  bm->params = lv_alloc_floats(np), bm->state = lv_alloc_floats(lay->n_state_floats);
  bm->m1 = lv_alloc_floats(np), bm->m2 = lv_alloc_floats(np), bm->grads = lv_alloc_floats(np);
  bm->n_stat = nl * S + nl * S * Z;
  bm->n_s = calloc(bm->n_stat, sizeof(double));
  CHECK_ALLOC(bm->n_s);
  bm->key_sums = bm->n_s + nl * S;
  lv_layout_init(lay, seed, bm->params, bm->state);
  bm->m = lv_model_create(lay, B, L, &bm->ctx);
  lv_model_set_codebooks(bm->m, bm->state);
  bench_make_batch(&bm->bb, d, B, L, seed);
  bm->b = (lv_batch){bm->bb.tokens, bm->bb.mask, d->decoder ? bm->bb.targets : NULL, d->decoder ? bm->bb.tmask : NULL,
                     d->decoder ? NULL : bm->bb.labels, 0};
  bm->fo = (lv_fwd_opts){1, seed, 1, (float)c->model.dropout, (float)c->model.hidden_dropout};
  bm->task_scale = 1.0 / (double)(d->decoder ? B * L : B);
  bm->commit_scale = 1.0 / (double)(B * L);
}

double bench_model_step(bench_model *bm, int s, double t[BM_MARKS]) {
  const lv_config *c = bm->c;
  const lv_dims *d = bm->d;
  const lv_layout *lay = bm->lay;
  const size_t np = lay->n_param_floats, S = (size_t)d->S, Z = (size_t)d->Z;
  bm->fo.step = (uint32_t)s;
  t[BM_START] = lv_now_s();
  memset(bm->grads, 0, sizeof(float) * np);
  memset(bm->n_s, 0, sizeof(double) * bm->n_stat);
  lv_fwd_stats st;
  t[BM_ZEROED] = lv_now_s();
  lv_model_forward(bm->m, bm->params, &bm->b, &bm->fo, &st, bm->n_s, bm->key_sums);
  t[BM_FWD] = lv_now_s();
  lv_model_backward(bm->m, bm->params, bm->grads, &bm->b, &bm->fo, bm->task_scale, bm->commit_scale,
                    c->model.commit_weight);
  t[BM_BWD] = lv_now_s();
  const double gnorm = sqrt(grad_sumsq(bm->grads, 0, np));
  t[BM_GNORM] = lv_now_s();
  adamw_update(lay, bm->params, bm->grads, bm->m1, bm->m2, 0, np, c->train.lr, c->train.weight_decay,
               clip_coef(gnorm, c->train.clip), s);
  t[BM_ADAMW] = lv_now_s();
  for (int i = 0; i < d->n_layers; i++)
    vq_codebook_update(bm->state + lay->layer[i].c_sum, bm->state + lay->layer[i].c_count, bm->n_s + (size_t)i * S,
                       bm->key_sums + (size_t)i * S * Z, (float)c->model.codebook_decay, d->S, d->Z);
  lv_model_set_codebooks(bm->m, bm->state);
  t[BM_END] = lv_now_s();
  return st.task_sum / st.task_count;
}

void bench_model_free(bench_model *bm) {
  lv_model_free(bm->m);
  bench_free_batch(&bm->bb);
  free(bm->params);
  free(bm->state);
  free(bm->m1);
  free(bm->m2);
  free(bm->grads);
  free(bm->n_s);
  dnn_ctx_free(&bm->ctx);
}

void bench_run_model(const bench_opts *o, const lv_dims *d, int64_t L, bench_result *r) {
  memset(r, 0, sizeof *r);
  r->rss_start = lv_proc_status_bytes("VmRSS:");
  r->threads = omp_get_max_threads();
  const char *env = getenv("OMP_NUM_THREADS");
  snprintf(r->omp_env, sizeof r->omp_env, "%s", env && *env ? env : "unset");
  const int64_t B = o->tokens / L;
  r->B = B;
  r->L = L;
  lv_layout lay;
  char err[256];
  if (lv_layout_build(&lay, d, err, sizeof err)) DIE("bench: %s", err);
  bench_model bm; /* bf16 is checked by the parent */
  bench_model_init(&bm, &o->cfg, d, &lay, B, L,
                   o->cfg.model.precision == LV_PRECISION_BF16 ? MM_PREC_BF16 : MM_PREC_F32);
  r->fl = lv_model_count_flops(bm.m);
  r->ws_bytes = (double)dnn_ctx_ws_bytes(&bm.ctx);
  r->rss_ready = lv_proc_status_bytes("VmRSS:");

  r->step_min = INFINITY;
  dnn_ctx_timing(&bm.ctx, 1);
  for (int s = 1; s <= o->warmup + o->steps; s++) {
    double t[BM_MARKS], mm0, round0, mm1, round1;
    dnn_ctx_times(&bm.ctx, &mm0, &round0);
    const double loss = bench_model_step(&bm, s, t);
    dnn_ctx_times(&bm.ctx, &mm1, &round1);
    if (s == 1) r->loss_first = loss;
    r->loss_last = loss;
    if (s <= o->warmup) continue;
    r->fwd += t[BM_FWD] - t[BM_ZEROED];
    r->bwd += t[BM_BWD] - t[BM_FWD];
    r->upd += (t[BM_ZEROED] - t[BM_START]) + (t[BM_END] - t[BM_BWD]);
    r->mm += mm1 - mm0;
    r->round += round1 - round0;
    if (t[BM_END] - t[BM_START] < r->step_min) r->step_min = t[BM_END] - t[BM_START];
  }
  r->fwd /= o->steps;
  r->bwd /= o->steps;
  r->upd /= o->steps;
  r->mm /= o->steps;
  r->round /= o->steps;
  r->step = r->fwd + r->bwd + r->upd;
  r->rss_end = lv_proc_status_bytes("VmRSS:");
  r->hwm = lv_proc_status_bytes("VmHWM:");
  bench_model_free(&bm);
  lv_layout_free(&lay);
}
