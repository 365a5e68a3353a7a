/* Checkpoints in the training run: resume (auto / a file), periodic and signal-driven saves,
 * rotation, and the config-compatibility rules at resume. The file format is io/checkpoint.h. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "trainer/base/clock.h"
#include "io/checkpoint.h"
#include "io/config.h"
#include "io/model_io.h"
#include "trainer/base/check.h"
#include "trainer/base/dist.h"
#include "trainer/base/log.h"
#include "trainer/jsonl.h"
#include "trainer/base/watchdog.h"
#include "trainer/train.h"


/* Compares the checkpoint's config with the current one: a change of a shape key is refused
 * (the parameters would not fit), other changes are listed and accepted. Collective. */
static void check_compatible(lv_trainer *t, const char *path, const char *yaml) {
  lv_config old;
  lv_config_defaults(&old);
  char src[LV_PATH_MAX + sizeof "<checkpoint >"];
  snprintf(src, sizeof src, "<checkpoint %s>", path);
  int bad = lv_config_load_string(&old, yaml, strlen(yaml), src, dist_is_root() ? stderr : NULL);
  if (bad) DIE_INPUT("%s: its stored config does not load (see above)", path);
  const char *names[128];
  int n = lv_config_diff(&old, &t->cfg, LV_KEY_SHAPE, names, 128);
  if (n > 0) { /* every rank read the same checkpoint and config */
    char msg[2048];
    size_t len = 0;
    for (int i = 0; i < n && i < 128 && len < sizeof msg; i++) {
      const lv_key *k = lv_config_find_key(names[i]);
      char a[256], b[256];
      lv_config_format_value(&old, k, a, sizeof a);
      lv_config_format_value(&t->cfg, k, b, sizeof b);
      len += (size_t)snprintf(msg + len, sizeof msg - len, "%s %s (%s -> %s)", i ? "," : "", names[i], a, b);
    }
    DIE_INPUT_ALL("cannot resume from %s: the config changes the model's shape:%s", path, msg);
  }
  n = lv_config_diff(&old, &t->cfg, 0, names, 128);
  for (int i = 0; i < n && i < 128; i++) {
    if (!strcmp(names[i], "checkpoint.resume")) continue;
    const lv_key *k = lv_config_find_key(names[i]);
    char a[256], b[256];
    lv_config_format_value(&old, k, a, sizeof a);
    lv_config_format_value(&t->cfg, k, b, sizeof b);
    log_info("resume: config change accepted: %s: %s -> %s", names[i], a, b);
  }
}

/* The metrics file is read back or rewritten only if it is a regular file: log.metrics may be a FIFO
 * or a device (appended to, never read: a read could block or never end). */
static int metrics_is_file(const lv_trainer *t) {
  struct stat st;
  return stat(t->log.path, &st) == 0 && S_ISREG(st.st_mode);
}

/* Rank 0: drop the metric lines of steps after `step` (work lost since that checkpoint, redone now),
 * so the file reads as one run, and a last line without its newline (a write cut short by a kill: the
 * next line would be glued to it). Rewritten through a temporary file and a rename. */
static void trim_metrics(lv_trainer *t, int64_t step) {
  if (!dist_is_root() || !t->log.metrics || !metrics_is_file(t)) return;
  fclose(t->log.metrics);
  char tmp[sizeof t->log.path + 8];
  snprintf(tmp, sizeof tmp, "%s.tmp", t->log.path);
  FILE *in = fopen(t->log.path, "r"), *out = fopen(tmp, "w");
  if (!in || !out) DIE("%s: cannot rewrite the metrics file", t->log.path);
  char line[sizeof ((lv_jsonl *)0)->buf + 2]; /* the longest line the trainer writes, its newline, NUL */
  while (fgets(line, sizeof line, in)) {
    const char *p = strstr(line, "\"step\": ");
    if (p && strtoll(p + 8, NULL, 10) > step) continue;
    size_t n = strlen(line); /* 0: a line starting with a NUL byte (a tail a crash zero-filled) */
    if (n == 0 || line[n - 1] != '\n') continue;
    fputs(line, out);
  }
  fclose(in);
  if (fclose(out) != 0 || rename(tmp, t->log.path) != 0) DIE("%s: cannot rewrite the metrics file", t->log.path);
  t->log.metrics = fopen(t->log.path, "a");
  if (!t->log.metrics) DIE("%s: cannot reopen the metrics file", t->log.path);
}

/* Rank 0: the training lines (with a "step") already in the metrics file; 0 on other ranks. */
static int64_t metric_lines(const lv_trainer *t) {
  if (!dist_is_root() || !metrics_is_file(t)) return 0;
  FILE *f = fopen(t->log.path, "r");
  if (!f) return 0;
  char line[8192];
  int64_t n = 0;
  while (fgets(line, sizeof line, f)) n += strstr(line, "\"step\": ") != NULL;
  fclose(f);
  return n;
}

static int64_t resume_point(lv_trainer *t) {
  const char *want = t->cfg.checkpoint.resume;
  if (!want[0]) {
    /* A fresh run would mix its checkpoints, `latest` record and metrics with the other run's, and
     * rotation would then delete one run's files: refuse, whatever the user meant. */
    char names[1][LV_CKPT_NAME_MAX];
    int64_t steps[1];
    if (lv_ckpt_list(t->cfg.run.dir, names, steps, 1) > 0)
      DIE_INPUT_ALL("run.dir: %s already holds the checkpoints of a run (newest: %s, step %lld): set "
                    "checkpoint.resume=auto to continue it, or choose another run.dir", t->cfg.run.dir, names[0],
                    (long long)steps[0]);
    int64_t lines = metric_lines(t); /* an earlier run that died before its first checkpoint */
    CHECK_INPUT_ALL(lines > 0, "run.dir: %s already holds %lld metric lines of a run that made no checkpoint: set "
                    "checkpoint.resume=auto to start it again (its lines are then replaced), or choose another "
                    "run.dir", t->log.path, (long long)lines);
    return 0;
  }
  char path[LV_PATH_MAX];
  if (!strcmp(want, "auto")) {
    int found = lv_ckpt_find_resumable(t->cfg.run.dir, path, sizeof path);
    if (found == 1) {
      int64_t lines = metric_lines(t);
      if (lines > 0) { /* a fresh start must not mix with the lines of an attempt that left no checkpoint */
        trim_metrics(t, 0);
        log_info("resume auto: no checkpoint in %s, starting fresh; dropped %lld metric lines of an earlier "
                 "attempt that made no checkpoint", t->cfg.run.dir, (long long)lines);
      } else {
        log_info("resume auto: no checkpoint in %s, starting fresh", t->cfg.run.dir);
      }
      return 0;
    }
    /* Starting fresh would later rotate the damaged files away: the user decides instead. */
    if (found == 2)
      DIE_INPUT_ALL("checkpoint.resume=auto: %s has checkpoints but none is intact (see the warnings above); "
                    "move them away to start fresh, or resume from a file", t->cfg.run.dir);
  } else {
    snprintf(path, sizeof path, "%s", want);
  }
  /* The config first: a shape change is reported by its keys, not as a tensor mismatch. */
  char *yaml = lv_model_read_config(path);
  if (yaml) {
    check_compatible(t, path, yaml);
    free(yaml);
  }
  lv_ckpt_meta meta;
  memset(&meta, 0, sizeof meta);
  char err[1024];
  int bad = lv_ckpt_read(path, &t->lay, t->params, t->state, t->opt.m, t->opt.v, t->opt.shard, t->opt.shard_off, t->opt.n_shard, &meta,
                         err, sizeof err);
  if (bad) DIE_INPUT_ALL("checkpoint.resume: %s", err); /* lv_ckpt_read: every rank has the same verdict */
  free((void *)meta.config_yaml);
  if (meta.seed != (uint64_t)t->cfg.run.seed)
    DIE_INPUT_ALL("run.seed: %s was written with seed %llu, the config says %lld (the data order and dropout "
                  "would change)", path, (unsigned long long)meta.seed, (long long)t->cfg.run.seed);
  /* Continuing past train.steps would save later parameters under an earlier step's name. */
  if (meta.step > t->cfg.train.steps)
    DIE_INPUT_ALL("train.steps: %lld is below the step %lld of %s: nothing to train, and checkpoints would be "
                  "mislabelled (raise train.steps, or evaluate that checkpoint's model)", (long long)t->cfg.train.steps,
                  (long long)meta.step, path);
  /* The data must be the data the checkpoint trained on (its path may differ: sizes and digests). */
  char now[sizeof meta.data_identity];
  lv_dataset_identity(t->train.ds, now, sizeof now);
  if (meta.data_identity[0] && strcmp(meta.data_identity, now)) {
    if (!t->cfg.data.allow_change)
      DIE_INPUT_ALL("data.train: %s is not the data %s was trained on (then: %s; now: %s): set data.allow_change=true "
                    "if the change is intended", t->cfg.data.train, path, meta.data_identity, now);
    log_warn("data.train: %s differs from the data %s was trained on (then: %s; now: %s): continuing "
             "(data.allow_change)", t->cfg.data.train, path, meta.data_identity, now);
  }
  t->order.samples_seen = meta.samples_seen;
  t->restart_count = meta.restart_count + 1;
  lv_model_set_codebooks(t->model, t->state);
  trim_metrics(t, meta.step);
  log_info("resumed from %s: step %lld, %lld samples seen, written by %d rank(s)%s; restart %lld", path,
           (long long)meta.step, (long long)meta.samples_seen, meta.world_size, meta.zero ? " with ZeRO-1" : "",
           (long long)t->restart_count);
  return meta.step;
}

int64_t trainer_resume(lv_trainer *t) {
  int64_t step = resume_point(t);
  char err[LV_PATH_MAX + 256];
  if (lv_ckpt_check_targets(t->cfg.run.dir, step, t->cfg.train.steps, err, sizeof err)) /* fail now, not then */
    DIE_INPUT_ALL("run.dir: %s", err);
  const char *models[2] = {"model_final.h5", step == 0 && t->cfg.checkpoint.save_initial ? "model_step0.h5" : NULL};
  for (int i = 0; i < 2 && models[i]; i++) { /* the model files this run will write, likewise */
    char path[LV_PATH_MAX];
    struct stat st;
    snprintf(path, sizeof path, "%s/%s", t->cfg.run.dir, models[i]);
    if (lstat(path, &st) == 0 && !S_ISREG(st.st_mode))
      DIE_INPUT_ALL("run.dir: %s is not a regular file, and this run will write its model there: move it away", path);
  }
  return step;
}

void trainer_checkpoint(lv_trainer *t, int64_t step) {
  char path[LV_PATH_MAX];
  watchdog_phase(LV_PHASE_CHECKPOINT, (long long)step);
  lv_ckpt_path(path, sizeof path, t->cfg.run.dir, step);
  lv_ckpt_meta meta = {step, t->order.samples_seen, (uint64_t)t->cfg.run.seed, t->world, (int)t->cfg.dist.zero,
                       t->restart_count, t->config_yaml, ""};
  lv_dataset_identity(t->train.ds, meta.data_identity, sizeof meta.data_identity);
  double t0 = lv_now_s();
  lv_ckpt_write(path, &t->lay, t->params, t->state, t->opt.m, t->opt.v, t->opt.shard, t->opt.shard_off, t->opt.n_shard, &meta);
  if (dist_is_root()) lv_ckpt_rotate(t->cfg.run.dir, t->cfg.checkpoint.keep, t->cfg.checkpoint.keep_every);
  log_info("checkpoint %s saved (step %lld, %.2f s)", path, (long long)step, lv_now_s() - t0);
}
