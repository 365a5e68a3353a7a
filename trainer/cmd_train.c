/* `longvq train CONFIG [key=value ...]` and `longvq eval CONFIG --model FILE.h5 [key=value ...]`. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/config.h"
#include "io/model_io.h"
#include "trainer/base/check.h"
#include "trainer/cli_config.h"
#include "trainer/commands.h"
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
    printf("usage: longvq eval CONFIG --model MODEL.h5 [--split val|test|NAME] [key=value ...]\n\n"
           "Evaluates a saved model on a split of the dataset named by the config: data.val (default),\n"
           "data.test with --split test, or the split NAME of data.test's file (e.g. test_near of an mqar\n"
           "dataset). Prints the mean loss and accuracy, and bits per token for LM (over the targets the\n"
           "split's eval_mask counts, if it has one). The model is evaluated as it was trained: its\n"
           "non-shape model.* keys (e.g. model.far_attention) come from the model file unless given\n"
           "as key=value.\n");
  else
    printf("usage: longvq train CONFIG [key=value ...] [--print-config]\n\n"
           "Trains the model the config describes (run under mpirun/srun for data parallelism).\n"
           "key=value arguments override the file. --print-config prints the effective config and exits.\n"
           "Outputs go to run.dir: metrics.jsonl, model_step0.h5, model_final.h5; one run at a time (run.dir/.lock).\n\nconfig keys:\n");
  if (!eval) lv_config_help(stdout);
}

/* eval: the model is evaluated as it was trained. Every non-shape model.* key is taken from the
 * model file's stored config, then the command line's key=value overrides are applied again, so
 * they still win; each key that ends up changed is logged. Shape keys must already agree, or
 * loading the parameters fails. */
static void adopt_model_keys(lv_config *cfg, const cli *a) {
  char *yaml = lv_model_read_config(a->model);
  if (!yaml) return; /* no stored config (a foreign file): the given config alone */
  lv_config stored, given = *cfg;
  lv_config_defaults(&stored);
  char src[LV_CONFIG_PATH_MAX + sizeof "<config of >"];
  snprintf(src, sizeof src, "<config of %s>", a->model);
  int bad = lv_config_load_string(&stored, yaml, strlen(yaml), src, dist_is_root() ? stderr : NULL);
  free(yaml);
  if (bad) DIE_INPUT("--model %s: its stored config does not load (see above)", a->model);
  const char *names[128];
  int n = lv_config_diff(&stored, cfg, 0, names, 128);
  for (int i = 0; i < n && i < 128; i++) {
    const lv_key *k = lv_config_find_key(names[i]);
    if (strncmp(names[i], "model.", 6) || (k->flags & LV_KEY_SHAPE)) continue;
    char v[256], problem[256];
    lv_config_format_value(&stored, k, v, sizeof v);
    if (lv_config_set_text(cfg, k, v, problem, sizeof problem)) DIE("%s: %s", names[i], problem);
  }
  if (lv_config_apply_overrides(cfg, a->cc.n_over, a->cc.over, NULL)) DIE("eval: re-applying the overrides failed");
  n = lv_config_diff(&given, cfg, 0, names, 128);
  for (int i = 0; i < n && i < 128 && dist_is_root(); i++) {
    const lv_key *k = lv_config_find_key(names[i]);
    char was[256], now[256];
    lv_config_format_value(cfg, k, now, sizeof now);
    lv_config_format_value(&given, k, was, sizeof was);
    printf("eval: %s: %s as the model was trained (the config says %s; override with %s=...)\n", names[i], now, was,
           names[i]);
  }
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
  if (eval && a.cc.config && !a.model) { /* (a missing CONFIG is reported first, by the build) */
    if (dist_is_root()) fprintf(stderr, "longvq %s: missing --model (see --help)\n", argv[0]);
    lv_cli_config_free(&a.cc);
    return LV_EXIT_USAGE;
  }
  lv_config cfg;
  if (lv_cli_config_build(&cfg, &a.cc, argv[0])) {
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
    adopt_model_keys(&cfg, &a);
    if (a.split && strcmp(a.split, "val")) { /* test, or any other split of the test file */
      if (!cfg.data.test[0]) DIE_INPUT("data.test: no test dataset configured (needed by --split %s)", a.split);
      snprintf(cfg.data.val, sizeof cfg.data.val, "%s", cfg.data.test);
      snprintf(cfg.data.split_val, sizeof cfg.data.split_val, "%s", strcmp(a.split, "test") ? a.split : cfg.data.split_test);
    }
    trainer_setup(&t, &cfg, 0);
    trainer_init_params(&t, a.model, "--model");
    double loss, acc, n;
    watchdog_phase(LV_PHASE_EVAL, -1);
    trainer_evaluate(&t, &t.eval, cfg.train.eval_batches, &loss, &acc, &n);
    if (dist_is_root()) {
      if (t.eval.lm)
        printf("eval %s: loss %.9f | bits per token %.9f | accuracy %.7f | %.0f targets\n", a.model, loss,
               loss / 0.6931471805599453, acc, n);
      else
        printf("eval %s: loss %.9f | accuracy %.7f | %.0f samples\n", a.model, loss, acc, n);
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
