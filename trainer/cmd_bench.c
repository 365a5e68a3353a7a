/* `longvq bench CONFIG [key=value ...]`: speed and memory of the training step of the model a config
 * describes (the config is read as `train` reads it: trainer/cli_config.h), on this machine.
 *
 * For the encoder and/or the decoder and each sequence length L (same tokens per batch, B = tokens/L):
 * forward / backward / update time per step, tokens/s, time per token and its ratio to the shortest
 * L, model FLOPs per token, GFLOP/s and MFU against the oneDNN f32 matmul rate measured first, peak
 * RSS against the printed memory plan. Every measurement runs in a fresh child process (see
 * bench_internal.h for why); the parent only parses, forks and prints. docs/performance.md explains
 * every number. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "layers/model.h"
#include "trainer/bench_internal.h"
#include "trainer/base/check.h"
#include "trainer/cli_config.h"
#include "trainer/commands.h"
#include "trainer/base/dist.h"
#include "trainer/base/procstat.h"
#include "trainer/train.h"

static void usage(FILE *f) {
  fprintf(f,
          "usage: longvq bench CONFIG [key=value ...] [--mode encoder|decoder|both] [--tokens N]\n"
          "                    [--lengths L1,L2,...] [--steps K] [--warmup W] [--probe N] [--quick]\n\n"
          "Times the training step (forward + backward + AdamW update) of the model CONFIG describes, read\n"
          "as `longvq train` reads it (key=value overrides after the file; `longvq train --help` lists the\n"
          "keys), randomly initialized (run.seed) on random tokens, for each length L with B = tokens / L\n"
          "sequences per batch, and prints time per step and per token, tokens/s, model FLOPs and MFU against\n"
          "the oneDNN f32 matmul rate it measures first (and the bf16 rate on CPUs with bf16), how much of\n"
          "the step the matmul products take (of that, rounding operands to bf16 with model.precision=bf16)\n"
          "and the rest, and peak RSS against the memory plan. Each length runs in a fresh child process.\n"
          "Read: model.* (sizes, variants, dropout, commitment, codebook decay, precision), run.seed,\n"
          "train.lr / weight_decay / clip (the update); not data.*: V is model.vocab_size and K\n"
          "model.n_classes, or %d and %d when those are 0. configs/bench.yaml is the model of\n"
          "docs/performance.md's figures. Threads: set OMP_NUM_THREADS. Run on one rank.\n\n"
          "  --mode M          encoder, decoder or both (default: model.mode)\n"
          "  --tokens N        tokens per batch (default 16384; --quick: 4096)\n"
          "  --lengths LIST    comma-separated sequence lengths, multiples of model.chunk_size dividing\n"
          "                    --tokens (default 1024,4096,16384; --quick: 512,2048)\n"
          "  --steps K         timed steps per length (default 10; --quick: 2)\n"
          "  --warmup W        untimed steps first (default 2; --quick: 1)\n"
          "  --probe N         square matmul N x N x N measured for MFU (default 4096; --quick: 1024; 0: none)\n"
          "  --quick           smaller defaults for a smoke run (explicit options still win)\n",
          BENCH_VOCAB, BENCH_CLASSES);
}

static int bad_arg(const char *opt, const char *val, const char *why) {
  if (!dist_is_root()) return 1;
  if (val)
    fprintf(stderr, "longvq bench: %s %s: %s (see --help)\n", opt, val, why);
  else
    fprintf(stderr, "longvq bench: %s: %s (see --help)\n", opt, why);
  return 1;
}

static int parse_i64(const char *opt, const char *s, int64_t lo, int64_t *out) {
  int64_t v;
  int overflow;
  if (!lv_parse_int(s, &v, &overflow) || overflow) return bad_arg(opt, s, "not an integer");
  if (v < lo) {
    char why[64];
    snprintf(why, sizeof why, "must be >= %lld", (long long)lo);
    return bad_arg(opt, s, why);
  }
  *out = v;
  return 0;
}

static int cmp_i64(const void *a, const void *b) {
  int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
  return (x > y) - (x < y);
}

/* The command line as given: CONFIG [key=value ...] and bench's own options (-1 / NULL: default). */
typedef struct {
  lv_cli_config cc;
  const char *mode, *lengths;
  int64_t tokens, steps, warmup, probe;
  int quick, help;
} bench_args;

/* Returns 0 or 1 (bad usage, message printed). */
static int parse_args(int argc, char **argv, bench_args *a) {
  memset(a, 0, sizeof *a);
  lv_cli_config_init(&a->cc, argc);
  a->tokens = a->steps = a->warmup = a->probe = -1;
  for (int i = 1; i < argc; i++) {
    const char *s = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    struct { const char *name; int64_t *dst; int64_t lo; } ints[] = {
        {"--tokens", &a->tokens, 1}, {"--steps", &a->steps, 1}, {"--warmup", &a->warmup, 0}, {"--probe", &a->probe, 0}};
    int k, nk = (int)(sizeof ints / sizeof ints[0]), took = 0;
    for (k = 0; k < nk && strcmp(s, ints[k].name); k++) {}
    if (!strcmp(s, "--help") || !strcmp(s, "-h")) {
      a->help = 1;
    } else if (k < nk) {
      if (!v) return bad_arg(s, NULL, "needs a value");
      if (parse_i64(s, v, ints[k].lo, ints[k].dst)) return 1;
      i++;
    } else if (!strcmp(s, "--quick")) {
      a->quick = 1;
    } else if (!strcmp(s, "--mode") || !strcmp(s, "--lengths")) {
      if (!v) return bad_arg(s, NULL, "needs a value");
      i++;
      if (!strcmp(s, "--lengths")) {
        a->lengths = v;
      } else if (strcmp(v, "encoder") && strcmp(v, "decoder") && strcmp(v, "both")) {
        return bad_arg(s, v, "must be encoder, decoder or both");
      } else {
        a->mode = v;
      }
    } else if ((took = lv_cli_config_arg(&a->cc, "bench", argv[i])) < 0) {
      return 1;
    } else if (!took) {
      return bad_arg(s, NULL, "unknown option");
    }
  }
  return 0;
}

/* The run from the arguments and the built config: defaults, lengths (ascending, multiples of
 * model.chunk_size dividing the tokens per batch), the model of each mode. Returns 0 or 1 (bad
 * usage, message printed). */
static int setup(bench_opts *o, const bench_args *a, const lv_config *cfg) {
  memset(o, 0, sizeof *o);
  o->cfg = *cfg;
  o->quick = a->quick;
  o->tokens = a->tokens > 0 ? a->tokens : o->quick ? 4096 : 16384;
  o->steps = (int)(a->steps > 0 ? a->steps : o->quick ? 2 : 10);
  o->warmup = (int)(a->warmup >= 0 ? a->warmup : o->quick ? 1 : 2);
  o->probe_n = a->probe >= 0 ? a->probe : o->quick ? 1024 : 4096;
  const int64_t C = cfg->model.chunk_size;
  const char *lengths = a->lengths;
  char buf[512];
  snprintf(buf, sizeof buf, "%s", lengths ? lengths : o->quick ? "512,2048" : "1024,4096,16384");
  for (char *save = NULL, *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
    if (o->n_lengths == BENCH_MAX_LENGTHS) return bad_arg("--lengths", lengths, "too many lengths");
    int64_t L;
    while (*t == ' ') t++; /* "1024, 4096" */
    if (parse_i64("--lengths", t, 1, &L)) return 1;
    char why[160];
    if (L % C) {
      snprintf(why, sizeof why, "%lld is not a multiple of model.chunk_size %lld", (long long)L, (long long)C);
      return bad_arg("--lengths", lengths ? lengths : "(default)", why);
    }
    if (o->tokens % L) {
      snprintf(why, sizeof why, "%lld does not divide --tokens %lld (B = tokens / L sequences per batch)",
               (long long)L, (long long)o->tokens);
      return bad_arg("--lengths", lengths ? lengths : "(default)", why);
    }
    o->lengths[o->n_lengths++] = L;
  }
  if (!o->n_lengths) return bad_arg("--lengths", lengths, "no length given");
  qsort(o->lengths, (size_t)o->n_lengths, sizeof(int64_t), cmp_i64);
  char why[512];
  if (cfg->model.precision == LV_PRECISION_BF16 && trainer_bf16_missing(why, sizeof why)) {
    if (dist_is_root()) fprintf(stderr, "longvq bench: %s\n", why);
    return 1;
  }
  const char *mode = a->mode ? a->mode : cfg->model.mode == LV_MODE_DECODER ? "decoder" : "encoder";
  o->run_enc = strcmp(mode, "decoder") != 0;
  o->run_dec = strcmp(mode, "encoder") != 0;
  const lv_dims d = trainer_model_dims(cfg, cfg->model.vocab_size ? cfg->model.vocab_size : BENCH_VOCAB,
                                       cfg->model.n_classes ? cfg->model.n_classes : BENCH_CLASSES);
  o->enc = d;
  o->enc.decoder = 0;
  o->dec = d;
  o->dec.decoder = 1;
  for (int m = 0; m < 2; m++) {
    if (!(m ? o->run_dec : o->run_enc)) continue;
    lv_layout lay;
    char err[256];
    if (lv_layout_build(&lay, m ? &o->dec : &o->enc, err, sizeof err)) {
      if (dist_is_root()) fprintf(stderr, "longvq bench: %s: invalid model: %s\n", a->cc.config, err);
      return 1;
    }
    lv_layout_free(&lay);
  }
  return 0;
}

/* ---- child processes ------------------------------------------------------------------------- */

/* Runs one measurement in a forked child; the child sends `n` bytes of *out back through a pipe.
 * Returns 0 if the child finished and sent everything, else 1 (with a message). */
static int run_child(const bench_opts *o, const lv_dims *d, int64_t L, void *out, size_t n, const char *what) {
  int fd[2];
  fflush(stdout);
  fflush(stderr);
  if (pipe(fd)) DIE("bench: pipe: %s", strerror(errno));
  pid_t pid = fork();
  if (pid < 0) DIE("bench: fork: %s", strerror(errno));
  if (pid == 0) {
    close(fd[0]);
    if (d)
      bench_run_model(o, d, L, out);
    else
      bench_run_probe(o, out);
    const char *p = out;
    for (size_t left = n; left > 0;) {
      ssize_t w = write(fd[1], p, left);
      if (w <= 0) _exit(LV_EXIT_FAIL);
      p += w;
      left -= (size_t)w;
    }
    _exit(LV_EXIT_OK); /* no MPI, no atexit handlers in the child */
  }
  close(fd[1]);
  size_t got = 0;
  while (got < n) {
    ssize_t r = read(fd[0], (char *)out + got, n - got);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) break;
    got += (size_t)r;
  }
  close(fd[0]);
  int st = 0;
  while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {}
  if (got == n && WIFEXITED(st) && WEXITSTATUS(st) == 0) return 0;
  if (WIFSIGNALED(st))
    fprintf(stderr, "longvq bench: %s: the child process died of signal %d\n", what, WTERMSIG(st));
  else
    fprintf(stderr, "longvq bench: %s: the child process failed (exit code %d)\n", what, WEXITSTATUS(st));
  return 1;
}

/* ---- printing ---------------------------------------------------------------------------------- */

static double mib(double bytes) { return bytes / (1024.0 * 1024.0); }

static void machine_line(void) {
  char model[128] = "unknown CPU", line[256], load[16] = "?";
  FILE *f = fopen("/proc/cpuinfo", "r");
  while (f && fgets(line, sizeof line, f))
    if (!strncmp(line, "model name", 10) && strchr(line, ':')) {
      snprintf(model, sizeof model, "%s", strchr(line, ':') + 2);
      model[strcspn(model, "\n")] = 0;
      break;
    }
  if (f) fclose(f);
  const double avg = lv_proc_loadavg();
  if (avg >= 0) snprintf(load, sizeof load, "%.2f", avg);
  time_t now = time(NULL);
  char date[32];
  strftime(date, sizeof date, "%Y-%m-%d %H:%M UTC", gmtime(&now));
  printf("machine: %s, %ld CPUs online, load average (1 min) %s, %s\n", model, sysconf(_SC_NPROCESSORS_ONLN), load,
         date);
}

/* The MFU reference: the best matmul rate the probe saw (square or projection shape), 0 if none;
 * bf16 = 1: of the bf16 probe (0 if the CPU has no native bf16). */
static double bench_peak_rate(const bench_probe *pr, int probe_ok, int bf16) {
  if (!probe_ok) return 0;
  if (bf16) return pr->bf16 ? (pr->square16_best > pr->shape16_best ? pr->square16_best : pr->shape16_best) : 0;
  return pr->square_best > pr->shape_best ? pr->square_best : pr->shape_best;
}

static void print_mode(const bench_opts *o, const lv_dims *d, const bench_result *res, const int *ok,
                       const bench_probe *pr, int probe_ok) {
  const char *name = d->decoder ? "decoder" : "encoder";
  const bench_result *r0 = NULL;
  const double ref_rate = bench_peak_rate(pr, probe_ok, 0), ref16 = bench_peak_rate(pr, probe_ok, 1);
  const int bf16 = o->cfg.model.precision == LV_PRECISION_BF16;
  for (int i = 0; i < o->n_lengths && !r0; i++)
    if (ok[i]) r0 = &res[i];
  printf("\n== %s ==\n", name);
  if (r0) {
    const double T = (double)o->tokens;
    printf("threads: OMP_NUM_THREADS=%s, omp_get_max_threads()=%d; RSS of a child at its start %.1f MiB (peak "
           "below is the child's VmHWM minus this)\n", r0->omp_env, r0->threads, mib(r0->rss_start));
    const lv_model_flops *f = &r0->fl;
    printf("model FLOPs per token (lv_model_count_flops, as train's gflops: matmuls, forward + backward, L = %lld): "
           "%.0f = projections %.0f + attention %.0f + VQ %.0f + head %.0f; executed incl. the attention backward's "
           "recomputed logits: %.0f\n",
           (long long)r0->L, f->model / T, f->proj / T, f->attn / T, f->vq / T, f->head / T,
           (f->model + f->attn_recompute) / T);
  }
  lv_layout lay;
  char err[256];
  if (!lv_layout_build(&lay, d, err, sizeof err)) {
    lv_model_print_plan(stdout, d, o->tokens / o->lengths[0], o->lengths[0], lay.n_param_floats, lay.n_state_floats, 2);
    lv_layout_free(&lay);
  }
  if (r0)
    printf("precision %s%s\n", bf16 ? "bf16" : "f32",
           bf16 ? ": matmul operands rounded to bf16 tile by tile into an operand buffer (the largest A + B "
                  "of one tile; \"plan MiB\" below includes it), activations and everything else in the plan stay f32"
                : "");
  if (r0 && bf16) printf("  bf16 operand buffer %10.1f MiB\n", mib(r0->ws_bytes));
  printf("\n%-8s %6s %4s %9s %9s %9s %9s %9s %9s %8s %9s %8s %6s %8s\n", "speed", "L", "B", "fwd ms", "bwd ms", "upd ms",
         "step ms", "min ms", "tok/s", "ns/tok", "t/t(L0)", "GFLOP/s", "MFU", "MFUbf16");
  double t0 = 0;
  for (int i = 0; i < o->n_lengths; i++) {
    const bench_result *r = &res[i];
    if (!ok[i]) {
      printf("%-8s %6lld  (failed)\n", name, (long long)o->lengths[i]);
      continue;
    }
    double ns = r->step / (double)o->tokens * 1e9, gf = r->fl.model / r->step * 1e-9;
    if (t0 == 0) t0 = ns;
    char mfu[16] = "n/a", mfu16[16] = "n/a";
    if (ref_rate > 0) snprintf(mfu, sizeof mfu, "%.1f%%", 100.0 * gf / ref_rate);
    if (ref16 > 0) snprintf(mfu16, sizeof mfu16, "%.1f%%", 100.0 * gf / ref16);
    printf("%-8s %6lld %4lld %9.1f %9.1f %9.1f %9.1f %9.1f %9.0f %8.1f %9.3f %8.1f %6s %8s\n", name, (long long)r->L,
           (long long)r->B, r->fwd * 1e3, r->bwd * 1e3, r->upd * 1e3, r->step * 1e3, r->step_min * 1e3,
           (double)o->tokens / r->step, ns, ns / t0, gf, mfu, mfu16);
  }
  /* where the step goes: the matmul products (mm_exec, incl. bf16 rounding) against everything else,
   * which model.precision does not change: the bound on what bf16 can gain (docs/performance.md) */
  printf("\n%-8s %6s %4s %9s %9s %7s %9s %9s %7s\n", "split", "L", "B", "step ms", "matmul ms", "share",
         "round ms", "other ms", "share");
  for (int i = 0; i < o->n_lengths; i++) {
    const bench_result *r = &res[i];
    if (!ok[i]) continue;
    /* rounding to the microsecond: a small model's is a fraction of a 0.1 ms, and "0.0" would read as none */
    printf("%-8s %6lld %4lld %9.1f %9.1f %6.1f%% %9.3f %9.1f %6.1f%%\n", name, (long long)r->L, (long long)r->B,
           r->step * 1e3, r->mm * 1e3, 100.0 * r->mm / r->step, r->round * 1e3, (r->step - r->mm) * 1e3,
           100.0 * (r->step - r->mm) / r->step);
  }
  printf("\n%-8s %6s %4s %9s %9s %7s %10s %9s %12s %17s\n", "memory", "L", "B", "plan MiB", "peak MiB", "ratio",
         "peak-plan", "ready MiB", "act B/tok/ly", "loss first->last");
  for (int i = 0; i < o->n_lengths; i++) {
    const bench_result *r = &res[i];
    if (!ok[i]) continue;
    double plan = bench_plan_bytes(d, r->B, r->L) + r->ws_bytes, peak = r->hwm - r->rss_start;
    lv_model_mem mem = lv_model_plan(d, r->B, r->L);
    printf("%-8s %6lld %4lld %9.1f %9.1f %7.3f %10.1f %9.1f %12.0f %8.4f->%.4f\n", name, (long long)r->L,
           (long long)r->B, mib(plan), mib(peak), peak / plan, mib(peak - plan), mib(r->rss_ready - r->rss_start),
           (double)mem.per_layer_act * 4.0 / (double)(r->B * r->L), r->loss_first, r->loss_last);
  }
  /* the targets of docs/performance.md, as numbers (not a pass/fail: timings depend on the machine) */
  int first = -1, last = -1;
  double worst_mem = 0, worst_mfu = 1e9;
  for (int i = 0; i < o->n_lengths; i++) {
    if (!ok[i]) continue;
    if (first < 0) first = i;
    last = i;
    double peak = res[i].hwm - res[i].rss_start, plan = bench_plan_bytes(d, res[i].B, res[i].L) + res[i].ws_bytes;
    if (peak / plan > worst_mem) worst_mem = peak / plan;
    double gf = res[i].fl.model / res[i].step * 1e-9;
    if (ref_rate > 0 && gf / ref_rate < worst_mfu) worst_mfu = gf / ref_rate;
  }
  if (first >= 0) {
    printf("\ntargets (%s): t(%lld)/t(%lld) per token = %.3f (target <= 1.2)", name, (long long)res[last].L,
           (long long)res[first].L, res[last].step / res[first].step);
    if (worst_mfu < 1e9) printf("; lowest MFU %.1f%% (target >= 40%%)", 100.0 * worst_mfu);
    printf("; highest peak/plan %.3f (target <= 1.25)\n", worst_mem);
  }
}

int cmd_bench(int argc, char **argv) {
  bench_args a;
  lv_config cfg;
  bench_opts o;
  int rc = parse_args(argc, argv, &a);
  if (!rc && a.help && dist_is_root()) usage(stdout);
  if (!rc && !a.help) rc = lv_cli_config_build(&cfg, &a.cc, "bench") || setup(&o, &a, &cfg);
  if (!rc && !a.help && dist_size() > 1) {
    if (dist_is_root()) fprintf(stderr, "longvq bench: run on one rank (it measures one process; got %d)\n", dist_size());
    rc = 1;
  }
  if (rc || a.help) {
    lv_cli_config_free(&a.cc);
    return rc ? LV_EXIT_USAGE : LV_EXIT_OK;
  }
  const lv_dims *d0 = o.run_enc ? &o.enc : &o.dec;
  printf("longvq bench %s", a.cc.config);
  for (int i = 0; i < a.cc.n_over; i++) printf(" %s", a.cc.over[i]);
  char classes[64] = ""; /* only the encoder has classes */
  if (o.run_enc)
    snprintf(classes, sizeof classes, ", K %lld%s", (long long)d0->K,
             cfg.model.n_classes ? "" : " (model.n_classes 0: bench default)");
  printf(": %s%s%s, %lld layers, D %lld Z %lld E %lld N %lld S %lld C %lld F %lld, V %lld%s%s, %s %s%s, far "
         "attention %s, dropout %g / hidden %g, run.seed %lld, precision %s\n",
         o.run_enc ? "encoder" : "", o.run_enc && o.run_dec ? " + " : "", o.run_dec ? "decoder" : "",
         (long long)d0->n_layers, (long long)d0->D, (long long)d0->Z, (long long)d0->E, (long long)d0->N,
         (long long)d0->S, (long long)d0->C, (long long)d0->F, (long long)d0->V,
         cfg.model.vocab_size ? "" : " (model.vocab_size 0: bench default)", classes,
         d0->prenorm ? "prenorm" : "postnorm", d0->norm == 0 ? "layernorm" : d0->norm == 1 ? "rmsnorm" : "scalenorm",
         d0->tie_embeddings ? ", tied embeddings" : "", d0->far_attention ? "on" : "off", cfg.model.dropout,
         cfg.model.hidden_dropout, (long long)cfg.run.seed, cfg.model.precision == LV_PRECISION_BF16 ? "bf16" : "f32");
  lv_cli_config_free(&a.cc);
  printf("%lld tokens per batch; lengths", (long long)o.tokens);
  for (int i = 0; i < o.n_lengths; i++) printf("%s%lld", i ? "," : " ", (long long)o.lengths[i]);
  printf("; %d warm-up + %d timed steps per length, each length in a fresh child process\n", o.warmup, o.steps);
  machine_line();

  int failed = 0;
  bench_probe pr;
  memset(&pr, 0, sizeof pr);
  int probe_ok = o.probe_n > 0 && !run_child(&o, NULL, 0, &pr, sizeof pr, "matmul probe");
  failed |= o.probe_n > 0 && !probe_ok;
  if (probe_ok)
    printf("oneDNN f32 matmul (%d threads): %lld^3 best %.1f GFLOP/s (mean %.1f); largest projection %lldx%lld @ "
           "%lldx%lld best %.1f GFLOP/s; MFU reference = the higher: %.1f GFLOP/s\n",
           pr.threads, (long long)pr.n, pr.square_best, pr.square_mean, (long long)pr.shape[0], (long long)pr.shape[1],
           (long long)pr.shape[1], (long long)pr.shape[2], pr.shape_best, bench_peak_rate(&pr, 1, 0));
  if (probe_ok && pr.bf16)
    printf("oneDNN bf16 matmul (operands rounded per call, f32 accumulation): %lld^3 best %.1f GFLOP/s (mean %.1f); "
           "largest projection best %.1f GFLOP/s; MFUbf16 reference = the higher: %.1f GFLOP/s (%.2fx f32)\n",
           (long long)pr.n, pr.square16_best, pr.square16_mean, pr.shape16_best, bench_peak_rate(&pr, 1, 1),
           bench_peak_rate(&pr, 1, 1) / bench_peak_rate(&pr, 1, 0));
  else if (probe_ok)
    printf("no bf16 matmul probe: this CPU has no native bf16 (MFUbf16 n/a)\n");
  for (int m = 0; m < 2; m++) {
    if (!(m ? o.run_dec : o.run_enc)) continue;
    const lv_dims *d = m ? &o.dec : &o.enc;
    bench_result res[BENCH_MAX_LENGTHS];
    int ok[BENCH_MAX_LENGTHS];
    for (int i = 0; i < o.n_lengths; i++) {
      char what[64];
      snprintf(what, sizeof what, "%s L=%lld", m ? "decoder" : "encoder", (long long)o.lengths[i]);
      ok[i] = !run_child(&o, d, o.lengths[i], &res[i], sizeof res[i], what);
      failed |= !ok[i];
    }
    print_mode(&o, d, res, ok, &pr, probe_ok);
  }
  machine_line();
  fflush(stdout);
  return failed ? LV_EXIT_FAIL : LV_EXIT_OK;
}
