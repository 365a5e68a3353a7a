/* The step loop: data order, micro-batches, reduction, clipping, AdamW, codebook update, logging,
 * evaluation. Spec: "Optimization", "Vector quantization of keys", "Randomness". */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "io/model_io.h"
#include "layers/vq.h"
#include "trainer/base/check.h"
#include "trainer/base/watchdog.h"
#include "trainer/base/clock.h"
#include "trainer/base/dist.h"
#include "trainer/base/hash.h"
#include "trainer/base/log.h"
#include "trainer/jsonl.h"
#include "trainer/optim.h"
#include "trainer/placement.h"
#include "trainer/base/rng.h"
#include "trainer/signals.h"
#include "trainer/train.h"

/* Figures of one step (rank 0 logs them). */
typedef struct {
  double loss, task, accuracy, grad_norm, lr, tokens, reseeds;
  double step_s, data_s, compute_s, exposed_s, comm_s, opt_s, bytes, busbw, slowest_compute_s;
  double targets;      /* samples (encoder) / counted targets (decoder) of the global batch */
  double peak_rss_mib; /* the largest peak RSS of any rank so far */
} lv_step_result;

/* This process's peak resident memory so far (getrusage: KiB on Linux), MiB. */
static double peak_rss_mib(void) {
  struct rusage ru;
  if (getrusage(RUSAGE_SELF, &ru) != 0) return 0;
  return (double)ru.ru_maxrss / 1024.0;
}

/* Seeded Fisher-Yates permutation of the n training samples for `epoch` (docs/randomness.md). */
static void make_perm(lv_trainer *t, int64_t epoch) {
  int64_t n = t->train.n;
  rng_stream rs = rng_make((uint64_t)t->cfg.run.seed, "shuffle", (uint32_t)epoch, 0);
  for (int64_t i = 0; i < n; i++) t->order.perm[i] = i;
  for (int64_t i = n - 1; i > 0; i--) {
    uint64_t r = rng_u32(&rs, (uint64_t)(n - 1 - i));
    int64_t j = (int64_t)((r * (uint64_t)(i + 1)) >> 32);
    int64_t tmp = t->order.perm[i];
    t->order.perm[i] = t->order.perm[j];
    t->order.perm[j] = tmp;
  }
  t->order.perm_epoch = epoch;
}

/* Global sample g of the run's stream (g = step_index * Bg + position) -> dataset index. */
static int64_t sample_at(lv_trainer *t, int64_t g) {
  int64_t epoch = g / t->train.n;
  if (epoch != t->order.perm_epoch) make_perm(t, epoch);
  return t->order.perm[g % t->train.n];
}

/* Reads n rows by index into the split's batch buffers (model layout). LM: training counts every
 * target (the spec's loss); evaluation (`evaluating`) counts the targets the split's eval_mask
 * marks, if it has one (docs/dataset-format.md). */
static void read_rows(lv_trainer *t, lv_split *sp, int64_t n, const int64_t *idx, int evaluating) {
  const int64_t L = t->L;
  if (sp->lm) {
    lv_dataset_read(sp->ds, n, idx, sp->raw, sp->rawmask, NULL, NULL, L + 1, 0);
    for (int64_t r = 0; r < n; r++)
      for (int64_t p = 0; p < L; p++) {
        sp->tokens[r * L + p] = sp->raw[r * (L + 1) + p];
        sp->targets[r * L + p] = sp->raw[r * (L + 1) + p + 1];
        sp->mask[r * L + p] = 1;
        sp->tmask[r * L + p] = evaluating ? sp->rawmask[r * (L + 1) + p + 1] : 1;
      }
  } else {
    lv_dataset_read(sp->ds, n, idx, sp->tokens, sp->mask, NULL, sp->labels, L, t->cfg.data.truncate);
  }
}

static lv_batch batch_of(lv_split *sp, int64_t sample0) {
  lv_batch b = {sp->tokens, sp->mask, sp->lm ? sp->targets : NULL, sp->lm ? sp->tmask : NULL,
                sp->lm ? NULL : sp->labels, sample0};
  return b;
}

static int64_t valid_len(lv_trainer *t, int64_t idx) {
  if (t->train.lm) return t->L;
  int64_t n = lv_dataset_length(t->train.ds, idx);
  return n < t->L ? n : t->L;
}

/* Decides which rows of this rank's share hold the keys that re-seed candidate codes (spec:
 * dead-code re-seeding), so those keys can travel in the statistics' reduction. */
static void plan_reseed(lv_trainer *t, int64_t step, double n_tokens) {
  const lv_dims *d = &t->dims;
  const int64_t S = d->S, lo = t->rank * t->b_rank, hi = lo + t->b_rank;
  for (int i = 0; i < d->n_layers; i++) {
    const float *cc = t->state + t->lay.layer[i].c_count;
    vq_reseed_candidates(t->reseed.maybe, cc, (float)t->cfg.model.codebook_decay, n_tokens, S);
    rng_stream rs = rng_make((uint64_t)t->cfg.run.seed, "codebook_reseed", (uint32_t)step, (uint32_t)i);
    for (int64_t s = 0; s < S; s++) {
      t->reseed.at[i * S + s] = -1;
      if (!t->reseed.maybe[s]) continue;
      int64_t j = vq_reseed_token(rng_uniform(&rs, (uint64_t)s), (int64_t)n_tokens);
      for (int64_t b = 0; b < t->Bg; b++) { /* j-th valid token: samples in order, then positions */
        int64_t len = valid_len(t, t->order.gidx[b]);
        if (j < len) {
          if (b >= lo && b < hi) {
            t->reseed.at[i * S + s] = b - lo;
            t->reseed.pos[i * S + s] = j;
          }
          break;
        }
        j -= len;
      }
    }
  }
}

/* After micro-batch k's forward: copy the keys that re-seed codes from its rows. */
static void gather_reseed_keys(lv_trainer *t, int64_t k) {
  const lv_dims *d = &t->dims;
  const int64_t S = d->S, Z = d->Z;
  for (int i = 0; i < d->n_layers; i++) {
    const float *keys = lv_model_keys(t->model, i);
    for (int64_t s = 0; s < S; s++) {
      int64_t row = t->reseed.at[i * S + s];
      if (row < k * t->mb || row >= (k + 1) * t->mb) continue;
      const float *src = keys + ((row - k * t->mb) * t->L + t->reseed.pos[i * S + s]) * Z;
      double *dst = t->red.stats + t->red.sl.reseed_keys + ((size_t)i * (size_t)S + (size_t)s) * (size_t)Z;
      for (int64_t z = 0; z < Z; z++) dst[z] = src[z];
    }
  }
}

void trainer_evaluate(lv_trainer *t, lv_split *sp, int64_t max_batches, double *loss, double *acc, double *tokens,
                      lv_pos_buckets *pb) {
  const int64_t gb = (int64_t)t->world * t->mb;
  int64_t nb = (sp->n + gb - 1) / gb;
  if (max_batches > 0 && max_batches < nb) nb = max_batches;
  double sums[4 + 2 * LV_MAX_POS_BUCKETS] = {0}; /* loss sum, count, correct, tokens; by position: sums, counts */
  const int nbk = pb && sp->lm ? pb->n : 0;
  int64_t *idx = malloc(sizeof(int64_t) * (size_t)t->mb);
  CHECK_ALLOC(idx);
  lv_fwd_opts o = {0, (uint64_t)t->cfg.run.seed, 0, 0.0f, 0.0f};
  for (int64_t bi = 0; bi < nb; bi++) {
    int64_t first = bi * gb + (int64_t)t->rank * t->mb, n_real = 0;
    for (int64_t r = 0; r < t->mb; r++) {
      int64_t g = first + r;
      idx[r] = g < sp->n ? g : 0;
      n_real += g < sp->n;
    }
    read_rows(t, sp, t->mb, idx, 1);
    for (int64_t r = n_real; r < t->mb; r++) { /* padding rows of the last batch count nowhere */
      if (sp->lm)
        memset(sp->tmask + r * t->L, 0, (size_t)t->L);
      else
        sp->labels[r] = -1;
    }
    lv_batch b = batch_of(sp, first);
    lv_fwd_stats st;
    lv_model_forward(t->model, t->params, &b, &o, &st, NULL, NULL);
    sums[0] += st.task_sum;
    sums[1] += st.task_count;
    sums[2] += st.correct;
    sums[3] += st.valid;
    if (nbk) lv_pos_buckets_add(pb, lv_model_target_nll(t->model), sp->targets, sp->tmask, t->mb);
  }
  free(idx);
  if (nbk) {
    memcpy(sums + 4, pb->loss_sum, sizeof(double) * (size_t)nbk);
    memcpy(sums + 4 + nbk, pb->count, sizeof(double) * (size_t)nbk);
  }
  dist_sum_f64(sums, 4 + 2 * nbk);
  if (nbk) {
    memcpy(pb->loss_sum, sums + 4, sizeof(double) * (size_t)nbk);
    memcpy(pb->count, sums + 4 + nbk, sizeof(double) * (size_t)nbk);
    double counted = 0;
    for (int i = 0; i < nbk; i++) counted += pb->count[i];
    if (counted != sums[1]) /* exact integers: every counted target is in one bucket */
      DIE("eval: the position buckets count %.0f targets, the evaluation %.0f: a bug", counted, sums[1]);
  }
  *loss = sums[1] > 0 ? sums[0] / sums[1] : NAN;
  *acc = sums[1] > 0 ? sums[2] / sums[1] : NAN;
  *tokens = sums[1];
}

static void save_model(lv_trainer *t, const char *name, int64_t step) {
  if (!dist_is_root()) return;
  char path[LV_PATH_MAX];
  snprintf(path, sizeof path, "%s/%s", t->cfg.run.dir, name);
  lv_model_save(path, &t->lay, t->params, t->state, t->config_yaml, step);
  log_info("saved %s (step %lld)", path, (long long)step);
}

/* Names the first trained tensor whose (reduced) gradient holds a NaN or Inf. */
static void describe_bad_grad(lv_trainer *t) {
  for (int i = 0; i < t->lay.n_params; i++) {
    const lv_tensor *T = &t->lay.params[i];
    for (int64_t j = 0; j < T->numel; j++)
      if (!isfinite(t->red.grads[T->offset + (size_t)j])) {
        snprintf(t->nonfinite_where, sizeof t->nonfinite_where, "gradient of %s", T->name);
        return;
      }
  }
  snprintf(t->nonfinite_where, sizeof t->nonfinite_where, "gradient norm");
}

/* Gradient hook of the model: during the last micro-batch's backward, buckets go to the reducer. */
static void grads_ready(void *ctx, size_t lo) {
  lv_trainer *t = ctx;
  if (t->red.last_micro) reducer_grads_ready(t->red.rd, lo);
}

/* FNV-1a over the bytes of the parameters and codebooks: cheap, and any differing bit changes it. */
static uint64_t replica_hash(const lv_trainer *t) {
  uint64_t h = lv_fnv1a(LV_FNV1A_INIT, t->params, sizeof(float) * t->lay.n_param_floats);
  return lv_fnv1a(h, t->state, sizeof(float) * t->lay.n_state_floats);
}

/* One optimizer step s (from 1): fills r (see lv_step_result). Returns 0, or 1 if the loss or the
 * gradient was not finite (the step is then not applied). */
static int train_step(lv_trainer *t, int64_t s, lv_step_result *r) {
  const lv_config *c = &t->cfg;
  const lv_dims *d = &t->dims;
  const int nl = (int)d->n_layers;
  const lv_stat_layout *sl = &t->red.sl;
  double *stats = t->red.stats;
  double t0 = lv_now_s();
  watchdog_phase(LV_PHASE_STEP, (long long)s);
  memset(t->red.grads, 0, sizeof(float) * t->red.grad_pad);
  memset(stats, 0, sizeof(double) * t->red.n_stat_pad);
  t->nonfinite_where[0] = 0;
  lv_signal_test_hook((long long)s, t->rank);
  /* The global batch and its denominators (every rank knows every sample's length). */
  double n_valid = 0, n_task = 0;
  for (int64_t b = 0; b < t->Bg; b++) {
    t->order.gidx[b] = sample_at(t, t->order.samples_seen + b);
    n_valid += (double)valid_len(t, t->order.gidx[b]);
  }
  n_task = t->train.lm ? n_valid : (double)t->Bg;
  plan_reseed(t, s, n_valid);
  lv_fwd_opts o = {1, (uint64_t)c->run.seed, (uint32_t)s, (float)c->model.dropout, (float)c->model.hidden_dropout};
  double t_data = 0;
  reducer_begin(t->red.rd);
  for (int64_t k = 0; k < t->n_micro; k++) {
    int64_t first = t->rank * t->b_rank + k * t->mb;
    double td = lv_now_s();
    read_rows(t, &t->train, t->mb, t->order.gidx + first, 0);
    t_data += lv_now_s() - td;
    lv_batch b = batch_of(&t->train, first);
    lv_fwd_stats st;
    lv_model_forward(t->model, t->params, &b, &o, &st, stats + sl->n_s, stats + sl->key_sums);
    lv_stats_add_forward(stats, sl, &st);
    if (!isfinite(st.task_sum) && !t->nonfinite_where[0] &&
        !lv_model_find_nonfinite(t->model, t->nonfinite_where, sizeof t->nonfinite_where))
      snprintf(t->nonfinite_where, sizeof t->nonfinite_where, "loss");
    gather_reseed_keys(t, k);
    t->red.last_micro = k == t->n_micro - 1;
    if (t->red.last_micro) { /* the statistics are complete: they travel first, while backward runs */
      stats[sl->rank_compute + (size_t)t->rank] = t->red.prev_compute_s;
      stats[sl->rank_rss + (size_t)t->rank] = peak_rss_mib();
      stats[sl->stop_vote] = lv_signal_pending() ? 1.0 : 0.0; /* a signal on any rank stops every rank */
      reducer_stats_ready(t->red.rd);
    }
    lv_model_backward(t->model, t->params, t->red.grads, &b, &o, 1.0 / n_task, 1.0 / n_valid, c->model.commit_weight);
  }
  t->red.last_micro = 0;
  double t_compute = lv_now_s() - t0 - t_data;
  double t_wait = reducer_finish(t->red.rd);
  double t_opt0 = lv_now_s();
  t->order.samples_seen += t->Bg; /* consumed whether the step is applied or skipped */
  t->stop_requested = stats[sl->stop_vote] > 0;
  /* Every rank counted the global batch's valid tokens itself (from the sample lengths); the reduced
   * count must be the same integer, exactly, at any global batch. */
  if (stats[sl->valid] != n_valid)
    DIE("step %lld: the reduced count of valid tokens (%.0f) differs from the global batch's (%.0f): a bug",
        (long long)s, stats[sl->valid], n_valid);
  double task = stats[sl->task_sum] / n_task, commit = 0;
  for (int i = 0; i < nl; i++) commit += stats[sl->commit_sum + (size_t)i] / n_valid;
  double loss = task + c->model.commit_weight * commit;
  /* Gradient norm: the shard's sum of squares, summed over ranks under ZeRO-1 (each owns a part). */
  double sq = 0;
  for (int k = 0; k < t->opt.n_shard; k++) sq += grad_sumsq(t->red.grads, t->opt.shard[k].lo, t->opt.shard[k].hi);
  if (c->dist.zero) dist_sum_f64(&sq, 1);
  double gnorm = sqrt(sq);
  memset(r, 0, sizeof *r);
  r->loss = loss;
  r->grad_norm = gnorm;
  if (!isfinite(loss) || !isfinite(gnorm)) {
    if (!t->nonfinite_where[0]) describe_bad_grad(t);
    return 1;
  }
  double lr = lr_at(s, c->train.steps, c->train.warmup, c->train.lr, c->train.min_lr,
                    c->train.schedule == LV_SCHEDULE_COSINE);
  double coef = clip_coef(gnorm, c->train.clip);
  for (int k = 0; k < t->opt.n_shard; k++)
    adamw_update(&t->lay, t->params, t->red.grads, t->opt.m + t->opt.shard_off[k], t->opt.v + t->opt.shard_off[k], t->opt.shard[k].lo,
                 t->opt.shard[k].hi, lr, c->train.weight_decay, coef, s);
  reducer_allgather_params(t->red.rd, t->params);
  /* Codebook update and re-seeding from the global statistics, identical on every rank. */
  int64_t reseeds = 0;
  for (int i = 0; i < nl; i++) {
    float *cs = t->state + t->lay.layer[i].c_sum, *cc = t->state + t->lay.layer[i].c_count;
    const size_t per_code = (size_t)i * (size_t)d->S, per_key = per_code * (size_t)d->Z;
    vq_codebook_update(cs, cc, stats + sl->n_s + per_code, stats + sl->key_sums + per_key,
                       (float)c->model.codebook_decay, d->S, d->Z);
    reseeds += vq_reseed(cs, cc, NULL, stats + sl->reseed_keys + per_key, n_valid, d->S, d->Z);
  }
  lv_model_set_codebooks(t->model, t->state);
  if (c->dist.check_every > 0 && s % c->dist.check_every == 0 && !dist_all_equal_u64(replica_hash(t)))
    DIE("step %lld: parameters or codebooks differ between ranks (replica-consistency check, dist.check_every); "
        "this is a bug or a hardware fault: aborting", (long long)s);
  double slowest = 0, rss = 0;
  for (int q = 0; q < t->world; q++) {
    slowest = fmax(slowest, stats[sl->rank_compute + (size_t)q]);
    rss = fmax(rss, stats[sl->rank_rss + (size_t)q]);
  }
  t->red.prev_compute_s = t_compute;
  reducer_stats rs = reducer_last(t->red.rd);
  r->task = task;
  r->accuracy = stats[sl->correct] / stats[sl->task_count];
  r->lr = lr;
  r->step_s = lv_now_s() - t0;
  r->tokens = stats[sl->valid];
  r->targets = stats[sl->task_count];
  r->peak_rss_mib = rss;
  r->reseeds = (double)reseeds;
  r->data_s = t_data;
  r->compute_s = t_compute;
  r->exposed_s = t_wait;
  r->comm_s = rs.comm_s;
  r->opt_s = lv_now_s() - t_opt0;
  r->bytes = rs.bytes;
  r->busbw = rs.busbw_gbs;
  r->slowest_compute_s = slowest;
  return 0;
}

/* Rank 0: one metrics line (with the run's name, if any), written whole or the run stops: a full
 * disk must not lose lines silently. */
static void write_metrics(lv_trainer *t, lv_jsonl *j) {
  if (t->cfg.run.name[0]) jsonl_str(j, "run", t->cfg.run.name);
  if (jsonl_write(j, t->log.metrics))
    DIE("log.metrics: writing %s failed: %s (the run stops rather than lose metric lines)", t->log.path,
        strerror(errno));
}

static void log_step(lv_trainer *t, int64_t s, const lv_step_result *r) {
  const lv_config *c = &t->cfg;
  const lv_dims *d = &t->dims;
  double tps = r->tokens / r->step_s;
  t->log.steps_timed += 1;
  t->log.time_timed += r->step_s;
  double eta = (double)(c->train.steps - s) * (lv_now_s() - t->log.t_start) / (double)s;
  char usage[1024] = "";
  double ppl[LV_MAX_LAYERS];
  size_t u = 0;
  for (int i = 0; i < d->n_layers; i++) {
    int64_t in_use;
    vq_usage(&in_use, &ppl[i], t->red.stats + t->red.sl.n_s + (size_t)i * (size_t)d->S, d->S);
    u += (size_t)snprintf(usage + u, sizeof usage - u, "%s%.1f", i ? "," : "", ppl[i]);
  }
  double gflops = t->log.flops_per_token * tps * 1e-9;
  double hidden = r->comm_s > 1e-6 ? 1.0 - r->exposed_s / r->comm_s : 1.0;
  if (hidden < 0) hidden = 0;
  if (!dist_is_root()) return;
  const char *metric = t->train.lm ? "bpt" : "acc";
  double mval = t->train.lm ? r->task / log(2.0) : r->accuracy;
  int progress = c->log.progress == LV_PROGRESS_ON || (c->log.progress == LV_PROGRESS_AUTO && log_live_terminal());
  char line[512 + sizeof usage]; /* the fixed fields, then the per-layer perplexities */
  snprintf(line, sizeof line,
           "step %6lld/%lld | loss %.4f | %s %.4f | lr %.3e | gnorm %.3f | %.0f tok/s | %.1f GFLOP/s | "
           "comp %.3fs comm %.3fs (exposed %.3fs, %.0f%% hidden) data %.3fs opt %.3fs | slowest %.3fs | "
           "ETA %.0fs | code ppl %s",
           (long long)s, (long long)c->train.steps, r->loss, metric, mval, r->lr, r->grad_norm, tps, gflops, r->compute_s,
           r->comm_s, r->exposed_s, 100.0 * hidden, r->data_s, r->opt_s, r->slowest_compute_s, eta, usage);
  int keep = s % c->log.every == 0 || s == 1 || s == c->train.steps; /* a line kept in the log */
  if (!keep) {
    if (progress) log_progress("%s", line); /* live line on a terminal, rewritten in place */
    return;
  }
  if (progress) log_progress_done();
  log_info("%s", line);
  lv_jsonl j;
  jsonl_begin(&j);
  jsonl_int(&j, "step", (long long)s);
  jsonl_num(&j, "loss", "%.10g", r->loss);
  jsonl_num(&j, "task_loss", "%.10g", r->task);
  jsonl_num(&j, t->train.lm ? "bits_per_token" : "accuracy", "%.10g", mval);
  jsonl_num(&j, "lr", "%.7g", r->lr);
  jsonl_num(&j, "grad_norm", "%.7g", r->grad_norm);
  jsonl_num(&j, "tokens", "%.0f", r->tokens);
  jsonl_num(&j, "targets", "%.0f", r->targets);
  jsonl_int(&j, "ranks", t->world);
  jsonl_int(&j, "threads", placement_threads());
  jsonl_num(&j, "tokens_per_s", "%.1f", tps);
  jsonl_num(&j, "gflops", "%.2f", gflops);
  jsonl_num(&j, "step_s", "%.6f", r->step_s);
  jsonl_num(&j, "compute_s", "%.6f", r->compute_s);
  jsonl_num(&j, "comm_s", "%.6f", r->comm_s);
  jsonl_num(&j, "exposed_comm_s", "%.6f", r->exposed_s);
  jsonl_num(&j, "data_s", "%.6f", r->data_s);
  jsonl_num(&j, "optimizer_s", "%.6f", r->opt_s);
  jsonl_num(&j, "comm_bytes", "%.0f", r->bytes);
  jsonl_num(&j, "busbw_gbs", "%.3f", r->busbw);
  jsonl_num(&j, "slowest_compute_s", "%.6f", r->slowest_compute_s);
  jsonl_num(&j, "peak_rss_mib", "%.1f", r->peak_rss_mib);
  jsonl_num(&j, "eta_s", "%.0f", eta);
  jsonl_int(&j, "reseeds", (long long)r->reseeds);
  jsonl_num_array(&j, "code_perplexity", "%.3f", ppl, (int)d->n_layers);
  write_metrics(t, &j);
}

static void run_eval(lv_trainer *t, int64_t s) {
  if (!t->eval.ds) return;
  double loss, acc, ntok;
  watchdog_phase(LV_PHASE_EVAL, (long long)s);
  trainer_evaluate(t, &t->eval, t->cfg.train.eval_batches, &loss, &acc, &ntok, NULL);
  if (!dist_is_root()) return;
  if (t->eval.lm)
    log_info("eval  %6lld | val loss %.4f | val bpt %.4f | val acc %.4f | %.0f targets", (long long)s, loss,
             loss / log(2.0), acc, ntok);
  else
    log_info("eval  %6lld | val loss %.4f | val acc %.4f | %.0f samples", (long long)s, loss, acc, ntok);
  lv_jsonl j;
  jsonl_begin(&j);
  jsonl_int(&j, "step", (long long)s);
  jsonl_str(&j, "split", "val");
  jsonl_num(&j, "loss", "%.7g", loss);
  if (t->eval.lm) jsonl_num(&j, "bits_per_token", "%.7g", loss / log(2.0));
  jsonl_num(&j, "accuracy", "%.7g", acc);
  write_metrics(t, &j);
}

/* Rank 0: the restart line of a resumed run (it continues after step `done`). It starts with "restart"
 * and has no "loss": readers of the training lines (by "tokens_per_s" or a leading "step") skip it;
 * its "step" makes a later resume from an earlier checkpoint drop it with the lines it undoes. */
static void log_restart(lv_trainer *t, int64_t done) {
  if (!dist_is_root()) return;
  lv_jsonl j;
  jsonl_begin(&j);
  jsonl_int(&j, "restart", (long long)t->restart_count);
  jsonl_int(&j, "step", (long long)done);
  jsonl_int(&j, "ranks", t->world);
  write_metrics(t, &j);
}

int trainer_run(lv_trainer *t) {
  const lv_config *c = &t->cfg;
  lv_signals_install();
  int64_t done = trainer_resume(t);
  if (done == 0 && c->train.init_from[0]) trainer_init_params(t, c->train.init_from, "train.init_from");
  if (done == 0 && c->checkpoint.save_initial) save_model(t, "model_step0.h5", 0);
  if (done > 0) {
    log_info("restart %lld: continuing at step %lld of %lld", (long long)t->restart_count, (long long)done + 1,
             (long long)c->train.steps);
    log_restart(t, done);
  }
  lv_model_set_grad_hook(t->model, grads_ready, t);
  t->log.t_start = lv_now_s();
  lv_step_result r;
  int64_t last_saved = done;
  for (int64_t s = done + 1; s <= c->train.steps; s++) {
    double t_step = lv_now_s();
    int bad = train_step(t, s, &r);
    watchdog_note_step(lv_now_s() - t_step); /* the automatic stall limit follows the slowest step */
    if (bad) {
      /* Every rank sees the same reduced loss and gradient, so all take the same branch; the
       * place is where this rank saw it first (its own micro-batches, or the reduced gradient). */
      if (c->train.nonfinite == LV_NONFINITE_SKIP) {
        if (dist_is_root())
          log_warn("step %lld: non-finite loss %g or gradient norm %g (first at %s): step skipped", (long long)s,
                   r.loss, r.grad_norm, t->nonfinite_where);
      } else {
        FAIL_ALL(LV_EXIT_FAIL, "step %lld: non-finite loss (%g) or gradient norm (%g), first at %s; stopping "
                 "(train.nonfinite=skip skips such steps)", (long long)s, r.loss, r.grad_norm, t->nonfinite_where);
      }
    } else {
      log_step(t, s, &r);
      if (c->train.eval_every > 0 && (s % c->train.eval_every == 0 || s == c->train.steps)) run_eval(t, s);
    }
    if (t->stop_requested) { /* every rank saw the same vote in the step's reduction */
      log_progress_done();
      log_info("stop requested by signal %d: checkpointing at step %lld", lv_signal_number(), (long long)s);
      trainer_checkpoint(t, s);
      log_info("checkpointed; exiting with code %d (requeue to continue)", LV_EXIT_REQUEUE);
      return LV_EXIT_REQUEUE;
    }
    if (c->checkpoint.every > 0 && s % c->checkpoint.every == 0 && s != c->train.steps) {
      trainer_checkpoint(t, s);
      last_saved = s;
    }
  }
  if (last_saved != c->train.steps) trainer_checkpoint(t, c->train.steps);
  save_model(t, "model_final.h5", c->train.steps);
  return LV_EXIT_OK;
}
