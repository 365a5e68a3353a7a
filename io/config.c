/* Loading (YAML, overrides), checking and comparing lv_config; the per-key knowledge and the
 * printers are in io/config_keys.c.
 *
 * The YAML loader walks libyaml's event stream rather than building a document, so that it can keep
 * going after a bad key or value and report every problem in the file, in file order, before a
 * syntax error (which libyaml cannot recover from) ends the walk. The input limits (config.h) are
 * checked before libyaml sees the text (its size) and on every event (the nesting depth).
 */
#include "io/config.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

/* ---- suggestions for misspelled names ---------------------------------------------------------- */

/* Edit distance (insert, delete, substitute), saturating for long names. */
static int edit_distance(const char *a, const char *b) {
  enum { M = 64 };
  size_t na = strlen(a), nb = strlen(b);
  if (na >= M || nb >= M) return M;
  int row[M], prev_diag;
  for (size_t j = 0; j <= nb; j++) row[j] = (int)j;
  for (size_t i = 1; i <= na; i++) {
    prev_diag = row[0];
    row[0] = (int)i;
    for (size_t j = 1; j <= nb; j++) {
      int sub = prev_diag + (a[i - 1] != b[j - 1]);
      prev_diag = row[j];
      int del = row[j] + 1, ins = row[j - 1] + 1;
      row[j] = sub < del ? (sub < ins ? sub : ins) : (del < ins ? del : ins);
    }
  }
  return row[nb];
}

/* The key the user probably meant: a small edit away, or the same leaf name in another section
 * (e.g. train.seed -> run.seed). NULL if nothing is close. */
static const char *suggest_key(const char *name) {
  size_t n;
  const lv_key *keys = lv_config_keys(&n);
  const char *dot = strchr(name, '.'), *best = NULL;
  int best_d = 3;
  for (size_t i = 0; i < n; i++) {
    int d = edit_distance(name, keys[i].name);
    if (dot && !strcmp(dot, strchr(keys[i].name, '.'))) d = d < 2 ? d : 2;
    if (d < best_d) best_d = d, best = keys[i].name;
  }
  return best;
}

/* Length of the section part of a dotted key name. */
static size_t section_len(const char *key_name) { return (size_t)(strchr(key_name, '.') - key_name); }

/* Index of the first key of section `name`, or -1. The index doubles as the section's id. */
static int find_section(const char *name) {
  size_t n, len = strlen(name);
  const lv_key *keys = lv_config_keys(&n);
  for (size_t i = 0; i < n; i++)
    if (section_len(keys[i].name) == len && !strncmp(keys[i].name, name, len)) return (int)i;
  return -1;
}

/* " (did you mean model?)", or a list of the sections when nothing is close. */
static void section_hint(const char *name, char *buf, size_t cap) {
  size_t n, used = 0;
  const lv_key *keys = lv_config_keys(&n);
  const char *best = NULL;
  int best_d = 3;
  buf[0] = '\0';
  for (size_t i = 0; i < n; i++) {
    size_t len = section_len(keys[i].name);
    if (i > 0 && section_len(keys[i - 1].name) == len && !strncmp(keys[i - 1].name, keys[i].name, len))
      continue; /* not the first key of its section */
    char sec[64];
    snprintf(sec, sizeof sec, "%.*s", (int)len, keys[i].name);
    int d = edit_distance(name, sec);
    if (d < best_d) best_d = d, best = keys[i].name;
    if (used < cap) used += (size_t)snprintf(buf + used, cap - used, "%s%s", used ? ", " : " (sections: ", sec);
  }
  if (best) snprintf(buf, cap, " (did you mean %.*s?)", (int)section_len(best), best);
  else if (used < cap) snprintf(buf + used, cap - used, ")");
}

/* ---- the YAML walk ------------------------------------------------------------------------------ */

typedef struct {
  lv_config *cfg;
  const char *source;   /* file name or "<checkpoint ...>" for messages */
  FILE *err;
  int errors;
  int stopped;          /* a syntax error or a limit: stop walking */
  int depth;            /* open mappings and lists */
  int *seen_line;       /* per key index (and per section id): line where set, 0 = not yet */
  yaml_parser_t parser;
  const char *text;     /* whole input, to turn a reader error's byte offset into line:col */
  size_t len;
} loader;

/* "source:line:col: key: problem"; `key` may be NULL. */
static void report(loader *L, yaml_mark_t at, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void report(loader *L, yaml_mark_t at, const char *key, const char *fmt, ...) {
  L->errors++;
  if (!L->err) return;
  char msg[1024];
  int n = snprintf(msg, sizeof msg, "%s%s", key ? key : "", key ? ": " : "");
  va_list ap;
  va_start(ap, fmt);
  if (n >= 0 && (size_t)n < sizeof msg) vsnprintf(msg + n, sizeof msg - (size_t)n, fmt, ap);
  va_end(ap);
  for (char *c = msg; *c; c++)
    if ((unsigned char)*c < 0x20) *c = ' '; /* a key like "a\nb" must not break the line */
  fprintf(L->err, "%s:%zu:%zu: %s\n", L->source, at.line + 1, at.column + 1, msg);
}

/* The line and column (0-based, in bytes) of a byte offset into the input. */
static yaml_mark_t mark_at(const loader *L, size_t offset) {
  yaml_mark_t at = {.index = offset};
  for (size_t i = 0; i < offset && i < L->len; i++)
    if (L->text[i] == '\n') at.line++, at.column = 0;
    else at.column++;
  return at;
}

static void report_syntax(loader *L) {
  yaml_parser_t *p = &L->parser;
  yaml_mark_t at = p->problem_mark;
  if (p->error == YAML_READER_ERROR) at = mark_at(L, p->problem_offset); /* only a byte offset */
  char context[256] = "";
  if (p->context)
    snprintf(context, sizeof context, " (%s at line %zu column %zu)", p->context,
             p->context_mark.line + 1, p->context_mark.column + 1);
  report(L, at, NULL, "YAML syntax error: %s%s", p->problem ? p->problem : "unknown problem", context);
  L->stopped = 1;
}

/* Next event into *ev (caller deletes it). 0 after a syntax error or beyond the depth limit, which
 * are reported here. Stopping at the limit also bounds libyaml's work, which grows with the depth. */
static int next(loader *L, yaml_event_t *ev) {
  if (L->stopped) return 0;
  if (!yaml_parser_parse(&L->parser, ev)) {
    report_syntax(L);
    return 0;
  }
  if (ev->type == YAML_MAPPING_END_EVENT || ev->type == YAML_SEQUENCE_END_EVENT) L->depth--;
  if (ev->type != YAML_MAPPING_START_EVENT && ev->type != YAML_SEQUENCE_START_EVENT) return 1;
  if (++L->depth <= LV_CONFIG_MAX_DEPTH) return 1;
  report(L, ev->start_mark, NULL, "nested more than %d levels deep, the limit (a config needs 2: sections "
         "and their keys); stopped reading", LV_CONFIG_MAX_DEPTH);
  yaml_event_delete(ev);
  L->stopped = 1;
  return 0;
}

/* Consume the rest of the node that `first` starts (nothing more for a scalar or alias). */
static void skip_node(loader *L, const yaml_event_t *first) {
  int depth = first->type == YAML_MAPPING_START_EVENT || first->type == YAML_SEQUENCE_START_EVENT;
  yaml_event_t ev;
  while (depth > 0 && next(L, &ev)) {
    if (ev.type == YAML_MAPPING_START_EVENT || ev.type == YAML_SEQUENCE_START_EVENT) depth++;
    if (ev.type == YAML_MAPPING_END_EVENT || ev.type == YAML_SEQUENCE_END_EVENT) depth--;
    yaml_event_delete(&ev);
  }
}

static const char *node_kind(const yaml_event_t *ev) {
  switch (ev->type) {
  case YAML_MAPPING_START_EVENT: return "a mapping";
  case YAML_SEQUENCE_START_EVENT: return "a list";
  case YAML_ALIAS_EVENT: return "an alias (aliases are not supported)";
  default: return "a scalar";
  }
}

/* A plain empty, ~ or null scalar: YAML's null. */
static int is_null(const yaml_event_t *ev) {
  if (ev->type != YAML_SCALAR_EVENT || ev->data.scalar.style != YAML_PLAIN_SCALAR_STYLE) return 0;
  const char *v = (const char *)ev->data.scalar.value;
  return !strcmp(v, "") || !strcmp(v, "~") || !strcmp(v, "null") || !strcmp(v, "Null") || !strcmp(v, "NULL");
}

/* The value of one known key, `ev` being its value event. */
static void load_value(loader *L, const lv_key *k, size_t idx, const yaml_event_t *key_ev,
                       const yaml_event_t *ev) {
  yaml_mark_t at = ev->start_mark;
  if (L->seen_line[idx]) {
    report(L, key_ev->start_mark, k->name, "duplicate key (first set at line %d)", L->seen_line[idx]);
    return;
  }
  L->seen_line[idx] = (int)key_ev->start_mark.line + 1;
  if (ev->type != YAML_SCALAR_EVENT) {
    report(L, at, k->name, "expected a value, got %s", node_kind(ev));
    return;
  }
  const char *text = (const char *)ev->data.scalar.value;
  if (strlen(text) != ev->data.scalar.length) {
    report(L, at, k->name, "value contains a NUL character");
    return;
  }
  char problem[512];
  if (lv_config_set_text(L->cfg, k, is_null(ev) ? "" : text, problem, sizeof problem))
    report(L, at, k->name, "%s", problem);
}

/* The body of `section:` from its MAPPING-START to its MAPPING-END. */
static void load_section(loader *L, const char *section) {
  size_t n;
  const lv_key *keys = lv_config_keys(&n);
  yaml_event_t key_ev, ev;
  while (next(L, &key_ev)) {
    if (key_ev.type == YAML_MAPPING_END_EVENT) { yaml_event_delete(&key_ev); return; }
    char name[160];
    int plain = key_ev.type == YAML_SCALAR_EVENT;
    snprintf(name, sizeof name, "%s.%s", section, plain ? (const char *)key_ev.data.scalar.value : "?");
    const lv_key *k = plain ? lv_config_find_key(name) : NULL;
    if (!plain) report(L, key_ev.start_mark, section, "keys must be plain names, got %s", node_kind(&key_ev));
    skip_node(L, &key_ev);
    if (next(L, &ev)) {
      if (k) {
        load_value(L, k, (size_t)(k - keys), &key_ev, &ev);
      } else if (plain) {
        const char *hint = suggest_key(name);
        report(L, key_ev.start_mark, name, "unknown key%s%s%s", hint ? " (did you mean " : "", hint ? hint : "",
               hint ? "?)" : "");
      }
      skip_node(L, &ev);
      yaml_event_delete(&ev);
    }
    yaml_event_delete(&key_ev);
  }
}

/* One `section: ...` entry of the root mapping; key_ev is the section's name. */
static void load_root_entry(loader *L, const yaml_event_t *key_ev) {
  const char *name = key_ev->type == YAML_SCALAR_EVENT ? (const char *)key_ev->data.scalar.value : NULL;
  int id = name ? find_section(name) : -1;
  char hint[256];
  if (!name) {
    report(L, key_ev->start_mark, NULL, "section names must be plain names, got %s", node_kind(key_ev));
  } else if (id < 0 && lv_config_find_key(name)) { /* the override spelling, used in a file */
    report(L, key_ev->start_mark, name, "unknown section (in YAML write `%.*s:` and under it `  %s: ...`)",
           (int)section_len(name), name, name + section_len(name) + 1);
  } else if (id < 0) {
    section_hint(name, hint, sizeof hint);
    report(L, key_ev->start_mark, name, "unknown section%s", hint);
  }
  skip_node(L, key_ev);
  yaml_event_t ev;
  if (!next(L, &ev)) return;
  size_t n;
  lv_config_keys(&n);
  int *seen = id >= 0 ? &L->seen_line[n + (size_t)id] : NULL, walk = 0;
  if (seen && *seen) {
    report(L, key_ev->start_mark, name, "duplicate section (first at line %d)", *seen);
  } else if (seen && ev.type == YAML_MAPPING_START_EVENT) {
    *seen = (int)key_ev->start_mark.line + 1;
    walk = 1;
  } else if (seen && !is_null(&ev)) { /* `model:` alone is an empty section */
    report(L, ev.start_mark, name, "expected a mapping of keys (indented `key: value` lines), got %s",
           node_kind(&ev));
  }
  if (walk) load_section(L, name);
  else skip_node(L, &ev);
  yaml_event_delete(&ev);
}

/* The root node of the (only) document; `ev` is its first event. */
static void load_root(loader *L, const yaml_event_t *ev) {
  if (ev->type != YAML_MAPPING_START_EVENT) {
    if (!is_null(ev)) /* an empty document is an empty config */
      report(L, ev->start_mark, NULL, "a config is a mapping of sections (`model:`, `train:`, ...), got %s",
             node_kind(ev));
    skip_node(L, ev);
    return;
  }
  yaml_event_t key_ev;
  while (next(L, &key_ev)) {
    int end = key_ev.type == YAML_MAPPING_END_EVENT;
    if (!end) load_root_entry(L, &key_ev);
    yaml_event_delete(&key_ev);
    if (end) return;
  }
}

/* The stream: at most one document. */
static void load_stream(loader *L) {
  yaml_event_t ev;
  int documents = 0;
  while (next(L, &ev)) {
    yaml_event_type_t t = ev.type;
    if (t == YAML_DOCUMENT_START_EVENT && documents++ > 0)
      report(L, ev.start_mark, NULL, "more than one YAML document (`---`); a config is one document");
    yaml_event_delete(&ev);
    if (t == YAML_STREAM_END_EVENT || documents > 1) return;
    if (t != YAML_DOCUMENT_START_EVENT) continue; /* stream start, document end */
    if (!next(L, &ev)) return;
    load_root(L, &ev);
    yaml_event_delete(&ev);
  }
}

int lv_config_load_string(lv_config *cfg, const char *text, size_t len, const char *source, FILE *err) {
  size_t n;
  lv_config_keys(&n);
  loader L = {.cfg = cfg, .source = source, .err = err, .text = text, .len = len};
  if (len > LV_CONFIG_MAX_BYTES) { /* refused before parsing: libyaml's time and memory stay bounded */
    report(&L, mark_at(&L, LV_CONFIG_MAX_BYTES), NULL, "more than %zu bytes (%zu MiB), the limit for a config "
           "(configs are a few KB; is this the right file?)", LV_CONFIG_MAX_BYTES, LV_CONFIG_MAX_BYTES >> 20);
    return L.errors;
  }
  L.seen_line = calloc(2 * n, sizeof *L.seen_line); /* keys, then sections by first-key index */
  if (!L.seen_line || !yaml_parser_initialize(&L.parser)) {
    if (err) fprintf(err, "%s: out of memory\n", source);
    free(L.seen_line);
    return 1;
  }
  yaml_parser_set_input_string(&L.parser, (const unsigned char *)text, len);
  load_stream(&L);
  yaml_parser_delete(&L.parser);
  free(L.seen_line);
  return L.errors;
}

/* Whole file into a NUL-terminated buffer, but at most LV_CONFIG_MAX_BYTES + 1 bytes (enough for
 * the loader to see the file is too big); NULL after reporting why not. */
static char *read_file(const char *path, size_t *len, FILE *err) {
  FILE *f = fopen(path, "rb");
  if (!f) {
    if (err) fprintf(err, "%s: cannot open: %s\n", path, strerror(errno));
    return NULL;
  }
  size_t cap = 4096, n = 0;
  char *buf = malloc(cap + 1);
  while (buf) {
    n += fread(buf + n, 1, cap - n, f);
    if (n < cap || cap > LV_CONFIG_MAX_BYTES) break; /* end of file, error, or over the limit */
    size_t bigger_cap = 2 * cap < LV_CONFIG_MAX_BYTES + 1 ? 2 * cap : LV_CONFIG_MAX_BYTES + 1;
    char *bigger = realloc(buf, bigger_cap + 1);
    if (!bigger) free(buf);
    buf = bigger;
    cap = bigger_cap;
  }
  int failed = ferror(f), saved = errno;
  fclose(f);
  const char *why = !buf ? "out of memory" : failed ? strerror(saved) : NULL;
  if (why) {
    if (err) fprintf(err, "%s: cannot read: %s\n", path, why);
    free(buf);
    return NULL;
  }
  buf[n] = '\0';
  *len = n;
  return buf;
}

int lv_config_load_file(lv_config *cfg, const char *path, FILE *err) {
  size_t len;
  char *text = read_file(path, &len, err);
  if (!text) return 1;
  int errors = lv_config_load_string(cfg, text, len, path, err);
  free(text);
  return errors;
}

/* ---- overrides ---------------------------------------------------------------------------------- */

int lv_config_apply_override(lv_config *cfg, const char *assignment, FILE *err) {
  const char *eq = strchr(assignment, '=');
  char name[160], problem[512], sh[120];
  const lv_key *k = NULL;
  size_t len = strnlen(assignment, LV_CONFIG_MAX_OVERRIDE + 1);
  if (len > LV_CONFIG_MAX_OVERRIDE) {
    snprintf(problem, sizeof problem, "longer than %d bytes, the limit for an override", LV_CONFIG_MAX_OVERRIDE);
    name[0] = '\0';
  } else if (!eq || eq == assignment) {
    snprintf(problem, sizeof problem, "expected section.key=value");
    name[0] = '\0';
  } else {
    snprintf(name, sizeof name, "%.*s", (int)(eq - assignment), assignment);
    for (char *c = name; *c; c++)
      if ((unsigned char)*c < 0x20) *c = ' '; /* the message stays one line */
    k = lv_config_find_key(name);
    const char *hint = k ? NULL : suggest_key(name);
    if (!k)
      snprintf(problem, sizeof problem, "unknown key%s%s%s", hint ? " (did you mean " : "", hint ? hint : "",
               hint ? "?)" : "");
    else if (!lv_config_set_text(cfg, k, eq + 1, problem, sizeof problem))
      return 0;
  }
  if (err) fprintf(err, "override %s: %s%s%s\n", lv_config_shown(assignment, sh, sizeof sh), name, name[0] ? ": " : "",
                   problem);
  return 1;
}

int lv_config_apply_overrides(lv_config *cfg, int n, char *const *assignments, FILE *err) {
  int errors = 0;
  for (int i = 0; i < n; i++) errors += lv_config_apply_override(cfg, assignments[i], err);
  return errors;
}

/* ---- cross-field rules -------------------------------------------------------------------------- */

static int violation(FILE *err, const char *key, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int violation(FILE *err, const char *key, const char *fmt, ...) {
  if (!err) return 1;
  va_list ap;
  va_start(ap, fmt);
  fprintf(err, "%s: ", key);
  vfprintf(err, fmt, ap);
  fputc('\n', err);
  va_end(ap);
  return 1;
}

int lv_config_validate(const lv_config *c, FILE *err) {
  int e = 0;
  /* Chunks tile the sequence exactly (spec: L is a multiple of C). seq_len 0 is resolved from the
   * dataset later, rounded up to a multiple. */
  if (c->data.seq_len > 0 && c->data.seq_len % c->model.chunk_size != 0)
    e += violation(err, "data.seq_len", "%lld is not a multiple of model.chunk_size (%lld)",
                   (long long)c->data.seq_len, (long long)c->model.chunk_size);
  if (c->train.warmup > c->train.steps)
    e += violation(err, "train.warmup", "%lld is more than train.steps (%lld)", (long long)c->train.warmup,
                   (long long)c->train.steps);
  if (c->train.min_lr > c->train.lr)
    e += violation(err, "train.min_lr", "%g is more than train.lr (%g)", c->train.min_lr, c->train.lr);
  /* Every rank needs at least one sequence per micro-batch. */
  if (c->train.micro_batch > c->train.batch_size)
    e += violation(err, "train.micro_batch", "%lld is more than train.batch_size (%lld)",
                   (long long)c->train.micro_batch, (long long)c->train.batch_size);
  else if (c->dist.world_size > 0 && c->train.batch_size < c->dist.world_size * c->train.micro_batch)
    e += violation(err, "train.batch_size", "%lld is less than dist.world_size * train.micro_batch (%lld)",
                   (long long)c->train.batch_size, (long long)(c->dist.world_size * c->train.micro_batch));
  return e;
}

int lv_config_build(lv_config *cfg, const char *path, int n_overrides, char *const *overrides, FILE *err) {
  lv_config_defaults(cfg);
  int errors = path ? lv_config_load_file(cfg, path, err) : 0;
  errors += lv_config_apply_overrides(cfg, n_overrides, overrides, err);
  return errors ? errors : lv_config_validate(cfg, err);
}

/* ---- comparing ---------------------------------------------------------------------------------- */

static int same_value(const lv_config *a, const lv_config *b, const lv_key *k) {
  const char *x = (const char *)a + k->offset, *y = (const char *)b + k->offset;
  switch (k->type) {
  case LV_T_INT: return *(const int64_t *)x == *(const int64_t *)y;
  case LV_T_DOUBLE: return *(const double *)x == *(const double *)y;
  case LV_T_BOOL: return *(const bool *)x == *(const bool *)y;
  case LV_T_ENUM: return *(const int *)x == *(const int *)y;
  case LV_T_STRING: return strcmp(x, y) == 0;
  }
  return 0;
}

int lv_config_diff(const lv_config *a, const lv_config *b, unsigned flags_mask, const char **names, int cap) {
  size_t n;
  const lv_key *keys = lv_config_keys(&n);
  int count = 0;
  for (size_t i = 0; i < n; i++) {
    if (flags_mask && !(keys[i].flags & flags_mask)) continue;
    if (same_value(a, b, &keys[i])) continue;
    if (names && count < cap) names[count] = keys[i].name;
    count++;
  }
  return count;
}
