/* The key table, the text <-> value conversion of one key, and the text forms of the whole table:
 * the config as YAML (lv_config_print_yaml) and --help (lv_config_help).
 *
 * Everything that knows about a particular key lives in the table below: name (stringized from the
 * struct field, so the two cannot drift apart), type, default, range, flags, help. The loader,
 * overrides, printer, --help and diff are generic over it. Defaults are stored as text and parsed
 * by the same lv_config_set_text that users go through, so a default is held to its own range.
 */
#include "io/config.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "trainer/base/check.h"

/* Enum fields are written through an int pointer; make sure that is their size. */
_Static_assert(sizeof(lv_mode) == sizeof(int) && sizeof(norm_kind) == sizeof(int) &&
               sizeof(lv_schedule) == sizeof(int) && sizeof(lv_nonfinite) == sizeof(int) &&
               sizeof(lv_progress) == sizeof(int) && sizeof(lv_precision) == sizeof(int), "enum keys are stored as int");

static const char *const mode_names[] = {"encoder", "decoder", NULL};
static const char *const norm_names[] = {"layernorm", "rmsnorm", "scalenorm", NULL};
static const char *const schedule_names[] = {"linear", "cosine", NULL};
static const char *const nonfinite_names[] = {"stop", "skip", NULL};
static const char *const progress_names[] = {"auto", "on", "off", NULL};
static const char *const precision_names[] = {"f32", "bf16", NULL};

#define INF INFINITY
#define FIELD(sec, f, t) .name = #sec "." #f, .type = (t), .offset = offsetof(lv_config, sec.f), \
                         .size = sizeof(((lv_config *)0)->sec.f)
#define INT(sec, f, d, lo, hi, fl, h) \
  {FIELD(sec, f, LV_T_INT), .def = (d), .min = (lo), .max = (hi), .flags = (fl), .help = (h)}
#define DBL(sec, f, d, lo, hi, fl, h) \
  {FIELD(sec, f, LV_T_DOUBLE), .def = (d), .min = (lo), .max = (hi), .flags = (fl), .help = (h)}
#define BOOL(sec, f, d, fl, h) {FIELD(sec, f, LV_T_BOOL), .def = (d), .flags = (fl), .help = (h)}
#define STR(sec, f, d, h) {FIELD(sec, f, LV_T_STRING), .def = (d), .help = (h)}
#define ENUM(sec, f, names, fl, h) \
  {FIELD(sec, f, LV_T_ENUM), .def = (names)[0], .choices = (names), .flags = (fl), .help = (h)}

enum { SHAPE = LV_KEY_SHAPE, MAXO = LV_KEY_MAX_OPEN, MINO = LV_KEY_MIN_OPEN };

/* Shape keys: everything that changes a parameter's name or shape in the spec's parameter table
 * (prenorm adds final_norm, norm picks weight/bias/scale, tie_embeddings adds lm_head). */
static const lv_key keys[] = {
    ENUM(model, mode, mode_names, SHAPE, "encoder (bidirectional, classification) or decoder (causal LM)"),
    INT(model, d_model, "128", 1, LV_MAX_WIDTH, SHAPE, "model width D"),
    INT(model, z_dim, "64", 1, LV_MAX_WIDTH, SHAPE, "query/key width Z"),
    INT(model, v_dim, "256", 1, LV_MAX_WIDTH, SHAPE, "value width E"),
    INT(model, ema_dim, "16", 1, LV_MAX_EMA_DIM, SHAPE, "EMA state size N per channel"),
    INT(model, codebook_size, "64", 1, LV_MAX_CODEBOOK, SHAPE, "codes per layer S"),
    INT(model, chunk_size, "128", 1, LV_MAX_WIDTH, SHAPE, "local attention window (chunk) length C"),
    INT(model, ffn_dim, "0", 0, LV_MAX_FFN, SHAPE, "feed-forward hidden width F; 0 = 2 * d_model"),
    INT(model, n_layers, "2", 1, LV_MAX_LAYERS, SHAPE, "number of layers"),
    BOOL(model, prenorm, "true", SHAPE, "norm before (true) or after (false) each residual block"),
    ENUM(model, norm, norm_names, SHAPE, "every norm of the model, final_norm included"),
    DBL(model, dropout, "0", 0, 1, MAXO, "dropout probability"),
    DBL(model, hidden_dropout, "0", 0, 1, MAXO, "hidden (attention/FFN inner) dropout probability"),
    BOOL(model, tie_embeddings, "true", SHAPE, "decoder: LM head shares embed.weight"),
    DBL(model, commit_weight, "1e-4", 0, INF, 0, "weight of the VQ commitment loss"),
    DBL(model, codebook_decay, "0.99", 0, 1, 0, "EMA decay of the codebook"),
    BOOL(model, far_attention, "true", 0, "attend to far tokens via the codebook (false: ablation)"),
    INT(model, vocab_size, "0", 0, LV_MAX_VOCAB, SHAPE, "vocabulary size V; 0 = from the dataset"),
    INT(model, n_classes, "0", 0, LV_MAX_CLASSES, SHAPE, "encoder classes K; 0 = from the dataset"),
    ENUM(model, precision, precision_names, 0, "matmul inputs: f32, or bf16 (f32 accumulation and outputs; weights, optimizer, checkpoints stay f32; needs AVX512_BF16 or AMX)"),

    STR(data, train, "", "training set: HDF5 file, or glob of shards"),
    STR(data, val, "", "validation set (file or glob); \"\" = none"),
    STR(data, test, "", "test set (file or glob); \"\" = none"),
    INT(data, seq_len, "1024", 0, LV_MAX_SEQ_LEN, 0, "sequence length L; 0 = dataset max, rounded up to chunk_size"),
    BOOL(data, truncate, "false", 0, "cut sequences longer than seq_len (false: they are an error)"),
    STR(data, split_train, "train", "split name read from data.train"),
    STR(data, split_val, "val", "split name read from data.val"),
    STR(data, split_test, "test", "split name read from data.test"),
    BOOL(data, verify, "true", 0, "check the datasets' digests at run start (reads them once); false for huge sets"),
    BOOL(data, allow_change, "false", 0, "resume although the training data differs from the checkpoint's (sizes, digests)"),
    INT(data, cache_mb, "64", 0, 1 << 20, 0, "HDF5 chunk cache per rank, MiB"),

    INT(train, batch_size, "32", 1, LV_MAX_BATCH, 0, "global batch (sequences per step over all ranks)"),
    INT(train, micro_batch, "1", 1, LV_MAX_BATCH, 0, "micro-batches each rank splits its share into (accumulation)"),
    INT(train, steps, "1000", 1, LV_MAX_STEPS, 0, "optimizer steps"),
    DBL(train, lr, "1e-3", 0, INF, 0, "peak learning rate"),
    DBL(train, min_lr, "0", 0, INF, 0, "learning rate at the last step"),
    INT(train, warmup, "100", 0, INF, 0, "linear warmup steps"),
    ENUM(train, schedule, schedule_names, 0, "decay after warmup"),
    DBL(train, weight_decay, "0.01", 0, INF, 0, "AdamW weight decay"),
    DBL(train, clip, "1.0", -INF, INF, 0, "global gradient-norm clip; <= 0 disables"),
    INT(train, eval_every, "200", 0, INF, 0, "evaluate on data.val every N steps; 0 = never"),
    INT(train, eval_batches, "0", 0, INF, 0, "batches per evaluation; 0 = the whole split"),
    ENUM(train, nonfinite, nonfinite_names, 0, "on a NaN/Inf loss or gradient: stop, or skip the step"),
    INT(train, threads, "0", 0, 4096, 0, "OpenMP threads per rank (wins over OMP_NUM_THREADS); 0 = OMP_NUM_THREADS, or one per CPU of the rank"),
    STR(train, init_from, "", "start from this model file's parameters and codebooks (fresh optimizer); \"\" = spec init"),

    INT(checkpoint, every, "500", 0, INF, 0, "save every N steps; 0 = only at the end and on signals"),
    INT(checkpoint, keep, "3", 1, INF, 0, "keep the newest N periodic checkpoints"),
    INT(checkpoint, keep_every, "0", 0, INF, 0, "also keep every checkpoint at a multiple of N steps; 0 = none"),
    STR(checkpoint, resume, "", "\"\" = fresh run, \"auto\" = newest in run.dir, or a checkpoint path"),
    BOOL(checkpoint, save_initial, "true", 0, "save a checkpoint of the initial model (step 0)"),

    DBL(dist, bucket_mb, "25", 0, 1 << 16, MINO, "gradient all-reduce bucket size, MiB"),
    INT(dist, zero, "0", 0, 1, 0, "ZeRO stage: 1 = shard optimizer state over ranks"),
    INT(dist, world_size, "0", 0, INF, 0, "required number of ranks; 0 = any"),
    INT(dist, check_every, "100", 0, INF, 0, "replica-consistency hash every N steps; 0 = off"),
    BOOL(dist, comm_thread, "true", 0, "reduce on a communication thread, overlapped with backward; false = after backward"),
    DBL(dist, timeout_s, "0", -1, 1e6, 0, "stall limit, s: a collective still waiting after it ends the job naming the ranks that did not arrive; 0 = auto, -1 = off"),

    INT(log, every, "10", 1, INF, 0, "log training metrics every N steps"),
    STR(log, metrics, "", "metrics file (JSON lines); \"\" = <run.dir>/metrics.jsonl"),
    ENUM(log, progress, progress_names, 0, "progress line: auto = only on a terminal"),

    STR(run, dir, "runs/default", "run directory: checkpoints, metrics, effective config"),
    INT(run, seed, "1234", 0, INF, 0, "seed of every random number (init, dropout, data order)"),
    STR(run, name, "", "run name: printed at start-up and the \"run\" field of every metrics line"),
    DBL(run, lock_stale_s, "600", 1, INF, 0, "seconds without a heartbeat after which another run takes over the run.dir lock (docs/slurm.md)"),
};

const lv_key *lv_config_keys(size_t *n) {
  *n = sizeof keys / sizeof keys[0];
  return keys;
}

const lv_key *lv_config_find_key(const char *name) {
  for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
    if (!strcmp(keys[i].name, name)) return &keys[i];
  return NULL;
}

void lv_config_defaults(lv_config *cfg) {
  memset(cfg, 0, sizeof *cfg);
  char problem[256];
  for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
    if (lv_config_set_text(cfg, &keys[i], keys[i].def, problem, sizeof problem))
      DIE("key table: default of %s: %s", keys[i].name, problem);
}

/* Length of the section part of a dotted key name ("model" of "model.d_model"). */
static size_t section_len(const char *key_name) { return (size_t)(strchr(key_name, '.') - key_name); }

/* ---- ranges ---------------------------------------------------------------------------------- */

/* "" (unbounded), ">= 1", "> 0", "<= 5" or "[0, 1)"; integers in full ("[1, 16777216]"). */
static void range_text(const lv_key *k, char *buf, size_t cap) {
  int lo = isfinite(k->min), hi = isfinite(k->max);
  int lo_open = (k->flags & LV_KEY_MIN_OPEN) != 0, hi_open = (k->flags & LV_KEY_MAX_OPEN) != 0;
  if (lo && hi)
    snprintf(buf, cap, "%c%.15g, %.15g%c", lo_open ? '(' : '[', k->min, k->max, hi_open ? ')' : ']');
  else if (lo)
    snprintf(buf, cap, "%s %.15g", lo_open ? ">" : ">=", k->min);
  else if (hi)
    snprintf(buf, cap, "%s %.15g", hi_open ? "<" : "<=", k->max);
  else
    buf[0] = '\0';
}

static int in_range(const lv_key *k, double v) {
  if (k->flags & LV_KEY_MIN_OPEN ? !(v > k->min) : !(v >= k->min)) return 0;
  if (k->flags & LV_KEY_MAX_OPEN ? !(v < k->max) : !(v <= k->max)) return 0;
  return 1;
}

/* ---- parsing one value ---------------------------------------------------------------------- */

/* The user's text inside a message (config.h). */
const char *lv_config_shown(const char *text, char *buf, size_t cap) {
  size_t n = strlen(text);
  if (n + 3 <= cap) snprintf(buf, cap, "'%s'", text);
  else snprintf(buf, cap, "'%.*s...'", (int)(cap - 6), text);
  for (char *p = buf; *p; p++)
    if ((unsigned char)*p < 0x20) *p = ' ';
  return buf;
}

/* Decimal only (no 0x, no octal, no 1e3): an int key given "1e3" is more likely a mistake. */
int lv_parse_int(const char *text, int64_t *out, int *overflow) {
  const char *p = text + (text[0] == '+' || text[0] == '-');
  if (*p < '0' || *p > '9') return 0;
  char *end;
  errno = 0;
  long long v = strtoll(text, &end, 10);
  if (*end != '\0') return 0;
  *overflow = errno == ERANGE;
  *out = v;
  return 1;
}

/* strtod in the "C" locale (the trainer never calls setlocale), so '.' is the decimal point. */
static int parse_double(const char *text, double *out) {
  if (text[0] == '\0' || isspace((unsigned char)text[0])) return 0;
  char *end;
  *out = strtod(text, &end);
  return *end == '\0';
}

static int parse_bool(const char *text, bool *out) {
  static const char *const yes[] = {"true", "True", "TRUE"}, *const no[] = {"false", "False", "FALSE"};
  for (int i = 0; i < 3; i++) {
    if (!strcmp(text, yes[i])) { *out = true; return 1; }
    if (!strcmp(text, no[i])) { *out = false; return 1; }
  }
  return 0;
}

/* One UTF-8 sequence at s: its code point and length, or -1 (length 1) for a malformed, overlong,
 * surrogate or out-of-range sequence. */
static long decode_utf8(const unsigned char *s, int *len) {
  static const long min_cp[4] = {0, 0x80, 0x800, 0x10000};
  unsigned c = s[0];
  int n = c < 0x80 ? 0 : (c & 0xE0) == 0xC0 ? 1 : (c & 0xF0) == 0xE0 ? 2 : (c & 0xF8) == 0xF0 ? 3 : -1;
  *len = 1;
  if (n < 0) return -1;
  long cp = n == 0 ? (long)c : (long)(c & (0x3Fu >> n));
  for (int i = 1; i <= n; i++) {
    if ((s[i] & 0xC0) != 0x80) return -1;
    cp = cp << 6 | (s[i] & 0x3F);
  }
  if (cp < min_cp[n] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return -1;
  *len = n + 1;
  return cp;
}

/* Strings must be valid UTF-8: YAML cannot carry anything else, and the printed config has to load
 * back. */
static int valid_utf8(const char *s) {
  for (const unsigned char *p = (const unsigned char *)s; *p;) {
    int len;
    if (decode_utf8(p, &len) < 0) return 0;
    p += len;
  }
  return 1;
}

static int set_number(lv_config *cfg, const lv_key *k, const char *text, char *problem, size_t cap) {
  char sh[80], rng[64];
  double v;
  int64_t iv = 0;
  if (k->type == LV_T_INT) {
    int overflow;
    if (!lv_parse_int(text, &iv, &overflow))
      return snprintf(problem, cap, "%s is not an integer", lv_config_shown(text, sh, sizeof sh)), 1;
    if (overflow) return snprintf(problem, cap, "%s does not fit in 64 bits", lv_config_shown(text, sh, sizeof sh)), 1;
    v = (double)iv; /* exact for every bound in the table */
  } else {
    if (!parse_double(text, &v)) return snprintf(problem, cap, "%s is not a number", lv_config_shown(text, sh, sizeof sh)), 1;
    if (!isfinite(v)) return snprintf(problem, cap, "%s is not a finite number", lv_config_shown(text, sh, sizeof sh)), 1;
  }
  if (!in_range(k, v)) {
    range_text(k, rng, sizeof rng);
    return snprintf(problem, cap, "%s is out of range: must be %s%s", lv_config_shown(text, sh, sizeof sh),
                    isfinite(k->min) && isfinite(k->max) ? "in " : "", rng), 1;
  }
  /* Store only a value that passed every check: a failed override leaves the previous value. */
  if (k->type == LV_T_INT) *(int64_t *)((char *)cfg + k->offset) = iv;
  else *(double *)((char *)cfg + k->offset) = v;
  return 0;
}

static int set_enum(lv_config *cfg, const lv_key *k, const char *text, char *problem, size_t cap) {
  for (int i = 0; k->choices[i]; i++)
    if (!strcmp(text, k->choices[i])) {
      *(int *)((char *)cfg + k->offset) = i;
      return 0;
    }
  char sh[80];
  int n = snprintf(problem, cap, "%s is not one of", lv_config_shown(text, sh, sizeof sh));
  for (int i = 0; k->choices[i] && n >= 0 && (size_t)n < cap; i++)
    n += snprintf(problem + n, cap - (size_t)n, "%s %s", i ? "," : ":", k->choices[i]);
  return 1;
}

int lv_config_set_text(lv_config *cfg, const lv_key *k, const char *text, char *problem, size_t cap) {
  char *field = (char *)cfg + k->offset;
  char sh[80];
  if (text[0] == '\0' && k->type != LV_T_STRING) { /* `key:` with nothing after it, or `key=` */
    static const char *const what[] = {"an integer", "a number", "true or false", "", ""};
    if (k->type != LV_T_ENUM) return snprintf(problem, cap, "missing value (expected %s)", what[k->type]), 1;
    int n = snprintf(problem, cap, "missing value (expected one of");
    for (int i = 0; k->choices[i] && n >= 0 && (size_t)n < cap; i++)
      n += snprintf(problem + n, cap - (size_t)n, "%s %s", i ? "," : ":", k->choices[i]);
    if (n >= 0 && (size_t)n < cap) snprintf(problem + n, cap - (size_t)n, ")");
    return 1;
  }
  switch (k->type) {
  case LV_T_INT:
  case LV_T_DOUBLE:
    return set_number(cfg, k, text, problem, cap);
  case LV_T_BOOL:
    if (parse_bool(text, (bool *)field)) return 0;
    return snprintf(problem, cap, "%s is not a boolean (true or false)", lv_config_shown(text, sh, sizeof sh)), 1;
  case LV_T_ENUM:
    return set_enum(cfg, k, text, problem, cap);
  case LV_T_STRING:
    if (strlen(text) >= k->size)
      return snprintf(problem, cap, "value is %zu bytes long, the limit is %zu", strlen(text), k->size - 1), 1;
    if (!valid_utf8(text)) return snprintf(problem, cap, "value is not valid UTF-8"), 1;
    memcpy(field, text, strlen(text) + 1);
    return 0;
  }
  return snprintf(problem, cap, "internal: bad key type"), 1;
}

/* ---- formatting one value ------------------------------------------------------------------- */

/* The shortest %g text that reads back to exactly v (0.1 prints as "0.1", not 0.10000000000000001;
 * %.17g is the fallback that always round-trips). */
static int format_double(double v, char *buf, size_t cap) {
  char text[32];
  for (int prec = 1; prec <= 17; prec++) {
    snprintf(text, sizeof text, "%.*g", prec, v);
    if (strtod(text, NULL) == v) break;
  }
  return snprintf(buf, cap, "%s", text);
}

int lv_config_format_value(const lv_config *cfg, const lv_key *k, char *buf, size_t cap) {
  const char *field = (const char *)cfg + k->offset;
  switch (k->type) {
  case LV_T_INT: return snprintf(buf, cap, "%" PRId64, *(const int64_t *)field);
  case LV_T_DOUBLE: return format_double(*(const double *)field, buf, cap);
  case LV_T_BOOL: return snprintf(buf, cap, "%s", *(const bool *)field ? "true" : "false");
  case LV_T_STRING: return snprintf(buf, cap, "%s", field);
  case LV_T_ENUM: {
    int v = *(const int *)field, n = 0;
    while (k->choices[n]) n++;
    return snprintf(buf, cap, "%s", v >= 0 && v < n ? k->choices[v] : "?");
  }
  }
  return snprintf(buf, cap, "?");
}

/* ---- the whole config as YAML ----------------------------------------------------------------- */

/* A YAML double-quoted scalar. Escaped: quote, backslash, every control character, and the code
 * points libyaml refuses raw or folds as line breaks (C1 controls incl. NEL, U+2028/9, U+FEFF,
 * U+FFFE/F); everything else is written as is, so paths stay readable. */
static void print_quoted(FILE *f, const char *s) {
  fputc('"', f);
  for (const unsigned char *p = (const unsigned char *)s; *p;) {
    int len;
    long cp = decode_utf8(p, &len);
    if (cp == '"' || cp == '\\') fprintf(f, "\\%c", (int)cp);
    else if (cp == '\n') fputs("\\n", f);
    else if (cp == '\t') fputs("\\t", f);
    else if (cp < 0) fprintf(f, "\\x%02X", *p); /* not UTF-8 (never from the loader): lossy */
    else if (cp < 0x20 || (cp >= 0x7F && cp <= 0x9F)) fprintf(f, "\\x%02lX", cp);
    else if (cp == 0x2028 || cp == 0x2029 || cp == 0xFEFF || cp == 0xFFFE || cp == 0xFFFF)
      fprintf(f, "\\u%04lX", cp);
    else fwrite(p, 1, (size_t)len, f);
    p += len;
  }
  fputc('"', f);
}

void lv_config_print_yaml(FILE *f, const lv_config *cfg) {
  size_t n = sizeof keys / sizeof keys[0];
  fprintf(f, "# LongVQ effective config (every key; `longvq train --help` explains them)\n");
  for (size_t i = 0; i < n; i++) {
    const lv_key *k = &keys[i];
    size_t len = section_len(k->name);
    if (i == 0 || section_len(keys[i - 1].name) != len || strncmp(keys[i - 1].name, k->name, len))
      fprintf(f, "%.*s:\n", (int)len, k->name);
    fprintf(f, "  %s: ", k->name + len + 1);
    if (k->type == LV_T_STRING) {
      print_quoted(f, (const char *)cfg + k->offset);
    } else {
      char buf[64];
      lv_config_format_value(cfg, k, buf, sizeof buf);
      fputs(buf, f);
    }
    fputc('\n', f);
  }
}

char *lv_config_to_yaml_string(const lv_config *cfg) {
  char *buf = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&buf, &len);
  if (!f) return NULL;
  lv_config_print_yaml(f, cfg);
  if (fclose(f) != 0) {
    free(buf);
    return NULL;
  }
  return buf;
}

/* ---- help ----------------------------------------------------------------------------------- */

/* "int >= 1", "double in [0, 1)", "enum encoder|decoder", "string". */
static void type_text(const lv_key *k, char *buf, size_t cap) {
  static const char *const names[] = {"int", "double", "bool", "string", "enum"};
  char rng[64];
  int n = snprintf(buf, cap, "%s", names[k->type]);
  if (k->type == LV_T_INT || k->type == LV_T_DOUBLE) {
    range_text(k, rng, sizeof rng);
    if (rng[0]) snprintf(buf + n, cap - (size_t)n, " %s%s", rng[0] == '[' || rng[0] == '(' ? "in " : "", rng);
  }
  for (int i = 0; k->type == LV_T_ENUM && k->choices[i] && (size_t)n < cap; i++)
    n += snprintf(buf + n, cap - (size_t)n, "%c%s", i ? '|' : ' ', k->choices[i]);
}

void lv_config_help(FILE *f) {
  fprintf(f, "Config keys. In YAML `section:` then indented `key: value`; on the command line\n"
             "`section.key=value` after the config file. [shape] keys cannot change at resume.\n");
  for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
    const lv_key *k = &keys[i];
    size_t len = section_len(k->name);
    if (i == 0 || section_len(keys[i - 1].name) != len || strncmp(keys[i - 1].name, k->name, len))
      fprintf(f, "\n%.*s:\n", (int)len, k->name);
    char type[96];
    type_text(k, type, sizeof type);
    const char *q = k->type == LV_T_STRING ? "\"" : "";
    fprintf(f, "  %-24s %s, default %s%s%s%s\n      %s\n", k->name, type, q, k->def, q,
            k->flags & LV_KEY_SHAPE ? " [shape]" : "", k->help);
  }
}
