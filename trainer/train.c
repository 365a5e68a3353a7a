/* Training setup: config + datasets -> model sizes, layout, arenas, model; teardown. */
#include "trainer/train.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "io/model_io.h"
#include "trainer/base/alloc.h"
#include "trainer/base/check.h"
#include "trainer/base/dist.h"
#include "trainer/base/log.h"
#include "trainer/base/range.h"

static void *alloc_z(size_t bytes) {
  void *p = calloc(1, bytes ? bytes : 1);
  CHECK_ALLOC(p);
  return p;
}

/* Opens split `split` of `path` (named by config key `key` in errors) once, with LM windows of
 * seq_len tokens (0: not known yet; then the split must be a classification split). */
static void open_split(lv_trainer *t, lv_split *sp, const char *path, const char *split, const char *key,
                       int64_t seq_len) {
  if (!path[0]) DIE_INPUT_ALL("%s: no dataset given (set %s=FILE.h5)", key, key);
  if (!lv_dataset_has_split(path, split)) DIE_INPUT_ALL("%s: %s has no split '%s'", key, path, split);
  lv_dataset_opts o = {.split = split, .seq_len = seq_len, .chunk_cache_bytes = (size_t)t->cfg.data.cache_mb << 20};
  sp->ds = lv_dataset_open(path, &o);
  lv_dataset_verify_all(sp->ds, key, t->cfg.data.verify); /* collective: digests (data.verify), version-1 note */
  sp->lm = lv_dataset_task(sp->ds) == LV_TASK_LM;
  if (sp->lm && seq_len == 0) DIE_INPUT_ALL("data.seq_len: a language-modelling dataset needs an explicit seq_len");
  sp->n = lv_dataset_num_samples(sp->ds);
  if (sp->n == 0 && sp->lm) /* evaluating nothing would log a loss of 0/0 */
    DIE_INPUT_ALL("%s: split '%s' of %s has %lld tokens, fewer than seq_len + 1 = %lld: no window to %s", key, split,
                  path, (long long)lv_dataset_num_tokens(sp->ds), (long long)seq_len + 1,
                  strcmp(key, "data.train") ? "evaluate" : "train on");
  if (sp->n == 0) DIE_INPUT_ALL("%s: split '%s' of %s has no samples", key, split, path);
}

/* data.seq_len, or the longest sample of `sp` (the split the model is sized from) rounded up to the
 * chunk size. */
static int64_t choose_seq_len(const lv_trainer *t, const lv_split *sp) {
  const lv_config *c = &t->cfg;
  int64_t C = c->model.chunk_size;
  if (c->data.seq_len > 0) {
    if (c->data.seq_len % C) DIE_INPUT_ALL("data.seq_len: %lld is not a multiple of model.chunk_size %lld",
                                           (long long)c->data.seq_len, (long long)C);
    return c->data.seq_len;
  }
  int64_t mx = lv_dataset_max_length(sp->ds);
  return (int64_t)lv_round_up((size_t)mx, (size_t)C);
}

int trainer_bf16_missing(char *why, size_t cap) {
  char isa[32] = "";
  if (dnn_cpu_has_bf16(isa, sizeof isa)) return 0;
  snprintf(why, cap, "model.precision: bf16 needs native bf16 matmuls (the AVX512_BF16 instructions or AMX), which "
           "this CPU lacks: oneDNN runs here at %s (ONEDNN_MAX_CPU_ISA / DNNL_MAX_CPU_ISA may cap it). Use "
           "model.precision=f32 (checkpoints are interchangeable between the precisions)", isa);
  return 1;
}

lv_dims trainer_model_dims(const lv_config *c, int64_t V, int64_t K) {
  lv_dims d;
  memset(&d, 0, sizeof d);
  d.decoder = c->model.mode == LV_MODE_DECODER;
  d.prenorm = c->model.prenorm;
  d.norm = c->model.norm;
  d.tie_embeddings = c->model.tie_embeddings;
  d.far_attention = c->model.far_attention;
  d.V = V;
  d.K = K;
  d.D = c->model.d_model;
  d.Z = c->model.z_dim;
  d.E = c->model.v_dim;
  d.N = c->model.ema_dim;
  d.S = c->model.codebook_size;
  d.C = c->model.chunk_size;
  d.F = c->model.ffn_dim ? c->model.ffn_dim : 2 * c->model.d_model;
  d.n_layers = c->model.n_layers;
  return d;
}

/* Model sizes from the config and the split the model is sized from (`path`, for messages); checks
 * they agree. */
static void derive_dims(lv_trainer *t, const lv_split *sp, const char *path) {
  const lv_config *c = &t->cfg;
  lv_dataset *ds = sp->ds;
  const int decoder = c->model.mode == LV_MODE_DECODER;
  if (decoder != sp->lm)
    DIE_INPUT_ALL("model.mode: '%s' needs a %s dataset, but %s is a %s dataset", decoder ? "decoder" : "encoder",
                  decoder ? "language-modelling" : "classification", path,
                  sp->lm ? "language-modelling" : "classification");
  int64_t V = lv_dataset_vocab_size(ds), K = lv_dataset_num_classes(ds);
  if (c->model.vocab_size && c->model.vocab_size != V)
    DIE_INPUT_ALL("model.vocab_size: config says %lld but %s has vocab size %lld", (long long)c->model.vocab_size,
                  path, (long long)V);
  if (!decoder && c->model.n_classes && c->model.n_classes != K)
    DIE_INPUT_ALL("model.n_classes: config says %lld but %s has %lld classes", (long long)c->model.n_classes,
                  path, (long long)K);
  t->dims = trainer_model_dims(c, V, K);
}

static void alloc_split_buffers(lv_trainer *t, lv_split *sp) {
  size_t rows = (size_t)t->mb, L = (size_t)t->L;
  sp->raw = alloc_z(sizeof(int32_t) * rows * (L + 1));
  sp->rawmask = alloc_z(rows * (L + 1));
  sp->tokens = alloc_z(sizeof(int32_t) * rows * L);
  sp->targets = alloc_z(sizeof(int32_t) * rows * L);
  sp->labels = alloc_z(sizeof(int32_t) * rows);
  sp->mask = alloc_z(rows * L);
  sp->tmask = alloc_z(rows * L);
}

void trainer_setup(lv_trainer *t, const lv_config *cfg, int need_train) {
  memset(t, 0, sizeof *t);
  t->cfg = *cfg;
  t->config_yaml = lv_config_to_yaml_string(cfg);
  t->rank = dist_rank();
  t->world = dist_size();
  const lv_config *c = &t->cfg;
  if (c->dist.world_size && c->dist.world_size != t->world)
    DIE_INPUT_ALL("dist.world_size: the config pins %lld ranks but the job has %d", (long long)c->dist.world_size,
                t->world);
  /* Global batch split: Bg = world x n_micro x mb. */
  t->Bg = c->train.batch_size;
  t->n_micro = c->train.micro_batch;
  if (t->Bg % ((int64_t)t->world * t->n_micro))
    DIE_INPUT_ALL("train.batch_size: %lld does not divide over %d ranks x %lld micro-batches", (long long)t->Bg,
                t->world, (long long)t->n_micro);
  t->b_rank = t->Bg / t->world;
  t->mb = t->b_rank / t->n_micro;
  /* The model is sized from the training split, or in eval from the split evaluated; each split is
   * opened once. */
  const char *src_path = need_train ? c->data.train : c->data.val[0] ? c->data.val : c->data.train;
  lv_split *src = need_train ? &t->train : &t->eval;
  open_split(t, src, src_path, need_train ? c->data.split_train : c->data.split_val,
             need_train ? "data.train" : "data.val", c->data.seq_len);
  t->L = choose_seq_len(t, src);
  if (need_train && t->train.n < t->Bg)
    DIE_INPUT_ALL("train.batch_size: %lld is larger than the %lld training samples of %s", (long long)t->Bg,
                  (long long)t->train.n, c->data.train);
  if (need_train && t->train.n < t->world)
    DIE_INPUT_ALL("more ranks (%d) than training samples (%lld)", t->world, (long long)t->train.n);
  if (need_train && c->data.val[0]) open_split(t, &t->eval, c->data.val, c->data.split_val, "data.val", t->L);
  derive_dims(t, src, src_path);
  char err[512];
  if (lv_layout_build(&t->lay, &t->dims, err, sizeof err)) DIE_INPUT_ALL("%s", err);
  /* Long samples: an error unless the config allows truncation (checked before any compute). */
  if (!src->lm && !c->data.truncate) {
    int64_t mx = lv_dataset_max_length(src->ds);
    if (mx > t->L)
      DIE_INPUT_ALL("data.seq_len: %s has samples of %lld tokens, longer than seq_len %lld (set data.truncate=true "
                    "to cut them)", src_path, (long long)mx, (long long)t->L);
  }
  dnn_ctx_init(&t->ctx);
  if (c->model.precision == LV_PRECISION_BF16) {
    char why[512];
    CHECK_INPUT_ALL(trainer_bf16_missing(why, sizeof why), "%s", why);
    dnn_ctx_set_precision(&t->ctx, MM_PREC_BF16);
  }
  const lv_dims *d = &t->dims;
  size_t nl = (size_t)d->n_layers, S = (size_t)d->S;
  /* A model within the keys' limits can still not fit: say so by the plan, before allocating. */
  lv_model_mem mem = lv_model_plan(d, t->mb, t->L);
  double plan_bytes = 4.0 * (double)lv_model_plan_total(&mem, t->lay.n_param_floats, t->lay.n_state_floats,
                                                        need_train ? 2 : 0);
  double phys_bytes = (double)sysconf(_SC_PHYS_PAGES) * (double)sysconf(_SC_PAGE_SIZE);
  if (phys_bytes > 0 && plan_bytes > phys_bytes)
    DIE_INPUT_ALL("model: the memory plan needs %.1f GiB per rank, more than this node's %.1f GiB: reduce the "
                  "micro-batch (train.batch_size / ranks / train.micro_batch = %lld sequences of %lld) or the model",
                  plan_bytes / 1073741824.0, phys_bytes / 1073741824.0, (long long)t->mb, (long long)t->L);
  t->red.sl = lv_stat_layout_make(d->n_layers, d->S, d->Z, t->world);
  t->red.grad_pad = reducer_grad_floats(t->lay.n_param_floats, t->world);
  t->red.n_stat_pad = reducer_stat_doubles(t->red.sl.total, t->world);
  t->params = lv_alloc_floats(t->red.grad_pad); /* padded like the gradients: ZeRO-1 all-gathers whole segments */
  t->state = lv_alloc_floats(t->lay.n_state_floats);
  t->red.grads = lv_alloc_floats(t->red.grad_pad);
  t->red.stats = alloc_z(sizeof(double) * t->red.n_stat_pad);
  if (need_train) {
    size_t bucket_floats = (size_t)(c->dist.bucket_mb * 1048576.0 / 4.0);
    t->red.rd = reducer_create(t->red.grads, t->lay.n_param_floats, t->red.stats, t->red.sl.total, bucket_floats, (int)c->dist.zero,
                           c->dist.comm_thread);
    t->opt.n_shard = reducer_shard(t->red.rd, t->opt.shard, (int)(sizeof t->opt.shard / sizeof t->opt.shard[0]));
    if (t->opt.n_shard == (int)(sizeof t->opt.shard / sizeof t->opt.shard[0]))
      DIE_INPUT_ALL("dist.bucket_mb: %g MiB makes more than %d buckets; use larger buckets", c->dist.bucket_mb,
                  t->opt.n_shard);
    t->opt.n_moments = 0;
    for (int k = 0; k < t->opt.n_shard; k++) {
      t->opt.shard_off[k] = t->opt.n_moments;
      t->opt.n_moments += t->opt.shard[k].hi - t->opt.shard[k].lo;
    }
    t->opt.m = lv_alloc_floats(t->opt.n_moments);
    t->opt.v = lv_alloc_floats(t->opt.n_moments);
    t->order.perm = alloc_z(sizeof(int64_t) * (size_t)t->train.n);
    t->order.perm_epoch = -1;
    t->order.gidx = alloc_z(sizeof(int64_t) * (size_t)t->Bg);
    t->reseed.at = alloc_z(sizeof(int64_t) * nl * S);
    t->reseed.pos = alloc_z(sizeof(int64_t) * nl * S);
    t->reseed.maybe = alloc_z(S);
  }
  if (t->train.ds) alloc_split_buffers(t, &t->train);
  if (t->eval.ds) alloc_split_buffers(t, &t->eval);
  t->model = lv_model_create(&t->lay, t->mb, t->L, &t->ctx);
  t->log.flops_per_token = lv_model_count_flops(t->model).model / (double)(t->mb * t->L);
  if (dist_is_root()) {
    char classes[32] = ""; /* the decoder has no classes */
    if (!d->decoder) snprintf(classes, sizeof classes, " K %lld", (long long)d->K);
    printf("model: %s, %s, %s, %lld layers, D %lld Z %lld E %lld N %lld S %lld C %lld F %lld, V %lld%s\n",
           d->decoder ? "decoder" : "encoder", d->prenorm ? "prenorm" : "postnorm",
           d->norm == NORM_LAYERNORM ? "layernorm" : d->norm == NORM_RMSNORM ? "rmsnorm" : "scalenorm", (long long)d->n_layers,
           (long long)d->D, (long long)d->Z, (long long)d->E, (long long)d->N, (long long)d->S, (long long)d->C,
           (long long)d->F, (long long)d->V, classes);
    size_t np = 0;
    for (int i = 0; i < t->lay.n_params; i++) np += (size_t)t->lay.params[i].numel;
    printf("parameters: %zu trained, %zu codebook state; seq_len %lld; batch %lld = %d ranks x %lld micro x %lld\n",
           np, t->lay.n_state_floats, (long long)t->L, (long long)t->Bg, t->world, (long long)t->n_micro,
           (long long)t->mb);
    lv_model_print_plan(stdout, d, t->mb, t->L, t->lay.n_param_floats, t->lay.n_state_floats, need_train ? 2 : 0);
    if (c->model.precision == LV_PRECISION_BF16)
      printf("  precision bf16: matmul inputs rounded to bf16 tile by tile in a %.1f MiB operand buffer (the "
             "largest A + B of one tile); everything above stays f32\n", (double)dnn_ctx_ws_bytes(&t->ctx) / 1048576.0);
    if (need_train)
      printf("  AdamW moments on this rank: %.1f MiB (ZeRO-1 %s: %.1f MiB without it); %d reduction buckets of <= %g MiB\n",
             2.0 * 4.0 * (double)t->opt.n_moments / 1048576.0, c->dist.zero ? "on" : "off",
             2.0 * 4.0 * (double)t->red.grad_pad / 1048576.0, reducer_num_buckets(t->red.rd), c->dist.bucket_mb);
    fflush(stdout);
  }
  if (need_train && dist_is_root()) {
    printf("run: %s, dir %s\n", c->run.name[0] ? c->run.name : "(unnamed: set run.name)", c->run.dir);
    char *path = t->log.path;
    if (c->log.metrics[0])
      snprintf(path, sizeof t->log.path, "%s", c->log.metrics);
    else
      snprintf(path, sizeof t->log.path, "%s/metrics.jsonl", c->run.dir);
    t->log.metrics = fopen(path, "a");
    if (!t->log.metrics) DIE_INPUT("log.metrics: cannot open %s for appending", path);
  }
}

void trainer_init_params(lv_trainer *t, const char *model_file, const char *from) {
  if (!model_file) {
    lv_layout_init(&t->lay, (uint64_t)t->cfg.run.seed, t->params, t->state);
  } else {
    char err[1024];
    int bad = lv_model_load(model_file, &t->lay, t->params, t->state, err, sizeof err);
    CHECK_INPUT_ALL(bad, "%s: %s", from, err); /* a file some ranks cannot read */
  }
  lv_model_set_codebooks(t->model, t->state);
}

static void free_split(lv_split *sp) {
  if (sp->ds) lv_dataset_close(sp->ds);
  free(sp->raw);
  free(sp->rawmask);
  free(sp->tokens);
  free(sp->targets);
  free(sp->labels);
  free(sp->mask);
  free(sp->tmask);
}

void trainer_free(lv_trainer *t) {
  reducer_free(t->red.rd);
  lv_model_free(t->model);
  free_split(&t->train);
  free_split(&t->eval);
  free(t->params);
  free(t->state);
  free(t->red.grads);
  free(t->red.stats);
  free(t->opt.m);
  free(t->opt.v);
  free(t->order.perm);
  free(t->order.gidx);
  free(t->reseed.at);
  free(t->reseed.pos);
  free(t->reseed.maybe);
  free(t->config_yaml);
  if (t->log.metrics) fclose(t->log.metrics);
  lv_layout_free(&t->lay);
  dnn_ctx_free(&t->ctx);
}
