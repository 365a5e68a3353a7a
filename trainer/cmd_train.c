/* `longvq train CONFIG [key=value ...]` and `longvq eval CONFIG --model FILE.h5 [key=value ...]`. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/config.h"
#include "io/model_io.h"
#include "trainer/base/check.h"
#include "trainer/cli_config.h"
#include "trainer/commands.h"
#include "trainer/jsonl.h"
#include "trainer/base/dist.h"
#include "trainer/base/watchdog.h"
#include "trainer/placement.h"
#include "trainer/runlock.h"
#include "trainer/signals.h"
#include "trainer/train.h"

typedef struct {
  lv_cli_config cc; /* CONFIG [key=value ...] */
  const char *model;
  const char *split;
  const char *buckets; /* eval: --position-buckets LIST, or NULL for the default */
  const char *json;    /* eval: --json FILE */
  int print_config, help;
} cli;

static int parse(int argc, char **argv, cli *a, int eval) {
  memset(a, 0, sizeof *a);
  lv_cli_config_init(&a->cc, argc);
  for (int i = 1; i < argc; i++) {
    const char *s = argv[i];
    int took = 0;
    if (!strcmp(s, "--help") || !strcmp(s, "-h")) {
      a->help = 1;
    } else if (!strcmp(s, "--print-config")) {
      a->print_config = 1;
    } else if (eval && !strcmp(s, "--model") && i + 1 < argc) {
      a->model = argv[++i];
    } else if (eval && !strcmp(s, "--split") && i + 1 < argc) {
      a->split = argv[++i];
    } else if (eval && !strcmp(s, "--position-buckets") && i + 1 < argc) {
      a->buckets = argv[++i];
    } else if (eval && !strcmp(s, "--json") && i + 1 < argc) {
      a->json = argv[++i];
    } else if (!strcmp(s, "--resume") && i + 1 < argc) {
      static char buf[LV_CONFIG_PATH_MAX + 32];
      snprintf(buf, sizeof buf, "checkpoint.resume=%s", argv[++i]);
      a->cc.over[a->cc.n_over++] = buf;
    } else if ((took = lv_cli_config_arg(&a->cc, argv[0], argv[i])) < 0) {
      return 1;
    } else if (!took) {
      if (dist_is_root()) fprintf(stderr, "longvq %s: unknown option '%s' (see --help)\n", argv[0], s);
      return 1;
    }
  }
  return 0;
}

static void usage(int eval) {
  if (eval)
    printf("usage: longvq eval CONFIG --model MODEL.h5 [--split val|test|NAME] [--position-buckets P1,P2,...]\n"
           "                   [--json FILE] [key=value ...]\n\n"
           "Evaluates a saved model on a split of the dataset named by the config: data.val (default),\n"
           "data.test with --split test, or the split NAME of data.test's file (e.g. test_near of an mqar\n"
           "dataset). Prints the mean loss and accuracy, and bits per token for LM (over the targets the\n"
           "split's eval_mask counts, if it has one). The model is evaluated as it was trained: its\n"
           "non-shape model.* keys (e.g. model.far_attention) come from the model file unless given\n"
           "as key=value.\n\n"
           "LM: also bits per token by position of the target in its data.seq_len window, in buckets\n"
           "starting at 0 and at each boundary of --position-buckets (default: the powers of 4 from 64\n"
           "below seq_len: 0-63, 64-255, 256-1023, 1024-4095, ...). --json FILE writes the figures (and\n"
           "the buckets' exact loss sums) as one JSON object.\n");
  else
    printf("usage: longvq train CONFIG [key=value ...] [--print-config]\n\n"
           "Trains the model the config describes (run under mpirun/srun for data parallelism).\n"
           "key=value arguments override the file. --print-config prints the effective config and exits.\n"
           "Outputs go to run.dir: metrics.jsonl, model_step0.h5, model_final.h5; one run at a time (run.dir/.lock).\n\nconfig keys:\n");
  if (!eval) lv_config_help(stdout);
}

/* eval: the position buckets (LM splits only), checked against the split's seq_len. Collective. */
static void eval_buckets(lv_pos_buckets *pb, const cli *a, const lv_trainer *t) {
  char why[256];
  if (!a->buckets) {
    lv_pos_buckets_default(pb, t->L);
    return;
  }
  if (!t->eval.lm)
    DIE_INPUT_ALL("--position-buckets: only for a language-modelling split (this model classifies sequences)");
  if (lv_pos_buckets_parse(pb, a->buckets, t->L, why, sizeof why)) DIE_INPUT_ALL("--position-buckets %s", why);
}

/* eval --json: one object with the figures printed (rank 0). */
static void write_eval_json(FILE *f, const cli *a, const lv_trainer *t, double loss, double acc, double n,
                            const lv_pos_buckets *pb) {
  lv_jsonl j;
  jsonl_begin(&j);
  jsonl_str(&j, "model", a->model);
  jsonl_str(&j, "split", a->split ? a->split : "val");
  jsonl_num(&j, "loss", "%.17g", loss);
  jsonl_num(&j, "accuracy", "%.17g", acc);
  jsonl_num(&j, t->eval.lm ? "targets" : "samples", "%.0f", n);
  if (t->eval.lm) {
    jsonl_num(&j, "bits_per_token", "%.17g", loss / log(2.0));
    jsonl_int(&j, "seq_len", (long long)t->L);
    lv_pos_buckets_json(&j, pb);
  }
  if (jsonl_write(&j, f) || fclose(f))
    DIE("--json %s: writing failed: %s", a->json, strerror(errno));
}

static int run(int argc, char **argv, int eval) {
  cli a;
  if (parse(argc, argv, &a, eval)) {
    lv_cli_config_free(&a.cc);
    return LV_EXIT_USAGE;
  }
  if (a.help) {
    if (dist_is_root()) usage(eval);
    lv_cli_config_free(&a.cc);
    return LV_EXIT_OK;
  }
  lv_config cfg;
  if (eval ? lv_cli_config_build_model(&cfg, &a.cc, argv[0], a.model) : lv_cli_config_build(&cfg, &a.cc, argv[0])) {
    lv_cli_config_free(&a.cc);
    return LV_EXIT_USAGE;
  }
  if (a.print_config) {
    if (dist_is_root()) lv_config_print_yaml(stdout, &cfg);
    lv_cli_config_free(&a.cc);
    return LV_EXIT_OK;
  }
  watchdog_set_timeout(cfg.dist.timeout_s); /* the stall limit; start-up until here ran on the auto limit */
  lv_trainer t;
  int rc = LV_EXIT_OK;
  placement_setup(cfg.train.threads); /* threads per rank, before any OpenMP/oneDNN work; logs placement */
  if (eval) {
    lv_cli_adopt_model_keys(&cfg, &a.cc, a.model, "eval", stdout);
    if (a.split && strcmp(a.split, "val")) { /* test, or any other split of the test file */
      if (!cfg.data.test[0]) DIE_INPUT("data.test: no test dataset configured (needed by --split %s)", a.split);
      snprintf(cfg.data.val, sizeof cfg.data.val, "%s", cfg.data.test);
      snprintf(cfg.data.split_val, sizeof cfg.data.split_val, "%s", strcmp(a.split, "test") ? a.split : cfg.data.split_test);
    }
    trainer_setup(&t, &cfg, 0);
    lv_pos_buckets pb;
    eval_buckets(&pb, &a, &t);
    FILE *json = NULL;
    if (a.json && dist_is_root()) json = fopen(a.json, "w"); /* before the (possibly long) evaluation */
    CHECK_INPUT_ALL(a.json && dist_is_root() && !json, "--json %s: cannot open for writing: %s", a.json,
                    strerror(errno));
    trainer_init_params(&t, a.model, "--model");
    double loss, acc, n;
    watchdog_phase(LV_PHASE_EVAL, -1);
    trainer_evaluate(&t, &t.eval, cfg.train.eval_batches, &loss, &acc, &n, &pb);
    if (dist_is_root()) {
      if (t.eval.lm)
        printf("eval %s: loss %.9f | bits per token %.9f | accuracy %.7f | %.0f targets\n", a.model, loss,
               loss / 0.6931471805599453, acc, n);
      else
        printf("eval %s: loss %.9f | accuracy %.7f | %.0f samples\n", a.model, loss, acc, n);
      if (t.eval.lm) lv_pos_buckets_print(stdout, &pb);
      if (json) write_eval_json(json, &a, &t, loss, acc, n, &pb);
    }
  } else {
    lv_signals_install(); /* before the (possibly long) setup: a stop signal then stops at step 1 */
    runlock_acquire(cfg.run.dir, cfg.run.lock_stale_s); /* one run per run.dir, before anything is written there */
    trainer_setup(&t, &cfg, 1);
    trainer_init_params(&t, NULL, NULL); /* the spec init; trainer_run loads train.init_from or a checkpoint */
    rc = trainer_run(&t);
  }
  trainer_free(&t);
  runlock_release(); /* (eval holds none) */
  lv_cli_config_free(&a.cc);
  return rc;
}

int cmd_train(int argc, char **argv) { return run(argc, argv, 0); }
int cmd_eval(int argc, char **argv) { return run(argc, argv, 1); }
