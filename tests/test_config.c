/* Config system: key table, defaults, YAML loading, overrides, every error class with its exact
 * `file:line:col: key: problem` text, print -> load round trip, validation, diff, configs/tiny.yaml
 * and docs/config.md kept in step with the table; the size keys' limits are the model layout's. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "io/config.h"
#include "tests/test_util.h"

/* ---- capturing the error stream ----------------------------------------------------------------- */

typedef struct {
  char *buf;
  size_t len;
  FILE *f;
} capture;

static FILE *cap_open(capture *c) {
  c->buf = NULL;
  c->len = 0;
  c->f = open_memstream(&c->buf, &c->len);
  if (!c->f) { perror("open_memstream"); exit(1); }
  return c->f;
}

/* The captured text (caller frees). */
static char *cap_close(capture *c) {
  fclose(c->f);
  return c->buf;
}

/* Load `yaml` as source "test.yaml" on top of defaults; returns the error count, *msgs the text. */
static int load_yaml(lv_config *cfg, const char *yaml, char **msgs) {
  capture c;
  lv_config_defaults(cfg);
  int n = lv_config_load_string(cfg, yaml, strlen(yaml), "test.yaml", cap_open(&c));
  *msgs = cap_close(&c);
  return n;
}

#define EXPECT_STR(got, want) do { const char *g_ = (got), *w_ = (want); \
    EXPECT(g_ && !strcmp(g_, w_), "\n--- got:\n%s\n--- want:\n%s", g_ ? g_ : "(null)", w_); } while (0)

/* ---- the table ---------------------------------------------------------------------------------- */

/* Every key of the issues, exactly these names (train.init_from came with fine-tuning). */
static const char *const required[] = {
    "model.mode", "model.d_model", "model.z_dim", "model.v_dim", "model.ema_dim", "model.codebook_size",
    "model.chunk_size", "model.ffn_dim", "model.n_layers", "model.prenorm", "model.norm", "model.dropout",
    "model.hidden_dropout", "model.tie_embeddings", "model.commit_weight", "model.codebook_decay",
    "model.far_attention", "model.vocab_size", "model.n_classes", "model.precision",
    "data.train", "data.val", "data.test", "data.seq_len", "data.truncate", "data.split_train",
    "data.split_val", "data.split_test", "data.cache_mb", "data.verify", "data.allow_change",
    "train.batch_size", "train.micro_batch", "train.steps", "train.lr", "train.min_lr", "train.warmup",
    "train.schedule", "train.weight_decay", "train.clip", "train.eval_every", "train.eval_batches",
    "train.nonfinite", "train.threads", "train.init_from",
    "checkpoint.every", "checkpoint.keep", "checkpoint.keep_every", "checkpoint.resume",
    "checkpoint.save_initial",
    "dist.bucket_mb", "dist.zero", "dist.world_size", "dist.check_every", "dist.comm_thread", "dist.timeout_s",
    "log.every", "log.metrics", "log.progress",
    "run.dir", "run.seed", "run.name", "run.lock_stale_s",
};
#define N_REQUIRED (sizeof required / sizeof required[0])

static const char *const shape_keys[] = {
    "model.mode", "model.d_model", "model.z_dim", "model.v_dim", "model.ema_dim", "model.codebook_size",
    "model.chunk_size", "model.ffn_dim", "model.n_layers", "model.prenorm", "model.norm",
    "model.tie_embeddings", "model.vocab_size", "model.n_classes",
};

static void test_table(void) {
  size_t n;
  const lv_key *keys = lv_config_keys(&n);
  EXPECT(n == N_REQUIRED, "table has %zu keys, the issue lists %zu", n, N_REQUIRED);
  for (size_t i = 0; i < N_REQUIRED; i++) EXPECT(lv_config_find_key(required[i]), "missing key %s", required[i]);
  int n_shape = 0;
  for (size_t i = 0; i < n; i++) {
    EXPECT(lv_config_find_key(keys[i].name) == &keys[i], "%s: duplicate name", keys[i].name);
    n_shape += (keys[i].flags & LV_KEY_SHAPE) != 0;
  }
  EXPECT(n_shape == (int)(sizeof shape_keys / sizeof shape_keys[0]), "%d shape keys", n_shape);
  for (size_t i = 0; i < sizeof shape_keys / sizeof shape_keys[0]; i++) {
    const lv_key *k = lv_config_find_key(shape_keys[i]);
    EXPECT(k && (k->flags & LV_KEY_SHAPE), "%s should be a shape key", shape_keys[i]);
  }
  EXPECT(lv_config_find_key("model") == NULL && lv_config_find_key("model.") == NULL, "sections are not keys");
}

static void test_defaults(void) {
  lv_config c;
  lv_config_defaults(&c);
  EXPECT(c.model.mode == LV_MODE_ENCODER && c.model.d_model == 128 && c.model.z_dim == 64, "model dims");
  EXPECT(c.model.v_dim == 256 && c.model.ema_dim == 16 && c.model.codebook_size == 64, "model dims");
  EXPECT(c.model.chunk_size == 128 && c.model.ffn_dim == 0 && c.model.n_layers == 2, "model dims");
  EXPECT(c.model.prenorm && c.model.norm == NORM_LAYERNORM && c.model.tie_embeddings, "model flags");
  EXPECT(c.model.dropout == 0 && c.model.hidden_dropout == 0 && c.model.far_attention, "model dropout");
  EXPECT(c.model.commit_weight == 1e-4 && c.model.codebook_decay == 0.99, "model vq");
  EXPECT(c.model.vocab_size == 0 && c.model.n_classes == 0, "from dataset");
  EXPECT(!strcmp(c.data.train, "") && !strcmp(c.data.val, "") && !strcmp(c.data.test, ""), "data paths");
  EXPECT(c.data.seq_len == 1024 && !c.data.truncate && c.data.cache_mb == 64, "data sizes");
  EXPECT(!strcmp(c.data.split_train, "train") && !strcmp(c.data.split_val, "val") &&
         !strcmp(c.data.split_test, "test"), "splits");
  EXPECT(c.train.batch_size == 32 && c.train.micro_batch == 1 && c.train.steps == 1000, "train sizes");
  EXPECT(c.train.lr == 1e-3 && c.train.min_lr == 0 && c.train.warmup == 100, "lr");
  EXPECT(c.train.schedule == LV_SCHEDULE_LINEAR && c.train.weight_decay == 0.01 && c.train.clip == 1.0, "opt");
  EXPECT(c.train.eval_every == 200 && c.train.eval_batches == 0, "eval");
  EXPECT(c.train.nonfinite == LV_NONFINITE_STOP && c.train.threads == 0, "nonfinite, threads");
  EXPECT(c.checkpoint.every == 500 && c.checkpoint.keep == 3 && c.checkpoint.keep_every == 0, "ckpt");
  EXPECT(!strcmp(c.checkpoint.resume, "") && c.checkpoint.save_initial, "ckpt resume");
  EXPECT(c.dist.bucket_mb == 25 && c.dist.zero == 0 && c.dist.world_size == 0, "dist");
  EXPECT(c.dist.check_every == 100 && c.dist.comm_thread, "dist");
  EXPECT(c.log.every == 10 && !strcmp(c.log.metrics, "") && c.log.progress == LV_PROGRESS_AUTO, "log");
  EXPECT(!strcmp(c.run.dir, "runs/default") && c.run.seed == 1234 && !strcmp(c.run.name, ""), "run");
  EXPECT(c.run.lock_stale_s == 600, "run.lock_stale_s");
  capture cap;
  EXPECT(lv_config_validate(&c, cap_open(&cap)) == 0, "defaults validate");
  free(cap_close(&cap));
}

/* ---- loading ------------------------------------------------------------------------------------ */

/* A section given twice would silently merge in many YAML readers; here it is an error. */
static void test_duplicate_section(void) {
  lv_config c;
  char *msgs;
  int n = load_yaml(&c, "model:\n  d_model: 8\ntrain:\n  lr: 0.5\nmodel:\n  z_dim: 4\n", &msgs);
  EXPECT(n == 1, "%d errors", n);
  EXPECT_STR(msgs, "test.yaml:5:1: model: duplicate section (first at line 1)\n");
  EXPECT(c.model.d_model == 8 && c.model.z_dim == 64 && c.train.lr == 0.5, "first section kept");
  free(msgs);
}

static void test_load_values(void) {
  const char *yaml =
      "model:\n  mode: decoder\n  d_model: 96\n  norm: rmsnorm\n  prenorm: false\n  dropout: 0.25\n"
      "  ffn_dim: 300\n  codebook_decay: 0.5\n  vocab_size: 259\n"
      "data:\n  train: \"/scratch/set/*.h5\"\n  val: 'val file.h5'\n  seq_len: 0\n  truncate: true\n"
      "  split_val: valid\n"
      "train: {batch_size: 64, micro_batch: 4, lr: 3e-4, schedule: cosine, nonfinite: skip, clip: -1}\n"
      "checkpoint:\n  every: 0\n  resume: auto\n  save_initial: false\n"
      "dist:\n  bucket_mb: 0.5\n  zero: 1\n  comm_thread: False\n"
      "log:\n  progress: off\n  metrics: m.jsonl\n"
      "run:\n  dir: /tmp/run one\n  seed: 0\n  name:\n";
  lv_config c;
  char *msgs;
  int n = load_yaml(&c, yaml, &msgs);
  EXPECT(n == 0, "errors %d: %s", n, msgs);
  free(msgs);
  EXPECT(c.model.mode == LV_MODE_DECODER && c.model.d_model == 96 && c.model.norm == NORM_RMSNORM, "model");
  EXPECT(!c.model.prenorm && c.model.dropout == 0.25 && c.model.ffn_dim == 300, "model");
  EXPECT(c.model.codebook_decay == 0.5 && c.model.vocab_size == 259, "model");
  EXPECT(c.model.z_dim == 64, "unlisted key keeps its default");
  EXPECT(!strcmp(c.data.train, "/scratch/set/*.h5") && !strcmp(c.data.val, "val file.h5"), "data paths");
  EXPECT(c.data.seq_len == 0 && c.data.truncate && !strcmp(c.data.split_val, "valid"), "data");
  EXPECT(c.train.batch_size == 64 && c.train.micro_batch == 4 && c.train.lr == 3e-4, "flow mapping");
  EXPECT(c.train.schedule == LV_SCHEDULE_COSINE && c.train.nonfinite == LV_NONFINITE_SKIP, "enums");
  EXPECT(c.train.clip == -1, "negative clip");
  EXPECT(c.checkpoint.every == 0 && !strcmp(c.checkpoint.resume, "auto") && !c.checkpoint.save_initial, "ckpt");
  EXPECT(c.dist.bucket_mb == 0.5 && c.dist.zero == 1 && !c.dist.comm_thread, "dist");
  EXPECT(c.log.progress == LV_PROGRESS_OFF && !strcmp(c.log.metrics, "m.jsonl"), "log");
  EXPECT(!strcmp(c.run.dir, "/tmp/run one") && c.run.seed == 0 && !strcmp(c.run.name, ""), "run (null name)");
}

static void test_load_empty(void) {
  const char *empties[] = {"", "# only a comment\n", "---\n", "~\n", "model:\n", "model:\ntrain: ~\n"};
  for (size_t i = 0; i < sizeof empties / sizeof empties[0]; i++) {
    lv_config c, d;
    char *msgs;
    lv_config_defaults(&d);
    int n = load_yaml(&c, empties[i], &msgs);
    EXPECT(n == 0 && lv_config_diff(&c, &d, 0, NULL, 0) == 0, "empty input %zu: %d errors %s", i, n, msgs);
    free(msgs);
  }
}

/* Every error class the loader knows, all in one file, all reported, in file order. */
static void test_load_errors(void) {
  const char *yaml =
      "model:\n"                    /* 1 */
      "  d_model: abc\n"            /* 2 */
      "  prenorm: maybe\n"          /* 3 */
      "  d_modle: 12\n"             /* 4 */
      "  dropout: 1.0\n"            /* 5 */
      "  norm: batchnorm\n"         /* 6 */
      "  z_dim: [1, 2]\n"           /* 7 */
      "  z_dim: 8\n"                /* 8 */
      "train: 5\n"                  /* 9 */
      "trian:\n"                    /* 10 */
      "  lr: 1\n"                   /* 11 */
      "data:\n"                     /* 12 */
      "  seq_len: -1\n"             /* 13 */
      "  train: \"a\\0b\"\n"        /* 14 */
      "  cache_mb: 99999999999999999999\n" /* 15 */
      "run:\n"                      /* 16 */
      "  seed:\n"                   /* 17 */
      "  name: {a: 1}\n"            /* 18 */
      "  dir: &d x\n"               /* 19 */
      "  dir2: *d\n"                /* 20 */
      "dist:\n"                     /* 21 */
      "  bucket_mb: 0\n"            /* 22 */
      "  zero: .inf\n"              /* 23 */
      "  world_size: 1.5\n"         /* 24 */
      "log:\n"                      /* 25 */
      "  every: 1e3\n"              /* 26 */
      "  progress: ON\n"            /* 27 */
      "  metrics: [a]\n"           /* 28 */
      "model: {prenorm: , norm: ~}\n" /* 29 */
      "? [complex]\n"               /* 30 */
      ": 1\n";                      /* 31 */
  const char *want =
      "test.yaml:2:12: model.d_model: 'abc' is not an integer\n"
      "test.yaml:3:12: model.prenorm: 'maybe' is not a boolean (true or false)\n"
      "test.yaml:4:3: model.d_modle: unknown key (did you mean model.d_model?)\n"
      "test.yaml:5:12: model.dropout: '1.0' is out of range: must be in [0, 1)\n"
      "test.yaml:6:9: model.norm: 'batchnorm' is not one of: layernorm, rmsnorm, scalenorm\n"
      "test.yaml:7:10: model.z_dim: expected a value, got a list\n"
      "test.yaml:8:3: model.z_dim: duplicate key (first set at line 7)\n"
      "test.yaml:9:8: train: expected a mapping of keys (indented `key: value` lines), got a scalar\n"
      "test.yaml:10:1: trian: unknown section (did you mean train?)\n"
      "test.yaml:13:12: data.seq_len: '-1' is out of range: must be in [0, 16777216]\n"
      "test.yaml:14:10: data.train: value contains a NUL character\n"
      "test.yaml:15:13: data.cache_mb: '99999999999999999999' does not fit in 64 bits\n"
      "test.yaml:17:8: run.seed: missing value (expected an integer)\n"
      "test.yaml:18:9: run.name: expected a value, got a mapping\n"
      "test.yaml:20:3: run.dir2: unknown key (did you mean run.dir?)\n"
      "test.yaml:22:14: dist.bucket_mb: '0' is out of range: must be in (0, 65536]\n"
      "test.yaml:23:9: dist.zero: '.inf' is not an integer\n"
      "test.yaml:24:15: dist.world_size: '1.5' is not an integer\n"
      "test.yaml:26:10: log.every: '1e3' is not an integer\n"
      "test.yaml:27:13: log.progress: 'ON' is not one of: auto, on, off\n"
      "test.yaml:28:12: log.metrics: expected a value, got a list\n"
      "test.yaml:29:1: model: duplicate section (first at line 1)\n"
      "test.yaml:30:3: section names must be plain names, got a list\n";
  lv_config c;
  char *msgs;
  int n = load_yaml(&c, yaml, &msgs);
  EXPECT(n == 23, "error count %d", n);
  EXPECT_STR(msgs, want);
  free(msgs);
  /* Values that failed keep what they had; good values in the same file still load. */
  EXPECT(c.model.d_model == 128 && c.model.dropout == 0 && !strcmp(c.run.dir, "x"), "partial load");
}

static void test_syntax_errors(void) {
  struct { const char *yaml, *want; int n; } cases[] = {
      /* Problems before the syntax error are reported too. */
      {"model:\n  d_model: abc\n  z_dim: 8\n bad: [\n",
       "test.yaml:2:12: model.d_model: 'abc' is not an integer\n"
       "test.yaml:4:2: YAML syntax error: did not find expected key (while parsing a block mapping at line 1 column 1)\n", 2},
      {"model:\n\td_model: 5\n",
       "test.yaml:2:1: YAML syntax error: found character that cannot start any token (while scanning for the next token at line 2 column 1)\n", 1},
      {"model:\n  mode: \"encoder\n", "", 1},
      {"model.d_model: 5\n",
       "test.yaml:1:1: model.d_model: unknown section (in YAML write `model:` and under it `  d_model: ...`)\n", 1},
      {"hello\n", "test.yaml:1:1: a config is a mapping of sections (`model:`, `train:`, ...), got a scalar\n", 1},
      {"- model\n", "test.yaml:1:1: a config is a mapping of sections (`model:`, `train:`, ...), got a list\n", 1},
      {"model:\n  d_model: 8\n---\nmodel:\n  d_model: 9\n",
       "test.yaml:3:1: more than one YAML document (`---`); a config is one document\n", 1},
      {"model:\n  mode: \xff\n", "test.yaml:2:9: YAML syntax error: invalid leading UTF-8 octet\n", 1},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    lv_config c;
    char *msgs;
    int n = load_yaml(&c, cases[i].yaml, &msgs);
    EXPECT(n == cases[i].n, "case %zu: %d errors: %s", i, n, msgs);
    if (cases[i].want[0]) EXPECT_STR(msgs, cases[i].want);
    else EXPECT(!strncmp(msgs, "test.yaml:", 10) && strstr(msgs, "YAML syntax error"), "case %zu: %s", i, msgs);
    if (strstr(cases[i].yaml, "---")) EXPECT(c.model.d_model == 8, "first document loaded");
    free(msgs);
  }
}

static void test_load_file(void) {
  char dir[] = "/tmp/test_config_XXXXXX", path[128];
  EXPECT(mkdtemp(dir) != NULL, "mkdtemp");
  snprintf(path, sizeof path, "%s/bad.yaml", dir);
  FILE *f = fopen(path, "w");
  fputs("model:\n  d_model: 0\n", f);
  fclose(f);
  lv_config c;
  lv_config_defaults(&c);
  capture cap;
  int n = lv_config_load_file(&c, path, cap_open(&cap));
  char *msgs = cap_close(&cap), want[512];
  snprintf(want, sizeof want, "%s:2:12: model.d_model: '0' is out of range: must be in [1, 65536]\n", path);
  EXPECT(n == 1, "%d errors", n);
  EXPECT_STR(msgs, want);
  free(msgs);
  remove(path);
  n = lv_config_load_file(&c, path, cap_open(&cap));
  msgs = cap_close(&cap);
  snprintf(want, sizeof want, "%s: cannot open: No such file or directory\n", path);
  EXPECT(n == 1, "%d errors", n);
  EXPECT_STR(msgs, want);
  free(msgs);
  n = lv_config_load_file(&c, dir, cap_open(&cap)); /* a directory opens but does not read */
  msgs = cap_close(&cap);
  snprintf(want, sizeof want, "%s: cannot read: Is a directory\n", dir);
  EXPECT(n == 1, "%d errors", n);
  EXPECT_STR(msgs, want);
  free(msgs);
  rmdir(dir);
  /* err = NULL: counted, not printed. */
  EXPECT(lv_config_load_string(&c, "x: 1\n", 5, "s", NULL) == 1, "silent count");
  /* A checkpoint's YAML names its source. */
  n = lv_config_load_string(&c, "run:\n  seed: -3\n", 16, "<checkpoint ck.h5>", cap_open(&cap));
  msgs = cap_close(&cap);
  EXPECT_STR(msgs, "<checkpoint ck.h5>:2:9: run.seed: '-3' is out of range: must be >= 0\n");
  free(msgs);
}

/* ---- overrides ---------------------------------------------------------------------------------- */

static void test_overrides(void) {
  lv_config c;
  lv_config_defaults(&c);
  char *good[] = {"train.lr=3e-4", "model.prenorm=false", "run.name=my run: \"x\" # y", "data.val=",
                  "model.mode=decoder", "train.lr=2.5e-4"};
  EXPECT(lv_config_apply_overrides(&c, 6, good, stderr) == 0, "good overrides");
  EXPECT(c.train.lr == 2.5e-4 && !c.model.prenorm && c.model.mode == LV_MODE_DECODER, "typed values");
  EXPECT(!strcmp(c.run.name, "my run: \"x\" # y") && !strcmp(c.data.val, ""), "strings are literal");

  char *bad[] = {"train.lr=abc", "train.lrr=1", "trainlr", "=5", "model.dropout=1", "train.seed=3",
                 "model.prenorm=yes", "train.steps=", "model.d_model=64", "run.name=\xc3\x28",
                 "model.prenorm=", "model.norm="};
  capture cap;
  int n = lv_config_apply_overrides(&c, 12, bad, cap_open(&cap));
  char *msgs = cap_close(&cap);
  EXPECT(n == 11, "%d errors", n);
  EXPECT_STR(msgs,
             "override 'train.lr=abc': train.lr: 'abc' is not a number\n"
             "override 'train.lrr=1': train.lrr: unknown key (did you mean train.lr?)\n"
             "override 'trainlr': expected section.key=value\n"
             "override '=5': expected section.key=value\n"
             "override 'model.dropout=1': model.dropout: '1' is out of range: must be in [0, 1)\n"
             "override 'train.seed=3': train.seed: unknown key (did you mean run.seed?)\n"
             "override 'model.prenorm=yes': model.prenorm: 'yes' is not a boolean (true or false)\n"
             "override 'train.steps=': train.steps: missing value (expected an integer)\n"
             "override 'run.name=\xc3\x28': run.name: value is not valid UTF-8\n"
             "override 'model.prenorm=': model.prenorm: missing value (expected true or false)\n"
             "override 'model.norm=': model.norm: missing value (expected one of: layernorm, rmsnorm, scalenorm)\n");
  free(msgs);
  EXPECT(c.train.lr == 2.5e-4 && c.model.dropout == 0 && c.train.steps == 1000, "failed overrides change nothing");
  EXPECT(c.model.d_model == 64, "the good override among bad ones applies");

  /* Overrides come after the file. */
  lv_config_defaults(&c);
  const char *yaml = "train:\n  lr: 0.5\n  steps: 7\n";
  EXPECT(lv_config_load_string(&c, yaml, strlen(yaml), "f", stderr) == 0, "load");
  EXPECT(lv_config_apply_override(&c, "train.lr=0.25", stderr) == 0, "override");
  EXPECT(c.train.lr == 0.25 && c.train.steps == 7, "precedence");

  /* A string longer than its field is refused, at the limit accepted. */
  static char big[LV_CONFIG_NAME_MAX + 16];
  memset(big, 'a', sizeof big - 1);
  memcpy(big, "run.name=", 9);
  big[9 + LV_CONFIG_NAME_MAX - 1] = '\0';
  EXPECT(lv_config_apply_override(&c, big, NULL) == 0, "255 bytes fit");
  big[9 + LV_CONFIG_NAME_MAX - 1] = 'a';
  EXPECT(lv_config_apply_override(&c, big, NULL) == 1, "256 bytes do not");
}

/* ---- print -> load round trip ------------------------------------------------------------------- */

/* A non-default value for every key: doubles that need 17 digits, extremes, and strings YAML would
 * misread if printed plainly. */
static const char *const unusual[][2] = {
    {"model.mode", "decoder"}, {"model.d_model", "4096"}, {"model.z_dim", "1"}, {"model.v_dim", "9"},
    {"model.ema_dim", "2"}, {"model.codebook_size", "1024"}, {"model.chunk_size", "64"},
    {"model.ffn_dim", "11008"}, {"model.n_layers", "48"}, {"model.prenorm", "false"},
    {"model.norm", "scalenorm"}, {"model.dropout", "0.1"}, {"model.hidden_dropout", "0.30000000000000004"},
    {"model.tie_embeddings", "false"}, {"model.commit_weight", "5e-324"}, {"model.codebook_decay", "0.999"},
    {"model.far_attention", "false"}, {"model.vocab_size", "50257"}, {"model.n_classes", "16777216"}, {"model.precision", "bf16"},
    {"data.train", "/scratch/my data/shard-*.h5"}, {"data.val", "a: b # not a comment"},
    {"data.test", "quote \" backslash \\ tab\t newline\n end"}, {"data.seq_len", "4096"},
    {"data.truncate", "true"}, {"data.split_train", "null"}, {"data.split_val", "true"},
    {"data.split_test", "123"}, {"data.cache_mb", "0"}, {"data.verify", "false"}, {"data.allow_change", "true"},
    {"train.batch_size", "1"}, {"train.micro_batch", "8"}, {"train.steps", "1"}, {"train.lr", "3e-4"},
    {"train.min_lr", "1e-5"}, {"train.warmup", "0"}, {"train.schedule", "cosine"},
    {"train.weight_decay", "0.3333333333333333"}, {"train.clip", "-0.5"}, {"train.eval_every", "0"},
    {"train.eval_batches", "5"}, {"train.nonfinite", "skip"}, {"train.threads", "2"},
    {"train.init_from", "runs/a b/model_final.h5"},
    {"checkpoint.every", "1"}, {"checkpoint.keep", "1"}, {"checkpoint.keep_every", "1000"},
    {"checkpoint.resume", "\xc3\xa9 \xe4\xb8\xad NEL\xc2\x85 LS\xe2\x80\xa8 BOM\xef\xbb\xbf DEL\x7f bell\x07 cr\r"},
    {"checkpoint.save_initial", "false"},
    {"dist.bucket_mb", "65535.75"}, {"dist.zero", "1"}, {"dist.world_size", "4"}, {"dist.check_every", "0"},
    {"dist.comm_thread", "false"}, {"dist.timeout_s", "-0.25"},
    {"log.every", "1"}, {"log.metrics", "'single' {x} [y] &a *b !t %p @q `r` - s ? t | u > v"},
    {"log.progress", "off"},
    {"run.dir", "  leading and trailing spaces  "}, {"run.seed", "9223372036854775807"}, {"run.name", "---"},
    {"run.lock_stale_s", "1.5"},
};

static void test_round_trip(void) {
  size_t n_keys, n = sizeof unusual / sizeof unusual[0];
  lv_config_keys(&n_keys);
  lv_config a, b, d;
  lv_config_defaults(&a);
  lv_config_defaults(&d);
  char problem[256];
  for (size_t i = 0; i < n; i++) {
    const lv_key *k = lv_config_find_key(unusual[i][0]);
    EXPECT(k && lv_config_set_text(&a, k, unusual[i][1], problem, sizeof problem) == 0, "%s: %s", unusual[i][0],
           k ? problem : "no such key");
  }
  EXPECT(lv_config_diff(&a, &d, 0, NULL, 0) == (int)n_keys, "every key differs from its default");

  char *yaml = lv_config_to_yaml_string(&a);
  EXPECT(yaml != NULL, "to string");
  if (!yaml) return;
  lv_config_defaults(&b);
  capture cap;
  int errors = lv_config_load_string(&b, yaml, strlen(yaml), "printed", cap_open(&cap));
  char *msgs = cap_close(&cap);
  EXPECT(errors == 0, "printed config loads: %s\n%s", msgs, yaml);
  free(msgs);
  const char *names[80];
  int nd = lv_config_diff(&a, &b, 0, names, 80);
  EXPECT(nd == 0, "%d keys changed in the round trip, first %s\n%s", nd, nd ? names[0] : "", yaml);
  EXPECT(!memcmp(&a.train.lr, &b.train.lr, sizeof(double)) &&
         !memcmp(&a.model.commit_weight, &b.model.commit_weight, sizeof(double)), "bitwise doubles");
  /* Shortest exact text, not 17 digits, where it suffices. */
  EXPECT(strstr(yaml, "  lr: 0.0003\n") && strstr(yaml, "  dropout: 0.1\n") &&
         strstr(yaml, "  hidden_dropout: 0.30000000000000004\n"), "double text:\n%s", yaml);
  char *again = lv_config_to_yaml_string(&b);
  EXPECT(again && !strcmp(yaml, again), "printing is stable");
  free(again);
  free(yaml);

  /* The FILE* printer writes the same text. */
  capture out;
  lv_config_print_yaml(cap_open(&out), &d);
  char *printed = cap_close(&out), *str = lv_config_to_yaml_string(&d);
  EXPECT(str && !strcmp(printed, str), "print_yaml == to_yaml_string");
  lv_config_defaults(&b);
  b.model.d_model = 1;
  EXPECT(lv_config_load_string(&b, printed, strlen(printed), "p", stderr) == 0, "default config loads");
  EXPECT(lv_config_diff(&b, &d, 0, NULL, 0) == 0, "default round trip");
  free(printed);
  free(str);
}

/* ---- validation, build, diff -------------------------------------------------------------------- */

static void test_validate(void) {
  lv_config c;
  lv_config_defaults(&c);
  c.data.seq_len = 100;
  c.model.chunk_size = 8;
  c.train.warmup = 30;
  c.train.steps = 20;
  c.train.lr = 0.5;
  c.train.min_lr = 1;
  c.train.micro_batch = 64;
  capture cap;
  int n = lv_config_validate(&c, cap_open(&cap));
  char *msgs = cap_close(&cap);
  EXPECT(n == 4, "%d violations", n);
  EXPECT_STR(msgs,
             "data.seq_len: 100 is not a multiple of model.chunk_size (8)\n"
             "train.warmup: 30 is more than train.steps (20)\n"
             "train.min_lr: 1 is more than train.lr (0.5)\n"
             "train.micro_batch: 64 is more than train.batch_size (32)\n");
  free(msgs);
  lv_config_defaults(&c);
  c.data.seq_len = 0; /* resolved from the dataset later */
  c.dist.world_size = 16;
  c.train.micro_batch = 4;
  n = lv_config_validate(&c, cap_open(&cap));
  msgs = cap_close(&cap);
  EXPECT(n == 1, "%d violations", n);
  EXPECT_STR(msgs, "train.batch_size: 32 is less than dist.world_size * train.micro_batch (64)\n");
  free(msgs);
}

static void test_build(void) {
  char tiny[1024];
  snprintf(tiny, sizeof tiny, "%s/configs/tiny.yaml", LV_SOURCE_DIR);
  lv_config c;
  capture cap;
  char *ov[] = {"train.steps=40", "data.train=x.h5"};
  int n = lv_config_build(&c, tiny, 2, ov, cap_open(&cap));
  char *msgs = cap_close(&cap);
  EXPECT(n == 0, "%d errors: %s", n, msgs);
  free(msgs);
  EXPECT(c.train.steps == 40 && !strcmp(c.data.train, "x.h5") && c.model.d_model == 16, "file then overrides");
  /* File and override errors are counted together; validation waits for clean values. */
  char *bad[] = {"train.warmup=x", "train.steps=1"}; /* warmup 2 > steps 1, but not reported */
  n = lv_config_build(&c, "/nonexistent/c.yaml", 2, bad, cap_open(&cap));
  msgs = cap_close(&cap);
  EXPECT(n == 2, "%d errors", n);
  EXPECT_STR(msgs, "/nonexistent/c.yaml: cannot open: No such file or directory\n"
                   "override 'train.warmup=x': train.warmup: 'x' is not an integer\n");
  free(msgs);
  char *bad2[] = {"train.steps=1"};
  n = lv_config_build(&c, tiny, 1, bad2, cap_open(&cap));
  msgs = cap_close(&cap);
  EXPECT(n == 1, "%d errors", n);
  EXPECT_STR(msgs, "train.warmup: 2 is more than train.steps (1)\n");
  free(msgs);
}

static void test_tiny(void) {
  char tiny[1024];
  snprintf(tiny, sizeof tiny, "%s/configs/tiny.yaml", LV_SOURCE_DIR);
  lv_config c;
  EXPECT(lv_config_build(&c, tiny, 0, NULL, stderr) == 0, "tiny.yaml loads and validates");
  EXPECT(c.model.d_model == 16 && c.model.z_dim == 8 && c.model.v_dim == 16 && c.model.ema_dim == 4, "dims");
  EXPECT(c.model.codebook_size == 8 && c.model.chunk_size == 8 && c.model.n_layers == 2, "dims");
  EXPECT(c.data.seq_len == 32 && c.train.batch_size == 8 && c.train.steps == 20, "sizes");
}

static void test_diff(void) {
  lv_config a, b;
  lv_config_defaults(&a);
  b = a;
  EXPECT(lv_config_diff(&a, &b, 0, NULL, 0) == 0, "equal");
  b.model.d_model = 64;
  b.train.lr = 0.5;
  strcpy(b.run.name, "x");
  b.model.dropout = 0.1;
  const char *names[8];
  int n = lv_config_diff(&a, &b, 0, names, 8);
  EXPECT(n == 4 && !strcmp(names[0], "model.d_model") && !strcmp(names[1], "model.dropout") &&
         !strcmp(names[2], "train.lr") && !strcmp(names[3], "run.name"), "all: %d", n);
  n = lv_config_diff(&a, &b, LV_KEY_SHAPE, names, 8);
  EXPECT(n == 1 && !strcmp(names[0], "model.d_model"), "shape only: %d", n);
  n = lv_config_diff(&a, &b, 0, names, 1);
  EXPECT(n == 4 && !strcmp(names[0], "model.d_model"), "count beyond cap: %d", n);
  char va[64], vb[64];
  const lv_key *k = lv_config_find_key("train.lr");
  lv_config_format_value(&a, k, va, sizeof va);
  lv_config_format_value(&b, k, vb, sizeof vb);
  EXPECT(!strcmp(va, "0.001") && !strcmp(vb, "0.5"), "format %s %s", va, vb);
}

/* ---- size limits ------------------------------------------------------------------------------ */

/* Every size key has a finite maximum (the one the model layout enforces for the model's keys);
 * INT64_MAX is refused naming the limit. Before the limits, model.codebook_size=9223372036854775807
 * loaded and S x Z overflowed in lv_layout_build (UBSan at layers/params.c:34 and :40). */
static void test_size_limits(void) {
  const struct { const char *key; int64_t max; } lim[] = {
      {"model.d_model", LV_MAX_WIDTH}, {"model.z_dim", LV_MAX_WIDTH}, {"model.v_dim", LV_MAX_WIDTH},
      {"model.chunk_size", LV_MAX_WIDTH}, {"model.ema_dim", LV_MAX_EMA_DIM}, {"model.codebook_size", LV_MAX_CODEBOOK},
      {"model.ffn_dim", LV_MAX_FFN}, {"model.n_layers", LV_MAX_LAYERS}, {"model.vocab_size", LV_MAX_VOCAB},
      {"model.n_classes", LV_MAX_CLASSES}, {"data.seq_len", LV_MAX_SEQ_LEN}, {"train.batch_size", LV_MAX_BATCH},
      {"train.micro_batch", LV_MAX_BATCH}, {"train.steps", LV_MAX_STEPS}};
  lv_config c;
  lv_config_defaults(&c);
  for (size_t i = 0; i < sizeof lim / sizeof lim[0]; i++) {
    const lv_key *k = lv_config_find_key(lim[i].key);
    char text[32], problem[256] = "", want[96];
    EXPECT(k && k->max == (double)lim[i].max, "%s: table max %g, limit %lld", lim[i].key, k ? k->max : 0.0,
           (long long)lim[i].max);
    if (!k) continue;
    snprintf(text, sizeof text, "%lld", (long long)lim[i].max);
    EXPECT(lv_config_set_text(&c, k, text, problem, sizeof problem) == 0, "%s = its limit: %s", lim[i].key, problem);
    snprintf(want, sizeof want, "'9223372036854775807' is out of range: must be in [%g, %lld]", k->min,
             (long long)lim[i].max);
    EXPECT(lv_config_set_text(&c, k, "9223372036854775807", problem, sizeof problem) == 1 && !strcmp(problem, want),
           "%s = INT64_MAX: '%s', want '%s'", lim[i].key, problem, want);
  }

  /* The layout at every limit at once: no size wraps (V x D = 2^40 floats is the largest tensor). */
  lv_dims d = {0};
  d.prenorm = 1;
  d.V = LV_MAX_VOCAB, d.K = LV_MAX_CLASSES, d.D = LV_MAX_WIDTH, d.Z = LV_MAX_WIDTH, d.E = LV_MAX_WIDTH;
  d.N = LV_MAX_EMA_DIM, d.S = LV_MAX_CODEBOOK, d.C = LV_MAX_WIDTH, d.F = LV_MAX_FFN, d.n_layers = LV_MAX_LAYERS;
  lv_layout lay;
  char err[256] = "";
  EXPECT(lv_layout_build(&lay, &d, err, sizeof err) == 0, "layout at the limits: %s", err);
  const lv_tensor *emb = lv_layout_find(&lay, "embed.weight", NULL);
  EXPECT(emb && emb->numel == LV_MAX_VOCAB * LV_MAX_WIDTH, "embed numel");
  double fc = 2.0 * (double)d.D * (double)d.F * (double)d.n_layers; /* fc1 + fc2 of every layer */
  EXPECT((double)lay.n_param_floats > (double)d.V * (double)d.D + fc && lay.n_param_floats < ((size_t)1 << 46),
         "param floats %zu", lay.n_param_floats);
  lv_layout_free(&lay);
  /* One past a limit: an error naming the key and the limit (the layout also gets sizes from datasets
   * and from bench, which the table does not see). */
  const struct { int64_t *field; int64_t max; const char *want; } past[] = {
      {&d.D, LV_MAX_WIDTH, "model.d_model: 65537 is more than the limit 65536"},
      {&d.S, LV_MAX_CODEBOOK, "model.codebook_size: 1048577 is more than the limit 1048576"},
      {&d.V, LV_MAX_VOCAB, "model.vocab_size (0: the dataset's vocab_size): 16777217 is more than the limit 16777216"},
      {&d.K, LV_MAX_CLASSES, "model.n_classes (0: the dataset's n_classes): 16777217 is more than the limit 16777216"}};
  for (size_t i = 0; i < sizeof past / sizeof past[0]; i++) {
    *past[i].field = past[i].max + 1;
    EXPECT(lv_layout_build(&lay, &d, err, sizeof err) == 1 && !strcmp(err, past[i].want), "'%s', want '%s'", err,
           past[i].want);
    *past[i].field = past[i].max;
  }
  d.S = INT64_MAX; /* the reproduction: refused by the limit, not computed */
  EXPECT(lv_layout_build(&lay, &d, err, sizeof err) == 1 && strstr(err, "model.codebook_size"), "S = INT64_MAX: %s",
         err);
}

/* ---- help and docs ------------------------------------------------------------------------------ */

static void test_help_and_docs(void) {
  capture cap;
  lv_config_help(cap_open(&cap));
  char *help = cap_close(&cap);
  size_t n;
  const lv_key *keys = lv_config_keys(&n);
  for (size_t i = 0; i < n; i++) {
    char line[128];
    snprintf(line, sizeof line, "  %-24s ", keys[i].name);
    EXPECT(strstr(help, line), "help lists %s", keys[i].name);
  }
  EXPECT(strstr(help, "  model.dropout            double in [0, 1), default 0\n"), "range text:\n%s", help);
  EXPECT(strstr(help, "  model.norm               enum layernorm|rmsnorm|scalenorm, default layernorm [shape]\n"),
         "enum text");
  EXPECT(strstr(help, "  run.dir                  string, default \"runs/default\"\n"), "string text");

  /* docs/config.md carries the help text verbatim: every help line must be in it. */
  char path[1024];
  snprintf(path, sizeof path, "%s/docs/config.md", LV_SOURCE_DIR);
  FILE *f = fopen(path, "r");
  EXPECT(f != NULL, "open %s", path);
  static char docs[1 << 17];
  size_t len = f ? fread(docs, 1, sizeof docs - 1, f) : 0;
  docs[len] = '\0';
  if (f) fclose(f);
  int missing = 0;
  const char *first = NULL;
  for (char *line = strtok(help, "\n"); line; line = strtok(NULL, "\n"))
    if (!strstr(docs, line)) missing++, first = first ? first : line;
  EXPECT(missing == 0, "docs/config.md lacks %d lines of lv_config_help, first '%s' (regenerate its key table)",
         missing, first ? first : "");
  free(help);
}

int main(void) {
  test_table();
  test_defaults();
  test_load_values();
  test_load_empty();
  test_duplicate_section();
  test_load_errors();
  test_syntax_errors();
  test_load_file();
  test_overrides();
  test_round_trip();
  test_validate();
  test_build();
  test_tiny();
  test_diff();
  test_help_and_docs();
  test_size_limits();
  return tu_finish("test_config");
}
