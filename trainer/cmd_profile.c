/* `longvq profile CONFIG [key=value ...] [--ranks W] [--out F.json]`: what one training step of a
 * config is made of on this machine, as JSON (format "longvq-profile/1", docs/scaling.md#projections):
 * the forward and backward compute of one micro-batch (the backward split at the points where the
 * model's grad-ready hook says a gradient range is final: head, layer n-1, ..., layer 0, embedding:
 * the same events that queue the trainer's buckets), the optimizer's parts, and the reducer's bucket
 * layout from reducer_layout (the function reducer_create uses). The SMPI skeleton (launch/sim/)
 * replays it on simulated clusters (launch/project.sh).
 *
 * The model is built as `train` builds it for W ranks (micro-batch = train.batch_size / (W x
 * train.micro_batch)), randomly initialized (run.seed), on random tokens, like `longvq bench`: no
 * dataset is read. Run on one rank. */
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "layers/model.h"
#include "trainer/base/check.h"
#include "trainer/base/clock.h"
#include "trainer/base/dist.h"
#include "trainer/base/procstat.h"
#include "trainer/bench_internal.h"
#include "trainer/cli_config.h"
#include "trainer/commands.h"
#include "trainer/reducer_layout.h"
#include "trainer/stats.h"
#include "trainer/train.h"

#define PROFILE_MAX_EVENTS (LV_MAX_LAYERS + 4)

static void usage(FILE *f) {
  fprintf(f,
          "usage: longvq profile CONFIG [key=value ...] [--ranks W] [--steps N] [--warmup K] [--out F.json]\n\n"
          "Measures what one training step of CONFIG's model is made of on this machine and writes it as JSON\n"
          "(format longvq-profile/1, docs/scaling.md#projections): forward and backward seconds of one\n"
          "micro-batch, the backward split at the model's grad-ready events (which parameter floats are final\n"
          "when), the optimizer's parts (gradient norm, AdamW over all parameters, codebook update), FLOPs, and\n"
          "the reducer's bucket layout for W ranks (dist.bucket_mb, dist.zero). The micro-batch is the one\n"
          "`train` would use on W ranks: train.batch_size / (W x train.micro_batch) sequences of data.seq_len.\n"
          "Random initialization and tokens (no dataset read; V = model.vocab_size or %d, K = model.n_classes\n"
          "or %d). Threads: OMP_NUM_THREADS. Run on one rank. launch/project.sh uses it.\n\n"
          "  --ranks W    ranks the batch is split over (default 1)\n"
          "  --steps N    timed steps, means reported (default 5)\n"
          "  --warmup K   untimed steps first (default 2)\n"
          "  --out F      the JSON file (default: stdout)\n",
          BENCH_VOCAB, BENCH_CLASSES);
}

/* The hook's events of one backward: when (lv_now_s), and the first final float. */
typedef struct {
  int n;
  double t[PROFILE_MAX_EVENTS];
  size_t lo[PROFILE_MAX_EVENTS];
} hook_log;

static void on_ready(void *ctx, size_t lo) {
  hook_log *h = ctx;
  if (h->n < PROFILE_MAX_EVENTS) {
    h->t[h->n] = lv_now_s();
    h->lo[h->n++] = lo;
  }
}

/* The tensor that starts at float `lo` of the parameter layout (the event's first final tensor). */
static const char *tensor_at(const lv_layout *lay, size_t lo) {
  for (int i = 0; i < lay->n_params; i++)
    if (lay->params[i].offset == lo) return lay->params[i].name;
  return "?";
}

typedef struct {
  int64_t ranks, steps, warmup;
  const char *out;
  int help;
} profile_args;

static int parse_args(int argc, char **argv, lv_cli_config *cc, profile_args *a) {
  *a = (profile_args){1, 5, 2, NULL, 0};
  for (int i = 1; i < argc; i++) {
    const char *s = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    int64_t *dst = !strcmp(s, "--ranks") ? &a->ranks : !strcmp(s, "--steps") ? &a->steps
                                                     : !strcmp(s, "--warmup") ? &a->warmup : NULL;
    int took;
    if (!strcmp(s, "--help") || !strcmp(s, "-h")) {
      a->help = 1;
    } else if (dst || !strcmp(s, "--out")) {
      if (!v) {
        if (dist_is_root()) fprintf(stderr, "longvq profile: %s: needs a value (see --help)\n", s);
        return 1;
      }
      i++;
      if (!dst) {
        a->out = v;
        continue;
      }
      int64_t x;
      int overflow;
      if (!lv_parse_int(v, &x, &overflow) || overflow || x < (dst == &a->warmup ? 0 : 1) || x > 1000000) {
        if (dist_is_root()) fprintf(stderr, "longvq profile: %s %s: not an integer in range (see --help)\n", s, v);
        return 1;
      }
      *dst = x;
    } else if ((took = lv_cli_config_arg(cc, "profile", argv[i])) < 0) {
      return 1;
    } else if (!took) {
      if (dist_is_root()) fprintf(stderr, "longvq profile: %s: unknown option (see --help)\n", s);
      return 1;
    }
  }
  return 0;
}

/* Means over the timed steps of one micro-batch's forward and backward, the backward's events, and
 * the optimizer's parts (over all parameters, one rank's view without ZeRO). */
typedef struct {
  double fwd, bwd, gnorm, adamw, codebook;
  hook_log ev; /* t[]: seconds from the start of the backward, means over the timed steps */
  lv_model_flops fl;
  int threads;
} profile_times;

static void measure(const lv_config *c, const lv_dims *d, const lv_layout *lay, int64_t B, int64_t L,
                    const profile_args *a, profile_times *r) {
  memset(r, 0, sizeof *r);
  r->threads = omp_get_max_threads();
  bench_model bm; /* the f32 step, as profile has always timed it */
  bench_model_init(&bm, c, d, lay, B, L, MM_PREC_F32);
  r->fl = lv_model_count_flops(bm.m);
  hook_log h;
  lv_model_set_grad_hook(bm.m, on_ready, &h);
  for (int s = 1; s <= a->warmup + a->steps; s++) {
    double t[BM_MARKS];
    h.n = 0;
    bench_model_step(&bm, s, t);
    if (s <= a->warmup) continue;
    r->fwd += t[BM_FWD] - t[BM_ZEROED];
    r->bwd += t[BM_BWD] - t[BM_FWD];
    r->gnorm += t[BM_GNORM] - t[BM_BWD];
    r->adamw += t[BM_ADAMW] - t[BM_GNORM];
    r->codebook += t[BM_END] - t[BM_ADAMW];
    r->ev.n = h.n;
    for (int k = 0; k < h.n; k++) { /* the hook's clock, from the start of the backward */
      r->ev.t[k] += h.t[k] - t[BM_FWD];
      r->ev.lo[k] = h.lo[k];
    }
  }
  const double n = (double)a->steps;
  r->fwd /= n, r->bwd /= n, r->gnorm /= n, r->adamw /= n, r->codebook /= n;
  for (int k = 0; k < r->ev.n; k++) r->ev.t[k] /= n;
  bench_model_free(&bm);
}

static void write_json(FILE *f, const lv_config *c, const lv_cli_config *cc, const lv_dims *d, const lv_layout *lay,
                       const profile_args *a, int64_t n_micro, int64_t B, int64_t L, const profile_times *r) {
  char host[128] = "?", date[32] = "?";
  gethostname(host, sizeof host);
  time_t now = time(NULL);
  strftime(date, sizeof date, "%Y-%m-%dT%H:%M:%SZ", gmtime(&now));
  const int W = (int)a->ranks;
  const size_t np = lay->n_param_floats;
  const lv_stat_layout s1 = lv_stat_layout_make(d->n_layers, d->S, d->Z, 1);
  const lv_stat_layout s2 = lv_stat_layout_make(d->n_layers, d->S, d->Z, 2);
  const size_t stat_per_rank = s2.total - s1.total, stat_base = s1.total - stat_per_rank;
  const size_t n_stat = stat_base + stat_per_rank * (size_t)W;
  const size_t bucket_floats = (size_t)(c->dist.bucket_mb * 1048576.0 / 4.0);
  fprintf(f, "{\n  \"format\": \"longvq-profile/1\",\n  \"config\": \"%s\",\n  \"overrides\": [", cc->config);
  for (int i = 0; i < cc->n_over; i++) fprintf(f, "%s\"%s\"", i ? ", " : "", cc->over[i]);
  const double load = lv_proc_loadavg(); /* when done */
  fprintf(f, "],\n  \"host\": \"%s\",\n  \"date\": \"%s\",\n  \"commit\": \"%s\",\n  \"threads\": %d,\n  \"load_avg\": %.2f,\n",
          host, date, LONGVQ_GIT, r->threads, load);
  fprintf(f, "  \"model\": {\"mode\": \"%s\", \"d_model\": %lld, \"n_layers\": %lld, \"params\": %zu, "
             "\"flops_per_micro_batch\": %.6g},\n",
          d->decoder ? "decoder" : "encoder", (long long)d->D, (long long)d->n_layers, np, r->fl.model);
  fprintf(f, "  \"batch\": {\"ranks\": %d, \"global_batch\": %lld, \"micro_batches\": %lld, \"micro_batch\": %lld, "
             "\"seq_len\": %lld},\n",
          W, (long long)c->train.batch_size, (long long)n_micro, (long long)B, (long long)L);
  fprintf(f, "  \"timing\": {\"steps\": %lld, \"warmup\": %lld, \"forward_s\": %.9f, \"backward_s\": %.9f, "
             "\"grad_norm_s\": %.9f, \"adamw_s\": %.9f, \"codebook_s\": %.9f},\n",
          (long long)a->steps, (long long)a->warmup, r->fwd, r->bwd, r->gnorm, r->adamw, r->codebook);
  fprintf(f, "  \"backward_events\": [\n");
  for (int k = 0; k < r->ev.n; k++)
    fprintf(f, "    {\"t_s\": %.9f, \"lo\": %zu, \"first_tensor\": \"%s\"}%s\n", r->ev.t[k], r->ev.lo[k],
            r->ev.lo[k] < np ? tensor_at(lay, r->ev.lo[k]) : "(none: head done)", k + 1 < r->ev.n ? "," : "");
  int nb = reducer_layout(np, n_stat, bucket_floats, W, (int)c->dist.zero, NULL, 0);
  reducer_span *sp = calloc((size_t)nb, sizeof *sp);
  CHECK_ALLOC(sp);
  reducer_layout(np, n_stat, bucket_floats, W, (int)c->dist.zero, sp, nb);
  double bytes = 0;
  for (int k = 0; k < nb; k++) bytes += (sp[k].f64 ? 8.0 : 4.0) * (double)(sp[k].hi - sp[k].lo);
  fprintf(f, "  ],\n  \"reducer\": {\"world\": %d, \"bucket_mb\": %.9g, \"bucket_floats\": %zu, \"zero\": %d, "
             "\"comm_thread\": %d, \"n_grad\": %zu, \"n_stat\": %zu, \"n_stat_base\": %zu, \"n_stat_per_rank\": %zu, "
             "\"bytes_per_step\": %.0f,\n    \"buckets\": [\n",
          W, c->dist.bucket_mb, bucket_floats, (int)c->dist.zero, (int)c->dist.comm_thread, np, n_stat, stat_base,
          stat_per_rank, W > 1 ? bytes : 0.0);
  for (int k = 0; k < nb; k++)
    fprintf(f, "      {\"lo\": %zu, \"hi\": %zu, \"f64\": %d, \"scatter_only\": %d}%s\n", sp[k].lo, sp[k].hi, sp[k].f64,
            sp[k].scatter_only, k + 1 < nb ? "," : "");
  fprintf(f, "    ]\n  }\n}\n");
  free(sp);
}

int cmd_profile(int argc, char **argv) {
  lv_cli_config cc;
  lv_cli_config_init(&cc, argc);
  profile_args a;
  lv_config cfg;
  int rc = parse_args(argc, argv, &cc, &a);
  if (!rc && a.help) {
    if (dist_is_root()) usage(stdout);
    lv_cli_config_free(&cc);
    return LV_EXIT_OK;
  }
  if (!rc) rc = lv_cli_config_build(&cfg, &cc, "profile");
  if (rc) {
    lv_cli_config_free(&cc);
    return LV_EXIT_USAGE;
  }
  const int64_t n_micro = cfg.train.micro_batch, Bg = cfg.train.batch_size, L = cfg.data.seq_len;
  if (L <= 0) DIE_INPUT_ALL("data.seq_len: profile needs a length (0 means the dataset's, and no dataset is read)");
  if (Bg % (a.ranks * n_micro))
    DIE_INPUT_ALL("train.batch_size: %lld does not divide over --ranks %lld x train.micro_batch %lld", (long long)Bg,
                  (long long)a.ranks, (long long)n_micro);
  const int64_t B = Bg / (a.ranks * n_micro);
  const lv_dims d = trainer_model_dims(&cfg, cfg.model.vocab_size ? cfg.model.vocab_size : BENCH_VOCAB,
                                       cfg.model.n_classes ? cfg.model.n_classes : BENCH_CLASSES);
  lv_layout lay;
  char err[256];
  if (lv_layout_build(&lay, &d, err, sizeof err)) DIE_INPUT_ALL("%s: invalid model: %s", cc.config, err);
  profile_times r;
  measure(&cfg, &d, &lay, B, L, &a, &r);
  if (dist_is_root()) {
    FILE *f = a.out ? fopen(a.out, "w") : stdout;
    if (!f) DIE_INPUT("--out %s: cannot open for writing", a.out);
    write_json(f, &cfg, &cc, &d, &lay, &a, n_micro, B, L, &r);
    if (a.out && fclose(f)) DIE_INPUT("--out %s: write failed", a.out);
    if (a.out)
      fprintf(stderr, "longvq profile: %s: %zu params, micro-batch %lldx%lld, forward %.2f ms, backward %.2f ms\n",
              a.out, lay.n_param_floats, (long long)B, (long long)L, r.fwd * 1e3, r.bwd * 1e3);
  }
  lv_layout_free(&lay);
  lv_cli_config_free(&cc);
  return LV_EXIT_OK;
}
