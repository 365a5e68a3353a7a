/* The run configuration: one typed struct, one table of keys (io/config_keys.c) driving the YAML
 * loader, `key=value` overrides, the YAML printer, --help and the resume-time diff.
 *
 * Precedence: lv_config_defaults, then a YAML file (or the YAML text stored in a checkpoint), then
 * overrides, then lv_config_validate for cross-field rules. Each step reports ALL the problems it
 * finds (not only the first) as one line each on `err`:
 *     file:line:col: key: problem          (YAML file or string; 1-based line and column)
 *     override 'key=value': key: problem   (command-line override)
 *     key: problem                         (lv_config_validate)
 * and returns how many it found. `err` may be NULL (count only), so non-root ranks can stay quiet;
 * the caller decides to exit with LV_EXIT_USAGE (trainer/check.h).
 *
 * The struct holds no pointers (strings are fixed arrays), so it can be copied with `=`, compared
 * key by key, and broadcast as bytes (dist_bcast_from). Field names are the key names: the key
 * `train.lr` is `cfg.train.lr`.
 */
#ifndef LONGVQ_CONFIG_H
#define LONGVQ_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "layers/params.h" /* lv_mode, norm_kind */

/* Room for a path or glob including the terminating NUL; longer values are an error. */
#define LV_CONFIG_PATH_MAX 4096
/* Room for a path the program derives from a given one: a directory plus one of our file names
 * (ckpt_00000012.h5, metrics.jsonl, ...), a shard suffix, or ".tmp". */
#define LV_PATH_MAX (LV_CONFIG_PATH_MAX + 256)
/* Room for a short name (split names, run name). */
#define LV_CONFIG_NAME_MAX 256
/* Maxima of the trainer's size keys (the model's are in layers/params.h): far above any run that fits
 * in memory, and small enough that their products (steps x batch samples seen, the micro-batch's
 * B x L tokens times the model's widths) stay far from 2^63. */
#define LV_MAX_SEQ_LEN ((int64_t)1 << 24) /* data.seq_len */
#define LV_MAX_BATCH ((int64_t)1 << 24)   /* train.batch_size, train.micro_batch */
#define LV_MAX_STEPS ((int64_t)1 << 32)   /* train.steps */
/* Input limits (docs/config.md "Input limits"); beyond one the loader reports the limit with the
 * place (file:line:col, or the override) and stops. A config is a few KB nested 2 deep (sections,
 * keys); the largest config the printer can write (every string key full of escaped characters)
 * is about 120 KB, so checkpoints' stored configs always load back. libyaml's scanner costs
 * O(depth) per token, so unbounded nesting is quadratic (600 KB of `[`: minutes); the depth is
 * checked on each event, before the scanner gets far. Overrides are not YAML (no nesting); their
 * limit is a key name plus the longest value any key accepts. */
#define LV_CONFIG_MAX_BYTES ((size_t)1 << 20) /* a YAML file or stored config text */
#define LV_CONFIG_MAX_DEPTH 64                /* nested mappings/lists, the root mapping being 1 */
#define LV_CONFIG_MAX_OVERRIDE 8192           /* bytes of one key=value */

/* Enum keys: the numeric values are the positions of the names in the key table's choices. */
typedef enum { LV_SCHEDULE_LINEAR = 0, LV_SCHEDULE_COSINE = 1 } lv_schedule;
typedef enum { LV_NONFINITE_STOP = 0, LV_NONFINITE_SKIP = 1 } lv_nonfinite;
typedef enum { LV_PROGRESS_AUTO = 0, LV_PROGRESS_ON = 1, LV_PROGRESS_OFF = 2 } lv_progress;
typedef enum { LV_PRECISION_F32 = 0, LV_PRECISION_BF16 = 1 } lv_precision;

/* Defaults, ranges and meanings are in the key table (lv_config_help, docs/config.md). */
typedef struct lv_config {
  struct {
    lv_mode mode;
    int64_t d_model, z_dim, v_dim, ema_dim, codebook_size, chunk_size;
    int64_t ffn_dim;              /* 0 = 2 * d_model */
    int64_t n_layers;
    bool prenorm;
    norm_kind norm;
    double dropout, hidden_dropout;
    bool tie_embeddings;
    double commit_weight, codebook_decay;
    bool far_attention;
    int64_t vocab_size, n_classes; /* 0 = from the dataset */
    lv_precision precision;       /* of the matmul-shaped products (docs/performance.md, "bf16") */
  } model;
  struct {
    char train[LV_CONFIG_PATH_MAX], val[LV_CONFIG_PATH_MAX], test[LV_CONFIG_PATH_MAX];
    int64_t seq_len;              /* 0 = dataset max length rounded up to chunk_size */
    bool truncate;
    bool verify;                  /* check the datasets' digests at run start */
    bool allow_change;            /* resume although the training data differs from the checkpoint's */
    char split_train[LV_CONFIG_NAME_MAX], split_val[LV_CONFIG_NAME_MAX], split_test[LV_CONFIG_NAME_MAX];
    int64_t cache_mb;
  } data;
  struct {
    int64_t batch_size, micro_batch, steps;
    double lr, min_lr;
    int64_t warmup;
    lv_schedule schedule;
    double weight_decay, clip;
    int64_t eval_every, eval_batches;
    lv_nonfinite nonfinite;
    int64_t threads;
    char init_from[LV_CONFIG_PATH_MAX]; /* "" = the spec init; else a model file (fine-tuning) */
  } train;
  struct {
    int64_t every, keep, keep_every;
    char resume[LV_CONFIG_PATH_MAX]; /* "" = fresh, "auto", or a checkpoint path */
    bool save_initial;
  } checkpoint;
  struct {
    double bucket_mb, timeout_s;
    int64_t zero, world_size, check_every;
    bool comm_thread;
  } dist;
  struct {
    int64_t every;
    char metrics[LV_CONFIG_PATH_MAX]; /* "" = <run.dir>/metrics.jsonl */
    lv_progress progress;
  } log;
  struct {
    char dir[LV_CONFIG_PATH_MAX];
    int64_t seed;
    char name[LV_CONFIG_NAME_MAX];
    double lock_stale_s;
  } run;
} lv_config;

/* ---- the key table ------------------------------------------------------------------------ */

typedef enum { LV_T_INT, LV_T_DOUBLE, LV_T_BOOL, LV_T_STRING, LV_T_ENUM } lv_key_type;

/* Key flags. */
enum {
  LV_KEY_SHAPE = 1u << 0,    /* changes the model's parameter set or shapes: fixed at resume */
  LV_KEY_MIN_OPEN = 1u << 1, /* range excludes `min` */
  LV_KEY_MAX_OPEN = 1u << 2, /* range excludes `max` */
};

typedef struct {
  const char *name;           /* dotted, e.g. "model.d_model" */
  lv_key_type type;
  size_t offset;              /* offsetof(lv_config, ...) */
  size_t size;                /* sizeof the field (string capacity including the NUL) */
  const char *def;            /* default, as the text an override would give */
  double min, max;            /* numbers: allowed range (+-INFINITY = unbounded) */
  const char *const *choices; /* enum: NULL-terminated names, index = stored value */
  unsigned flags;             /* LV_KEY_* */
  const char *help;
} lv_key;

/* Every key, in section order; *n receives the count. */
const lv_key *lv_config_keys(size_t *n);
/* The key with this dotted name, or NULL. */
const lv_key *lv_config_find_key(const char *name);

/* ---- building a config -------------------------------------------------------------------- */

/* Every key at its default. */
void lv_config_defaults(lv_config *cfg);
/* Apply the YAML file at `path` on top of cfg. Returns the number of errors (0 = ok). */
int lv_config_load_file(lv_config *cfg, const char *path, FILE *err);
/* Apply YAML text (len bytes, NUL not needed) on top of cfg; `source` names it in messages, e.g.
 * "<checkpoint run/ckpt_500.h5>". Returns the number of errors. */
int lv_config_load_string(lv_config *cfg, const char *text, size_t len, const char *source, FILE *err);
/* Apply one "key=value" (value taken literally, no YAML quoting). Returns the number of errors. */
int lv_config_apply_override(lv_config *cfg, const char *assignment, FILE *err);
/* Apply n overrides in order, reporting every bad one. Returns the number of errors. */
int lv_config_apply_overrides(lv_config *cfg, int n, char *const *assignments, FILE *err);
/* Cross-field rules that need no data (e.g. data.seq_len a multiple of model.chunk_size).
 * Returns the number of violations. */
int lv_config_validate(const lv_config *cfg, FILE *err);
/* The whole precedence chain: defaults, file (skipped if NULL), overrides, then validate (only if
 * everything before was clean, so its messages are not about values that failed to load).
 * Returns the total number of errors. */
int lv_config_build(lv_config *cfg, const char *path, int n_overrides, char *const *overrides, FILE *err);

/* ---- one key as text ---------------------------------------------------------------------- */

/* A whole number as an int key's value is read, also for the commands' numeric options: decimal
 * digits after an optional sign, nothing else (no spaces, no 0x, no 1e3). Returns 1 with *out (and
 * *overflow = 1 if it does not fit in 64 bits), or 0 if text is not such a number. */
int lv_parse_int(const char *text, int64_t *out, int *overflow);

/* Parse `text` as the value of `key` into cfg, with the type and range checks of the loader.
 * Returns 0, or 1 with the problem (no key name, no location) in problem[0..cap). */
int lv_config_set_text(lv_config *cfg, const lv_key *key, const char *text, char *problem, size_t cap);
/* The user's text inside a message: quoted, cut to fit buf (cap >= 8) so that a pasted paragraph
 * stays on one line, control characters shown as spaces. Returns buf. */
const char *lv_config_shown(const char *text, char *buf, size_t cap);
/* The value of `key` in cfg as text (strings unquoted). Returns snprintf's length. */
int lv_config_format_value(const lv_config *cfg, const lv_key *key, char *buf, size_t cap);

/* ---- output ------------------------------------------------------------------------------- */

/* The effective config as YAML that loads back to identical values (doubles as the shortest text
 * that round-trips, strings double-quoted with escapes). */
void lv_config_print_yaml(FILE *f, const lv_config *cfg);
/* Same text, malloc'd (free it); NULL if out of memory. For saving inside checkpoints. */
char *lv_config_to_yaml_string(const lv_config *cfg);
/* The key table: name, type, default, range or choices, shape flag, help. For `--help`. */
void lv_config_help(FILE *f);

/* Keys whose values differ between a and b, considering only keys with any of `flags_mask` set
 * (0 = all keys). Returns how many differ; the first `cap` names go to names[] (may be NULL). */
int lv_config_diff(const lv_config *a, const lv_config *b, unsigned flags_mask, const char **names, int cap);

#endif
