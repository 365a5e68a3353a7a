/* The step loop: data order, micro-batches, reduction, clipping, AdamW, codebook update, logging,
 * evaluation. Spec: "Optimization", "Vector quantization of keys", "Randomness". */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "io/model_io.h"
#include "layers/vq.h"
#include "trainer/check.h"
#include "trainer/dist.h"
#include "trainer/log.h"
#include "trainer/optim.h"
#include "trainer/rng.h"
#include "trainer/train.h"

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Seeded Fisher-Yates permutation of the n training samples for `epoch` (docs/randomness.md). */
static void make_perm(lv_trainer *t, int64_t epoch) {
  int64_t n = t->train.n;
  rng_stream rs = rng_make((uint64_t)t->cfg.run.seed, "shuffle", (uint32_t)epoch, 0);
  for (int64_t i = 0; i < n; i++) t->perm[i] = i;
  for (int64_t i = n - 1; i > 0; i--) {
    uint64_t r = rng_u32(&rs, (uint64_t)(n - 1 - i));
    int64_t j = (int64_t)((r * (uint64_t)(i + 1)) >> 32);
    int64_t tmp = t->perm[i];
    t->perm[i] = t->perm[j];
    t->perm[j] = tmp;
  }
  t->perm_epoch = epoch;
}

/* Global sample g of the run's stream (g = step_index * Bg + position) -> dataset index. */
static int64_t sample_at(lv_trainer *t, int64_t g) {
  int64_t epoch = g / t->train.n;
  if (epoch != t->perm_epoch) make_perm(t, epoch);
  return t->perm[g % t->train.n];
}

/* Reads n rows by index into the split's batch buffers (model layout). */
static void read_rows(lv_trainer *t, lv_split *sp, int64_t n, const int64_t *idx) {
  const int64_t L = t->L;
  if (sp->lm) {
    lv_dataset_read(sp->ds, n, idx, sp->raw, NULL, NULL, NULL, L + 1, 0);
    for (int64_t r = 0; r < n; r++)
      for (int64_t p = 0; p < L; p++) {
        sp->tokens[r * L + p] = sp->raw[r * (L + 1) + p];
        sp->targets[r * L + p] = sp->raw[r * (L + 1) + p + 1];
        sp->mask[r * L + p] = 1;
        sp->tmask[r * L + p] = 1;
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
    vq_reseed_candidates(t->maybe, cc, (float)t->cfg.model.codebook_decay, n_tokens, S);
    rng_stream rs = rng_make((uint64_t)t->cfg.run.seed, "codebook_reseed", (uint32_t)step, (uint32_t)i);
    for (int64_t s = 0; s < S; s++) {
      t->reseed_at[i * S + s] = -1;
      if (!t->maybe[s]) continue;
      int64_t j = vq_reseed_token(rng_uniform(&rs, (uint64_t)s), (int64_t)n_tokens);
      for (int64_t b = 0; b < t->Bg; b++) { /* j-th valid token: samples in order, then positions */
        int64_t len = valid_len(t, t->gidx[b]);
        if (j < len) {
          if (b >= lo && b < hi) {
            t->reseed_at[i * S + s] = b - lo;
            t->reseed_pos[i * S + s] = j;
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
      int64_t row = t->reseed_at[i * S + s];
      if (row < k * t->mb || row >= (k + 1) * t->mb) continue;
      const float *src = keys + ((row - k * t->mb) * t->L + t->reseed_pos[i * S + s]) * Z;
      memcpy(t->rkeys + ((size_t)i * (size_t)S + (size_t)s) * (size_t)Z, src, sizeof(float) * (size_t)Z);
    }
  }
}

void trainer_evaluate(lv_trainer *t, lv_split *sp, int64_t max_batches, double *loss, double *acc, double *tokens) {
  const int64_t gb = (int64_t)t->world * t->mb;
  int64_t nb = (sp->n + gb - 1) / gb;
  if (max_batches > 0 && max_batches < nb) nb = max_batches;
  double sums[4] = {0, 0, 0, 0}; /* loss sum, count, correct, tokens */
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
    read_rows(t, sp, t->mb, idx);
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
  }
  free(idx);
  dist_sum_f64(sums, 4);
  *loss = sums[1] > 0 ? sums[0] / sums[1] : NAN;
  *acc = sums[1] > 0 ? sums[2] / sums[1] : NAN;
  *tokens = sums[1];
}

static void save_model(lv_trainer *t, const char *name, int64_t step) {
  if (!dist_is_root()) return;
  char path[LV_CONFIG_PATH_MAX + 64];
  snprintf(path, sizeof path, "%s/%s", t->cfg.run.dir, name);
  lv_model_save(path, &t->lay, t->params, t->state, t->config_yaml, step);
  log_info("saved %s (step %lld)", path, (long long)step);
}

/* Names the first trained tensor whose (reduced) gradient holds a NaN or Inf. */
static void describe_bad_grad(lv_trainer *t) {
  for (int i = 0; i < t->lay.n_params; i++) {
    const lv_tensor *T = &t->lay.params[i];
    for (int64_t j = 0; j < T->numel; j++)
      if (!isfinite(t->grads[T->offset + (size_t)j])) {
        snprintf(t->nonfinite_where, sizeof t->nonfinite_where, "gradient of %s", T->name);
        return;
      }
  }
  snprintf(t->nonfinite_where, sizeof t->nonfinite_where, "gradient norm");
}

/* One optimizer step s (from 1). Returns 0, or 1 if the loss or gradient was not finite. */
static int train_step(lv_trainer *t, int64_t s, double *out) {
  const lv_config *c = &t->cfg;
  const lv_dims *d = &t->dims;
  const int nl = (int)d->n_layers;
  double t0 = now_s();
  memset(t->red, 0, sizeof(float) * t->n_red);
  t->nonfinite_where[0] = 0;
  /* The global batch and its denominators (every rank knows every sample's length). */
  double n_valid = 0, n_task = 0;
  for (int64_t b = 0; b < t->Bg; b++) {
    t->gidx[b] = sample_at(t, (s - 1) * t->Bg + b);
    n_valid += (double)valid_len(t, t->gidx[b]);
  }
  n_task = t->train.lm ? n_valid : (double)t->Bg;
  plan_reseed(t, s, n_valid);
  double sums[4 + LV_MAX_LAYERS] = {0};
  lv_fwd_opts o = {1, (uint64_t)c->run.seed, (uint32_t)s, (float)c->model.dropout, (float)c->model.hidden_dropout};
  double t_data = 0;
  for (int64_t k = 0; k < t->n_micro; k++) {
    int64_t first = t->rank * t->b_rank + k * t->mb;
    double td = now_s();
    read_rows(t, &t->train, t->mb, t->gidx + first);
    t_data += now_s() - td;
    lv_batch b = batch_of(&t->train, first);
    lv_fwd_stats st;
    lv_model_forward(t->model, t->params, &b, &o, &st, t->n_s, t->key_sums);
    if (!isfinite(st.task_sum) && !t->nonfinite_where[0] &&
        !lv_model_find_nonfinite(t->model, t->nonfinite_where, sizeof t->nonfinite_where))
      snprintf(t->nonfinite_where, sizeof t->nonfinite_where, "loss");
    gather_reseed_keys(t, k);
    lv_model_backward(t->model, t->params, t->grads, &b, &o, 1.0 / n_task, 1.0 / n_valid, c->model.commit_weight);
    sums[0] += st.task_sum;
    sums[1] += st.task_count;
    sums[2] += st.correct;
    sums[3] += st.valid;
    for (int i = 0; i < nl; i++) sums[4 + i] += st.commit_sum[i];
  }
  double t_comp = now_s();
  dist_sum_f32(t->red, t->n_red);
  dist_sum_f64(sums, (size_t)(4 + nl));
  double t_comm = now_s() - t_comp;
  double task = sums[0] / n_task, commit = 0;
  for (int i = 0; i < nl; i++) commit += sums[4 + i] / n_valid;
  double loss = task + c->model.commit_weight * commit;
  double gnorm = sqrt(grad_sumsq(t->grads, 0, t->lay.n_param_floats));
  if (!isfinite(loss) || !isfinite(gnorm)) {
    if (!t->nonfinite_where[0]) describe_bad_grad(t);
    out[0] = loss;
    out[1] = gnorm;
    return 1;
  }
  double lr = lr_at(s, c->train.steps, c->train.warmup, c->train.lr, c->train.min_lr,
                    c->train.schedule == LV_SCHEDULE_COSINE);
  adamw_update(&t->lay, t->params, t->grads, t->m, t->v, 0, t->lay.n_param_floats, lr, c->train.weight_decay,
               clip_coef(gnorm, c->train.clip), s);
  /* Codebook update and re-seeding from the global statistics, identical on every rank. */
  int64_t reseeds = 0;
  for (int i = 0; i < nl; i++) {
    float *cs = t->state + t->lay.layer[i].c_sum, *cc = t->state + t->lay.layer[i].c_count;
    vq_codebook_update(cs, cc, t->n_s + (size_t)i * (size_t)d->S, t->key_sums + (size_t)i * (size_t)(d->S * d->Z),
                       (float)c->model.codebook_decay, d->S, d->Z);
    reseeds += vq_reseed(cs, cc, NULL, t->rkeys + (size_t)i * (size_t)(d->S * d->Z), n_valid, d->S, d->Z);
  }
  lv_model_set_codebooks(t->model, t->state);
  out[0] = loss;
  out[1] = gnorm;
  out[2] = task;
  out[3] = sums[2] / sums[1];
  out[4] = lr;
  out[5] = now_s() - t0;
  out[6] = sums[3];
  out[7] = (double)reseeds;
  out[8] = t_comm;
  out[9] = t_data;
  return 0;
}

static void log_step(lv_trainer *t, int64_t s, const double *r) {
  const lv_dims *d = &t->dims;
  double tps = r[6] / r[5];
  char usage[1024] = "", jusage[1024] = "";
  size_t u = 0, ju = 0;
  for (int i = 0; i < d->n_layers; i++) {
    int64_t in_use;
    double ppl;
    vq_usage(&in_use, &ppl, t->n_s + (size_t)i * (size_t)d->S, d->S);
    u += (size_t)snprintf(usage + u, sizeof usage - u, "%s%.1f", i ? "," : "", ppl);
    ju += (size_t)snprintf(jusage + ju, sizeof jusage - ju, "%s%.3f", i ? "," : "", ppl);
  }
  double mfu_flops = t->flops_per_token * tps;
  if (dist_is_root()) {
    if (t->train.lm)
      printf("step %6lld | loss %.4f | bpt %.4f | lr %.3e | gnorm %.3f | %.0f tok/s | %.1f GFLOP/s | code ppl %s\n",
             (long long)s, r[0], r[2] / log(2.0), r[4], r[1], tps, mfu_flops * 1e-9, usage);
    else
      printf("step %6lld | loss %.4f | acc %.3f | lr %.3e | gnorm %.3f | %.0f tok/s | %.1f GFLOP/s | code ppl %s\n",
             (long long)s, r[0], r[3], r[4], r[1], tps, mfu_flops * 1e-9, usage);
    fflush(stdout);
    fprintf(t->metrics,
            "{\"step\": %lld, \"loss\": %.7g, \"task_loss\": %.7g, \"%s\": %.7g, \"lr\": %.7g, \"grad_norm\": %.7g, "
            "\"tokens_per_s\": %.1f, \"gflops\": %.2f, \"step_s\": %.4f, \"comm_s\": %.4f, \"data_s\": %.4f, "
            "\"reseeds\": %lld, \"code_perplexity\": [%s]}\n",
            (long long)s, r[0], r[2], t->train.lm ? "bits_per_token" : "accuracy", t->train.lm ? r[2] / log(2.0) : r[3],
            r[4], r[1], tps, mfu_flops * 1e-9, r[5], r[8], r[9], (long long)r[7], jusage);
    fflush(t->metrics);
  }
}

static void run_eval(lv_trainer *t, int64_t s) {
  if (!t->val.ds) return;
  double loss, acc, ntok;
  trainer_evaluate(t, &t->val, t->cfg.train.eval_batches, &loss, &acc, &ntok);
  if (!dist_is_root()) return;
  if (t->val.lm)
    printf("eval  %6lld | val loss %.4f | val bpt %.4f | %.0f targets\n", (long long)s, loss, loss / log(2.0), ntok);
  else
    printf("eval  %6lld | val loss %.4f | val acc %.4f | %.0f samples\n", (long long)s, loss, acc, ntok);
  fprintf(t->metrics, "{\"step\": %lld, \"split\": \"val\", \"loss\": %.7g, \"%s\": %.7g}\n", (long long)s, loss,
          t->val.lm ? "bits_per_token" : "accuracy", t->val.lm ? loss / log(2.0) : acc);
  fflush(t->metrics);
}

int trainer_run(lv_trainer *t) {
  const lv_config *c = &t->cfg;
  if (c->checkpoint.save_initial) save_model(t, "model_step0.h5", 0);
  double r[10];
  for (int64_t s = 1; s <= c->train.steps; s++) {
    if (train_step(t, s, r)) {
      /* Every rank sees the same reduced loss and gradient, so all take the same branch; the
       * place is where this rank saw it first (its own micro-batches, or the reduced gradient). */
      if (c->train.nonfinite == LV_NONFINITE_SKIP) {
        if (dist_is_root())
          log_warn("step %lld: non-finite loss %g or gradient norm %g (first at %s): step skipped", (long long)s,
                   r[0], r[1], t->nonfinite_where);
        continue;
      }
      fprintf(stderr, "[rank %d] error: step %lld: non-finite loss (%g) or gradient norm (%g), first at %s; stopping "
              "(train.nonfinite=skip skips such steps)\n", t->rank, (long long)s, r[0], r[1], t->nonfinite_where);
      return LV_EXIT_FAIL;
    }
    if (s % c->log.every == 0 || s == 1 || s == c->train.steps) log_step(t, s, r);
    if (c->train.eval_every > 0 && (s % c->train.eval_every == 0 || s == c->train.steps)) run_eval(t, s);
  }
  save_model(t, "model_final.h5", c->train.steps);
  return LV_EXIT_OK;
}
