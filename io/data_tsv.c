/* `label<TAB>text` lines into a byte-level classification dataset (vocab 256, token = byte).
 *
 * A line is split at its FIRST tab; later tabs belong to the text; a trailing "\r" is dropped.
 * Empty lines are skipped; a non-empty line without a tab is an error "FILE:LINE: no tab".
 * Labels: --label-kind int (default): integers 0..K-1, K = --classes or the largest label + 1;
 * --label-kind name: any strings, class ids in byte order of the distinct names (sorted with
 * strcmp over all input files), stored as the `class_names` attribute.
 * Val: the --val file, else each train record i goes to val iff u < --val-fraction, u the uniform
 * of Philox stream (seed, "tsv_val", 0, 0) at index i (record order, 0-based). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "io/data_convert.h"
#include "trainer/base/check.h"
#include "trainer/base/log.h"
#include "trainer/base/rng.h"

typedef struct {
  const char *file;
  int64_t line;
  const char *label, *text;
  int64_t label_len, text_len;
  int split; /* 0 train, 1 val, 2 test */
  int32_t y;
} record;

typedef struct { record *p; int64_t n, cap; } recvec;

static void push_rec(recvec *v, record r) {
  if (v->n == v->cap) {
    v->cap = v->cap ? 2 * v->cap : 1024;
    v->p = realloc(v->p, (size_t)v->cap * sizeof *v->p);
    CHECK_ALLOC(v->p);
  }
  v->p[v->n++] = r;
}

/* Records of one file (its text stays alive in *data). */
static void parse_file(const char *path, int split, int skip_header, recvec *out, char **data) {
  int64_t len;
  char *s = lv_read_file(path, &len), *end = s + len;
  *data = s;
  int64_t line = 0, before = out->n;
  for (char *p = s; p < end;) {
    char *nl = memchr(p, '\n', (size_t)(end - p)), *e = nl ? nl : end;
    line++;
    char *next = nl ? nl + 1 : end;
    if (e > p && e[-1] == '\r') e--;
    if ((skip_header && line == 1) || e == p) {
      p = next;
      continue;
    }
    char *tab = memchr(p, '\t', (size_t)(e - p));
    if (!tab) DIE_INPUT("%s:%lld: no tab (expected LABEL<TAB>TEXT)", path, (long long)line);
    if (tab == p) DIE_INPUT("%s:%lld: empty label before the tab", path, (long long)line);
    if (tab + 1 == e) DIE_INPUT("%s:%lld: empty text after the tab", path, (long long)line);
    push_rec(out, (record){path, line, p, tab + 1, tab - p, e - tab - 1, split, 0});
    p = next;
  }
  if (out->n == before) DIE_INPUT("%s: no records", path);
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* Class ids for every record; returns K and (name kind) the sorted names. */
static int64_t resolve_labels(recvec *r, int by_name, int64_t classes, char ***names_out) {
  *names_out = NULL;
  if (!by_name) {
    int64_t max = -1;
    for (int64_t i = 0; i < r->n; i++) {
      record *x = &r->p[i];
      char buf[32], *end = NULL;
      if (x->label_len >= (int64_t)sizeof buf) DIE_INPUT("%s:%lld: label is too long for an integer", x->file, (long long)x->line);
      memcpy(buf, x->label, (size_t)x->label_len);
      buf[x->label_len] = 0;
      errno = 0;
      long long v = strtoll(buf, &end, 10);
      if (errno || *end || v < 0 || v > INT32_MAX - 1)
        DIE_INPUT("%s:%lld: label '%s' is not an integer 0..K-1 (use --label-kind name for class names)", x->file,
                  (long long)x->line, buf);
      if (classes > 0 && v >= classes)
        DIE_INPUT("%s:%lld: label %lld >= --classes %lld", x->file, (long long)x->line, v, (long long)classes);
      x->y = (int32_t)v;
      if (v > max) max = v;
    }
    return classes > 0 ? classes : max + 1;
  }
  char **all = malloc((size_t)r->n * sizeof *all);
  CHECK_ALLOC(all);
  for (int64_t i = 0; i < r->n; i++) {
    all[i] = strndup(r->p[i].label, (size_t)r->p[i].label_len);
    CHECK_ALLOC(all[i]);
  }
  qsort(all, (size_t)r->n, sizeof *all, cmp_str);
  int64_t k = 0;
  for (int64_t i = 0; i < r->n; i++) {
    if (k > 0 && !strcmp(all[k - 1], all[i])) free(all[i]);
    else all[k++] = all[i];
  }
  for (int64_t i = 0; i < r->n; i++) {
    char *key = strndup(r->p[i].label, (size_t)r->p[i].label_len);
    CHECK_ALLOC(key);
    char **hit = bsearch(&key, all, (size_t)k, sizeof *all, cmp_str);
    r->p[i].y = (int32_t)(hit - all);
    free(key);
  }
  if (classes > 0 && classes != k) DIE_INPUT("data tsv: --classes %lld but %lld distinct label names", (long long)classes, (long long)k);
  *names_out = all;
  return k;
}

int lv_data_tsv(int argc, char **argv) {
  lv_data_common c = {.shards = 1};
  char *files[3] = {NULL, NULL, NULL}, *kind = "int";
  double val_fraction = 0.05;
  int64_t classes = 0;
  int skip_header = 0;
  const lv_opt opts[] = {
      LV_DATA_COMMON_OPTS(c),
      {"--train", LV_OPT_STR, &files[0], "training records, LABEL<TAB>TEXT per line (required)", 0},
      {"--val", LV_OPT_STR, &files[1], "validation records (default: carve --val-fraction of --train)", 0},
      {"--test", LV_OPT_STR, &files[2], "test records (optional)", 0},
      {"--val-fraction", LV_OPT_F64, &val_fraction, "without --val: seeded fraction of train records (default 0.05)", 1},
      {"--label-kind", LV_OPT_STR, &kind, "int (labels 0..K-1, default) or name (strings, sorted to ids)", 1},
      {"--classes", LV_OPT_I64, &classes, "K (int labels: default largest + 1)", 1},
      {"--skip-header", LV_OPT_FLAG, &skip_header, "ignore the first line of every file", 1},
      {NULL, 0, NULL, NULL, 0},
  };
  char prov[1024];
  if (lv_opts_parse("tsv", "--out FILE.h5 --train FILE [options]", argc, argv, opts, NULL, NULL, prov, sizeof prov))
    return 0;
  lv_data_check_common("tsv", &c);
  if (!files[0]) DIE_INPUT("data tsv: --train FILE is required");
  int by_name = !strcmp(kind, "name");
  if (!by_name && strcmp(kind, "int")) DIE_INPUT("data tsv: --label-kind '%s': use int or name", kind);
  if (classes < 0) DIE_INPUT("data tsv: --classes must be >= 1");
  if (!files[1] && !(val_fraction >= 0 && val_fraction < 1)) DIE_INPUT("data tsv: --val-fraction must be in [0, 1)");

  recvec recs = {0};
  char *data[3] = {NULL, NULL, NULL}, sources[12400] = "";
  for (int s = 0; s < 3; s++) {
    if (!files[s]) continue;
    parse_file(files[s], s, skip_header, &recs, &data[s]);
    size_t len = strlen(sources);
    snprintf(sources + len, sizeof sources - len, "%s%s", len ? "\n" : "", files[s]);
  }
  char **names;
  int64_t k = resolve_labels(&recs, by_name, classes, &names);
  if (k < 1) DIE_INPUT("data tsv: no classes");
  if (!files[1] && val_fraction > 0) {
    rng_stream st = rng_make(c.seed, "tsv_val", 0, 0);
    int64_t i = 0, moved = 0;
    for (int64_t r = 0; r < recs.n; r++) {
      if (recs.p[r].split != 0) continue;
      if (rng_uniform(&st, (uint64_t)i++) < val_fraction) {
        recs.p[r].split = 1;
        moved++;
      }
    }
    if (moved == i) DIE_INPUT("%s: --val-fraction %g leaves train empty: lower it or give --val", files[0], val_fraction);
    if (moved == 0) log_warn("%s: --val-fraction %g picked no record: no val split", files[0], val_fraction);
  }

  static const char *split_names[3] = {"train", "val", "test"};
  lv_u8vec tok[3] = {{0}};
  lv_i64vec off[3] = {{0}};
  lv_i32vec lbl[3] = {{0}};
  for (int s = 0; s < 3; s++) lv_i64_push(&off[s], 0);
  for (int64_t r = 0; r < recs.n; r++) {
    record *x = &recs.p[r];
    lv_u8_push(&tok[x->split], (const uint8_t *)x->text, x->text_len);
    lv_i64_push(&off[x->split], tok[x->split].n);
    lv_i32_push(&lbl[x->split], x->y);
  }
  lv_split_data sp[3];
  int ns = 0;
  for (int s = 0; s < 3; s++)
    if (lbl[s].n > 0)
      sp[ns++] = (lv_split_data){split_names[s], lbl[s].n, tok[s].n, tok[s].p, LV_DTYPE_U8, off[s].p, lbl[s].p, NULL};
  lv_dataset_meta m = {LV_TASK_CLASSIFICATION, 256, k, "longvq data tsv", prov, c.seed, sources, NULL,
                       (const char *const *)names};
  lv_dataset_write(c.out, (int)c.shards, c.force, &m, ns, sp);
  log_info("tsv: %lld records, %lld classes: %lld train, %lld val, %lld test", (long long)recs.n, (long long)k,
           (long long)lbl[0].n, (long long)lbl[1].n, (long long)lbl[2].n);
  for (int s = 0; s < 3; s++) {
    free(tok[s].p); free(off[s].p); free(lbl[s].p); free(data[s]);
  }
  if (names)
    for (int64_t i = 0; i < k; i++) free(names[i]);
  free(names);
  free(recs.p);
  return 0;
}
