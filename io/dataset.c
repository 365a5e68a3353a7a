/* Opening and validating a longvq dataset (one file or all the shards of one), for one split.
 * Every rank opens the files itself with the default (sec2) driver, read-only: no collective
 * calls, so a rank may open a dataset alone (eval, inspect) and one rank's bad file cannot
 * leave the others waiting in a collective open. Reads are independent small hyperslabs, which
 * is what MPI-IO would do for them anyway. */
#include <errno.h>
#include <glob.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "io/dataset_internal.h"
#include "io/digest.h"

/* ---- paths ------------------------------------------------------------------------------------ */

static void add_path(int *n, char ***v, const char *p) {
  char **nv = realloc(*v, (size_t)(*n + 1) * sizeof *nv);
  CHECK_ALLOC(nv);
  nv[*n] = strdup(p);
  CHECK_ALLOC(nv[*n]);
  *v = nv;
  (*n)++;
}

/* Each entry is a path or a glob (sorted matches; no match is an error). */
static void expand(int n_in, const char *const *in, int *n, char ***out) {
  *n = 0;
  *out = NULL;
  for (int i = 0; i < n_in; i++) {
    const char *p = in[i];
    if (!p[0]) continue;
    if (strpbrk(p, "*?[")) {
      glob_t g;
      int rc = glob(p, 0, NULL, &g);
      if (rc == GLOB_NOMATCH || (rc == 0 && g.gl_pathc == 0)) DIE_INPUT("%s: no file matches this pattern", p);
      if (rc != 0) DIE_INPUT("%s: cannot expand pattern", p);
      for (size_t k = 0; k < g.gl_pathc; k++) add_path(n, out, g.gl_pathv[k]);
      globfree(&g);
    } else {
      add_path(n, out, p);
    }
  }
  if (*n == 0) DIE_INPUT("no dataset file given");
}

/* Comma-separated list into an array of strings (caller frees with lv_strv_free). */
static int split_commas(const char *spec, char ***out) {
  int n = 0;
  char **v = NULL, *copy = strdup(spec), *save = NULL;
  CHECK_ALLOC(copy);
  for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
    while (*t == ' ') t++;
    size_t len = strlen(t);
    while (len > 0 && t[len - 1] == ' ') t[--len] = 0;
    if (len) add_path(&n, &v, t);
  }
  free(copy);
  *out = v;
  return n;
}

/* ---- one file ---------------------------------------------------------------------------------- */

typedef struct {
  char *format, *task, *generator, *options, *sources, *created_by;
  int64_t version, vocab, classes, shard_index, shard_count;
  uint64_t seed;
} root_info;

static void root_free(root_info *r) {
  free(r->format); free(r->task); free(r->generator); free(r->options); free(r->sources); free(r->created_by);
}

static hid_t open_file(const char *path) {
  if (access(path, R_OK) != 0) DIE_INPUT("%s: cannot read file: %s", path, strerror(errno));
  struct stat st; /* a FIFO or a device would block or never end */
  if (stat(path, &st) != 0 || !S_ISREG(st.st_mode)) DIE_INPUT("%s: not a regular file", path);
  htri_t is = H5Fis_hdf5(path);
  if (is <= 0) DIE_INPUT("%s: not an HDF5 file%s", path, is < 0 ? " (or a damaged one)" : "");
  hid_t fapl, f;
  CHECK_H5(fapl = H5Pcreate(H5P_FILE_ACCESS));
  /* Take the shared lock where the file system supports it, carry on where it does not. */
  CHECK_H5(H5Pset_file_locking(fapl, 1, 1));
  H5_INPUT(f = H5Fopen(path, H5F_ACC_RDONLY, fapl), path, "truncated or corrupt HDF5 file");
  CHECK_H5(H5Pclose(fapl));
  return f;
}

static int64_t need_i64(hid_t obj, const char *path, const char *where, const char *name) {
  int64_t v = 0;
  int rc = lv_attr_read_i64(obj, path, where, name, &v);
  if (rc == 0) DIE_INPUT("%s: %s: attribute '%s' is missing", path, where, name);
  if (rc < 0) DIE_INPUT("%s: %s: attribute '%s' is not an integer scalar", path, where, name);
  return v;
}

static char *need_str(hid_t obj, const char *path, const char *name) {
  char *s = NULL;
  int rc = lv_attr_read_str(obj, path, "/", name, &s);
  if (rc == 0) DIE_INPUT("%s: root attribute '%s' is missing", path, name);
  if (rc < 0) DIE_INPUT("%s: root attribute '%s' is not a string", path, name);
  return s;
}

static void read_root(hid_t f, const char *path, root_info *r) {
  memset(r, 0, sizeof *r);
  int rc = lv_attr_read_str(f, path, "/", "format", &r->format);
  if (rc <= 0) DIE_INPUT("%s: not a longvq dataset (no string attribute 'format' at the root)", path);
  if (strcmp(r->format, LV_DATASET_FORMAT) != 0)
    DIE_INPUT("%s: not a longvq dataset (format is '%s', expected '%s')", path, r->format, LV_DATASET_FORMAT);
  r->version = need_i64(f, path, "root", "format_version");
  if (r->version < 1 || r->version > LV_DATASET_VERSION)
    DIE_INPUT("%s: dataset format version %lld is not supported (this build reads versions 1 to %d)", path,
              (long long)r->version, LV_DATASET_VERSION);
  r->task = need_str(f, path, "task");
  int lm = !strcmp(r->task, "lm");
  if (!lm && strcmp(r->task, "classification") != 0)
    DIE_INPUT("%s: task '%s' is not 'classification' or 'lm'", path, r->task);
  r->vocab = need_i64(f, path, "root", "vocab_size");
  if (r->vocab < 1 || r->vocab > LV_MAX_VOCAB)
    DIE_INPUT("%s: vocab_size %lld is outside [1, %lld] (the limit of vocabulary sizes)", path, (long long)r->vocab,
              (long long)LV_MAX_VOCAB);
  r->classes = need_i64(f, path, "root", "n_classes");
  if (!lm && r->classes > LV_MAX_CLASSES)
    DIE_INPUT("%s: n_classes %lld is more than the limit %lld", path, (long long)r->classes, (long long)LV_MAX_CLASSES);
  if (lm ? r->classes != 0 : r->classes < 1)
    DIE_INPUT("%s: n_classes %lld is not valid for task '%s'", path, (long long)r->classes, r->task);
  r->shard_index = need_i64(f, path, "root", "shard_index");
  r->shard_count = need_i64(f, path, "root", "shard_count");
  if (r->shard_count < 1 || r->shard_count > LV_DS_MAX_SHARDS || r->shard_index < 0 || r->shard_index >= r->shard_count)
    DIE_INPUT("%s: shard_index %lld / shard_count %lld out of range", path, (long long)r->shard_index,
              (long long)r->shard_count);
  r->generator = need_str(f, path, "generator");
  r->options = need_str(f, path, "options");
  r->sources = need_str(f, path, "sources");
  if (lv_attr_read_str(f, path, "/", "created_by", &r->created_by) <= 0) r->created_by = strdup("");
  if (lv_attr_read_u64(f, path, "/", "seed", &r->seed) < 0)
    DIE_INPUT("%s: root attribute 'seed' is not an integer", path);
}

/* Shards of one dataset agree on everything but their index. */
static void same_dataset(const root_info *a, const char *pa, const root_info *b, const char *pb) {
  const char *what = NULL;
  if (strcmp(a->task, b->task)) what = "task";
  else if (a->vocab != b->vocab) what = "vocab_size";
  else if (a->classes != b->classes) what = "n_classes";
  else if (a->shard_count != b->shard_count) what = "shard_count";
  else if (a->version != b->version) what = "format_version";
  else if (strcmp(a->generator, b->generator)) what = "generator";
  else if (strcmp(a->options, b->options)) what = "options";
  else if (a->seed != b->seed) what = "seed";
  else if (strcmp(a->sources, b->sources)) what = "sources";
  if (what) DIE_INPUT("%s: not a shard of the same dataset as %s (%s differs)", pb, pa, what);
}

static herr_t list_cb(hid_t g, const char *name, const H5L_info_t *info, void *data) {
  (void)g;
  (void)info;
  char *buf = data;
  size_t len = strlen(buf);
  snprintf(buf + len, 512 - len, "%s%s", len ? ", " : "", name);
  return 0;
}

/* Array `arr` of shard s (dataset d, n entries): its size, and its digest (format version >= 2). */
static void read_digest(const lv_dataset *ds, lv_shard *s, hid_t d, int arr, int64_t n) {
  char obj[160];
  snprintf(obj, sizeof obj, "/%s/%s", ds->split, lv_array_names[arr]);
  s->n_elems[arr] = n;
  s->digest[arr] = -1;
  if (ds->version < 2) return;
  uint64_t v = 0;
  int rc = lv_attr_read_u64(d, s->path, obj, LV_DIGEST_ATTR, &v);
  if (rc == 0)
    DIE_INPUT("%s: %s: attribute '%s' is missing (format version %lld stores a digest of every array)", s->path, obj,
              LV_DIGEST_ATTR, (long long)ds->version);
  if (rc < 0 || v > UINT32_MAX)
    DIE_INPUT("%s: %s: attribute '%s' is not a 32-bit digest", s->path, obj, LV_DIGEST_ATTR);
  s->digest[arr] = (int64_t)v;
}

static void read_all(hid_t d, hid_t mem_type, void *buf, const char *path, const char *split, const char *name) {
  H5_INPUT(H5Dread(d, mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf), path, "/%s/%s: read failed", split, name);
}

/* Closes group /split or dataset /split/name (name NULL: the group). */
static void close_obj(hid_t id, const char *path, const char *split, const char *name) {
  H5_INPUT(H5Oclose(id), path, "/%s%s%s: cannot close", split, name ? "/" : "", name ? name : "");
}

static size_t cache_slots(size_t bytes) {
  size_t want = 100 * (bytes / (size_t)LV_DS_CHUNK) + 101, p = want | 1;
  for (;; p += 2) { /* HDF5 advises a prime number of hash slots */
    size_t q = 3;
    while (q * q <= p && p % q) q += 2;
    if (q * q > p) return p;
  }
}

/* Offsets of shard s: start at 0, strictly increase (no empty sample), samples within the length
 * limit (all nonnegative by then, so no difference can wrap), end at n_tokens. */
static void check_offsets(const lv_dataset *ds, const lv_shard *s) {
  const char *p = s->path, *sp = ds->split;
  const int64_t *o = s->offsets;
  if (o[0] != 0) DIE_INPUT("%s: /%s/offsets[0] is %lld, must be 0", p, sp, (long long)o[0]);
  for (int64_t i = 0; i < s->n_samples; i++) {
    int64_t gi = s->global_offset + i;
    if (o[i + 1] == o[i])
      DIE_INPUT("%s: /%s: sample %lld (global index %lld) is empty", p, sp, (long long)i, (long long)gi);
    if (o[i + 1] < o[i]) DIE_INPUT("%s: /%s/offsets decrease at entry %lld (not monotonic)", p, sp, (long long)(i + 1));
    if (o[i + 1] - o[i] > LV_DS_MAX_SAMPLE_LEN)
      DIE_INPUT("%s: /%s: sample %lld (global index %lld) has %lld tokens, more than the limit %lld of a sample", p, sp,
                (long long)i, (long long)gi, (long long)(o[i + 1] - o[i]), (long long)LV_DS_MAX_SAMPLE_LEN);
  }
  if (o[s->n_samples] != s->n_tokens)
    DIE_INPUT("%s: /%s/offsets end at %lld but tokens has %lld entries", p, sp, (long long)o[s->n_samples],
              (long long)s->n_tokens);
}

/* A group attribute that is a count or an index into the split: in [lo, hi]. */
static int64_t need_range(hid_t g, const char *path, const char *where, const char *name, int64_t lo, int64_t hi,
                          const char *limit) {
  int64_t v = need_i64(g, path, where, name);
  if (v < lo || v > hi)
    DIE_INPUT("%s: %s: %s %lld is outside [%lld, %lld]%s", path, where, name, (long long)v, (long long)lo,
              (long long)hi, limit);
  return v;
}

/* The split of one shard: sizes, token dataset, offsets, digests. */
static void open_split(lv_dataset *ds, lv_shard *s, size_t cache) {
  const char *p = s->path, *sp = ds->split;
  if (!lv_h5_has_link(s->file, p, "/", sp)) {
    char names[512] = "";
    H5_INPUT(H5Literate(s->file, H5_INDEX_NAME, H5_ITER_INC, NULL, list_cb, names), p, "/: cannot list its groups");
    DIE_INPUT("%s: no split '%s' in this file (it has: %s)", p, sp, names[0] ? names : "nothing");
  }
  hid_t g, dapl;
  H5_INPUT(g = H5Gopen2(s->file, sp, H5P_DEFAULT), p, "cannot open group /%s", sp);
  char where[80];
  snprintf(where, sizeof where, "/%s", sp);
  const int64_t max_offset = LV_DS_MAX_TOKENS * LV_DS_MAX_SHARDS; /* a global index, below 2^57 */
  s->n_tokens = need_range(g, p, where, "n_tokens", 1, LV_DS_MAX_TOKENS, " (the limit of tokens per file)");
  CHECK_H5(dapl = H5Pcreate(H5P_DATASET_ACCESS));
  CHECK_H5(H5Pset_chunk_cache(dapl, cache_slots(cache), cache, 0.75));
  s->tokens = lv_h5_open_array(g, p, sp, "tokens", s->n_tokens, dapl);
  read_digest(ds, s, s->tokens, LV_ARR_TOKENS, s->n_tokens);
  H5_INPUT(s->tokens_space = H5Dget_space(s->tokens), p, "/%s/tokens: cannot read its shape", sp);
  CHECK_H5(H5Pclose(dapl));
  s->emask = s->emask_space = -1;
  if (ds->task == LV_TASK_LM && lv_h5_has_link(g, p, where, "eval_mask")) {
    s->emask = lv_h5_open_array(g, p, sp, "eval_mask", s->n_tokens, H5P_DEFAULT);
    read_digest(ds, s, s->emask, LV_ARR_EVAL_MASK, s->n_tokens);
    H5_INPUT(s->emask_space = H5Dget_space(s->emask), p, "/%s/eval_mask: cannot read its shape", sp);
  }
  s->token_offset = need_range(g, p, where, "global_token_offset", 0, max_offset, "");
  if (ds->task == LV_TASK_CLASSIFICATION) {
    s->n_samples = need_range(g, p, where, "n_samples", 1, s->n_tokens, " (no sample is empty)");
    s->global_offset = need_range(g, p, where, "global_offset", 0, max_offset, "");
    hid_t od = lv_h5_open_array(g, p, sp, "offsets", s->n_samples + 1, H5P_DEFAULT);
    read_digest(ds, s, od, LV_ARR_OFFSETS, s->n_samples + 1);
    s->offsets = malloc((size_t)(s->n_samples + 1) * sizeof *s->offsets);
    CHECK_ALLOC(s->offsets);
    read_all(od, H5T_NATIVE_INT64, s->offsets, p, sp, "offsets");
    close_obj(od, p, sp, "offsets");
    check_offsets(ds, s);
  }
  close_obj(g, p, sp, NULL);
}

static void read_labels(lv_dataset *ds, lv_shard *s) {
  hid_t g, d;
  int64_t n = s->n_samples;
  H5_INPUT(g = H5Gopen2(s->file, ds->split, H5P_DEFAULT), s->path, "cannot open group /%s", ds->split);
  d = lv_h5_open_array(g, s->path, ds->split, "labels", n, H5P_DEFAULT);
  read_digest(ds, s, d, LV_ARR_LABELS, n);
  int32_t *lbl = ds->labels + s->global_offset;
  read_all(d, H5T_NATIVE_INT32, lbl, s->path, ds->split, "labels");
  for (int64_t i = 0; i < n; i++)
    if (lbl[i] < 0 || lbl[i] >= ds->n_classes)
      DIE_INPUT("%s: /%s/labels: sample %lld (global index %lld) has label %d outside [0, %lld)", s->path,
                ds->split, (long long)i, (long long)(s->global_offset + i), lbl[i], (long long)ds->n_classes);
  close_obj(d, s->path, ds->split, "labels");
  close_obj(g, s->path, ds->split, NULL);
}

static int by_shard_index(const void *a, const void *b) {
  const lv_shard *x = a, *y = b;
  return (x->shard_index > y->shard_index) - (x->shard_index < y->shard_index);
}

/* Shards must tile the global index (and token) space in order, without gaps. */
static void check_tiling(lv_dataset *ds) {
  int64_t next_sample = 0, next_token = 0;
  for (int k = 0; k < ds->n_shards; k++) {
    lv_shard *s = &ds->shards[k];
    if (ds->task == LV_TASK_CLASSIFICATION && s->global_offset != next_sample)
      DIE_INPUT("%s: /%s: global_offset is %lld, expected %lld after the previous shards", s->path, ds->split,
                (long long)s->global_offset, (long long)next_sample);
    if (s->token_offset != next_token)
      DIE_INPUT("%s: /%s: global_token_offset is %lld, expected %lld after the previous shards", s->path,
                ds->split, (long long)s->token_offset, (long long)next_token);
    next_sample += s->n_samples;
    next_token += s->n_tokens;
  }
  ds->n_tokens = next_token;
  for (int k = 0; k < ds->n_shards; k++) {
    lv_shard *s = &ds->shards[k];
    hid_t g;
    H5_INPUT(g = H5Gopen2(s->file, ds->split, H5P_DEFAULT), s->path, "cannot open group /%s", ds->split);
    char where[80];
    snprintf(where, sizeof where, "/%s", ds->split);
    int64_t tt = need_i64(g, s->path, where, "n_tokens_total");
    int64_t st = ds->task == LV_TASK_CLASSIFICATION ? need_i64(g, s->path, where, "n_samples_total") : 0;
    close_obj(g, s->path, ds->split, NULL);
    if (tt != next_token || (ds->task == LV_TASK_CLASSIFICATION && st != next_sample))
      DIE_INPUT("%s: /%s: totals (%lld samples, %lld tokens) disagree with the shards given (%lld, %lld): "
                "missing shards?", s->path, ds->split, (long long)st, (long long)tt, (long long)next_sample,
                (long long)next_token);
  }
  if (ds->task == LV_TASK_CLASSIFICATION) ds->n_samples = next_sample;
}

static void read_name_tables(lv_dataset *ds, hid_t f, const char *path) {
  int rc = lv_attr_read_strv(f, path, "/", "vocab_tokens", &ds->n_vocab_tokens, &ds->vocab_tokens);
  if (rc < 0 || (rc > 0 && ds->n_vocab_tokens != ds->vocab_size))
    DIE_INPUT("%s: attribute 'vocab_tokens' must be %lld strings", path, (long long)ds->vocab_size);
  rc = lv_attr_read_strv(f, path, "/", "class_names", &ds->n_class_names, &ds->class_names);
  if (rc < 0 || (rc > 0 && ds->n_class_names != ds->n_classes))
    DIE_INPUT("%s: attribute 'class_names' must be %lld strings", path, (long long)ds->n_classes);
}

lv_dataset *lv_dataset_open_list(int n_in, const char *const *in, const lv_dataset_opts *opts) {
  lv_h5_quiet();
  if (!opts || !opts->split || !opts->split[0] || strlen(opts->split) >= 64) DIE("lv_dataset_open: bad split name");
  int n;
  char **paths;
  expand(n_in, in, &n, &paths);
  lv_dataset *ds = calloc(1, sizeof *ds);
  CHECK_ALLOC(ds);
  snprintf(ds->split, sizeof ds->split, "%s", opts->split);
  ds->shards = calloc((size_t)n, sizeof *ds->shards);
  CHECK_ALLOC(ds->shards);
  ds->n_shards = n;
  ds->memspace = H5I_INVALID_HID;
  root_info r0, r;
  for (int k = 0; k < n; k++) {
    lv_shard *s = &ds->shards[k];
    s->path = paths[k];
    s->file = open_file(s->path);
    read_root(s->file, s->path, k ? &r : &r0);
    if (k) {
      same_dataset(&r0, ds->shards[0].path, &r, s->path);
      s->shard_index = r.shard_index;
      root_free(&r);
    } else {
      s->shard_index = r0.shard_index;
    }
  }
  free(paths);
  if (r0.shard_count != n)
    DIE_INPUT("%s: the dataset has %lld shards but %d file%s given", ds->shards[0].path,
              (long long)r0.shard_count, n, n == 1 ? " was" : "s were");
  qsort(ds->shards, (size_t)n, sizeof *ds->shards, by_shard_index);
  for (int k = 0; k < n; k++)
    if (ds->shards[k].shard_index != k)
      DIE_INPUT("%s: shard %lld given twice (shard %d missing)", ds->shards[k].path,
                (long long)ds->shards[k].shard_index, k);
  ds->task = strcmp(r0.task, "lm") ? LV_TASK_CLASSIFICATION : LV_TASK_LM;
  ds->vocab_size = r0.vocab;
  ds->n_classes = r0.classes;
  ds->seed = r0.seed;
  ds->version = r0.version;
  ds->attrs[0] = r0.generator;
  ds->attrs[1] = r0.options;
  ds->attrs[2] = r0.sources;
  ds->attrs[3] = r0.created_by;
  ds->attrs[4] = r0.format;
  free(r0.task);
  read_name_tables(ds, ds->shards[0].file, ds->shards[0].path);
  /* The budget is per rank: each shard's token dataset gets an equal part (at least 1 MiB). */
  size_t cache = (opts->chunk_cache_bytes ? opts->chunk_cache_bytes : LV_DS_DEFAULT_CACHE) / (size_t)n;
  if (cache < ((size_t)1 << 20)) cache = (size_t)1 << 20;
  for (int k = 0; k < n; k++) open_split(ds, &ds->shards[k], cache);
  check_tiling(ds);
  ds->has_eval_mask = ds->shards[0].emask >= 0;
  for (int k = 1; k < n; k++)
    if ((ds->shards[k].emask >= 0) != ds->has_eval_mask)
      DIE_INPUT("%s: /%s/eval_mask is %s, but %s in %s: all shards have one or none", ds->shards[k].path, ds->split,
                ds->shards[k].emask >= 0 ? "present" : "missing", ds->has_eval_mask ? "present" : "missing",
                ds->shards[0].path);
  if (ds->task == LV_TASK_CLASSIFICATION) {
    ds->labels = malloc((size_t)ds->n_samples * sizeof *ds->labels);
    CHECK_ALLOC(ds->labels);
    ds->min_len = INT64_MAX;
    for (int k = 0; k < n; k++) {
      lv_shard *s = &ds->shards[k];
      read_labels(ds, s);
      for (int64_t i = 0; i < s->n_samples; i++) {
        int64_t len = s->offsets[i + 1] - s->offsets[i];
        if (len < ds->min_len) ds->min_len = len;
        if (len > ds->max_len) ds->max_len = len;
      }
    }
  } else {
    if (opts->seq_len < 0) DIE("lv_dataset_open: seq_len %lld < 0", (long long)opts->seq_len);
    ds->seq_len = opts->seq_len;
    ds->n_samples = ds->seq_len > 0 ? (ds->n_tokens - 1) / ds->seq_len : 0;
    ds->min_len = ds->max_len = ds->seq_len > 0 ? ds->seq_len + 1 : 0;
  }
  return ds;
}

lv_dataset *lv_dataset_open(const char *spec, const lv_dataset_opts *opts) {
  char **v;
  int n = split_commas(spec ? spec : "", &v);
  lv_dataset *ds = lv_dataset_open_list(n, (const char *const *)v, opts);
  lv_strv_free(n, v);
  return ds;
}

int lv_dataset_has_split(const char *spec, const char *split) {
  lv_h5_quiet();
  char **v, **paths;
  int n = split_commas(spec ? spec : "", &v), np;
  expand(n, (const char *const *)v, &np, &paths);
  hid_t f = open_file(paths[0]);
  root_info r;
  read_root(f, paths[0], &r);
  root_free(&r);
  int has = lv_h5_has_link(f, paths[0], "/", split);
  H5_INPUT(H5Fclose(f), paths[0], "cannot close the file");
  lv_strv_free(n, v);
  lv_strv_free(np, paths);
  return has;
}

typedef struct {
  char (*names)[64];
  int n, cap;
  char bad[64]; /* the link that could not be opened */
} split_list;

/* Groups at the root; an object that cannot be opened stops the iteration (a damaged file must not
 * lose a split silently). */
static herr_t collect_cb(hid_t g, const char *name, const H5L_info_t *info, void *data) {
  (void)info;
  split_list *l = data;
  hid_t o = H5Oopen(g, name, H5P_DEFAULT);
  if (o < 0) {
    snprintf(l->bad, sizeof l->bad, "%s", name);
    return -1;
  }
  int is_group = H5Iget_type(o) == H5I_GROUP;
  if (H5Oclose(o) < 0) return -1;
  if (is_group && l->n < l->cap) snprintf(l->names[l->n++], 64, "%s", name);
  return 0;
}

static int split_rank(const char *s) {
  return !strcmp(s, "train") ? 0 : !strcmp(s, "val") ? 1 : !strcmp(s, "test") ? 2 : 3;
}

int lv_dataset_splits(const char *spec, char names[][64], int cap) {
  lv_h5_quiet();
  char **v, **paths;
  int n = split_commas(spec ? spec : "", &v), np, found = 0;
  expand(n, (const char *const *)v, &np, &paths);
  hid_t f = open_file(paths[0]);
  root_info r;
  read_root(f, paths[0], &r);
  root_free(&r);
  split_list l = {names, 0, cap, ""};
  if (H5Literate(f, H5_INDEX_NAME, H5_ITER_INC, NULL, collect_cb, &l) < 0) {
    if (l.bad[0]) lv_h5_input_fail(__FILE__, __LINE__, paths[0], "/%s: cannot open", l.bad);
    lv_h5_input_fail(__FILE__, __LINE__, paths[0], "/: cannot list its groups");
  }
  H5_INPUT(H5Fclose(f), paths[0], "cannot close the file");
  found = l.n;
  /* Stable order: known splits first, then by name (insertion sort: a handful of names). */
  for (int i = 1; i < found; i++)
    for (int j = i; j > 0; j--) {
      int a = split_rank(names[j - 1]), b = split_rank(names[j]);
      if (a < b || (a == b && strcmp(names[j - 1], names[j]) <= 0)) break;
      char t[64];
      memcpy(t, names[j], 64);
      memcpy(names[j], names[j - 1], 64);
      memcpy(names[j - 1], t, 64);
    }
  lv_strv_free(n, v);
  lv_strv_free(np, paths);
  return found;
}

void lv_file_format(const char *spec, char *buf, size_t cap) {
  lv_h5_quiet();
  char **v, **paths, *fmt = NULL;
  int n = split_commas(spec ? spec : "", &v), np;
  expand(n, (const char *const *)v, &np, &paths);
  hid_t f = open_file(paths[0]);
  int rc = lv_attr_read_str(f, paths[0], "/", "format", &fmt);
  snprintf(buf, cap, "%s", rc > 0 ? fmt : "");
  free(fmt);
  H5_INPUT(H5Fclose(f), paths[0], "cannot close the file");
  lv_strv_free(n, v);
  lv_strv_free(np, paths);
}

void lv_dataset_close(lv_dataset *ds) {
  if (!ds) return;
  for (int k = 0; k < ds->n_shards; k++) {
    lv_shard *s = &ds->shards[k];
    CHECK_H5(H5Sclose(s->tokens_space));
    close_obj(s->tokens, s->path, ds->split, "tokens");
    if (s->emask >= 0) {
      CHECK_H5(H5Sclose(s->emask_space));
      close_obj(s->emask, s->path, ds->split, "eval_mask");
    }
    H5_INPUT(H5Fclose(s->file), s->path, "cannot close the file");
    free(s->offsets);
    free(s->path);
  }
  if (ds->memspace >= 0) CHECK_H5(H5Sclose(ds->memspace));
  for (int i = 0; i < 5; i++) free(ds->attrs[i]);
  lv_strv_free(ds->n_vocab_tokens, ds->vocab_tokens);
  lv_strv_free(ds->n_class_names, ds->class_names);
  free(ds->labels);
  free(ds->shards);
  free(ds);
}

void lv_dataset_identity(const lv_dataset *ds, char *out, size_t cap) {
  uint32_t crc = 0;
  int any = 0;
  for (int k = 0; k < ds->n_shards; k++)
    for (int a = 0; a < LV_N_ARRAYS; a++)
      if (ds->shards[k].digest[a] >= 0) {
        uint32_t d = (uint32_t)ds->shards[k].digest[a];
        crc = lv_crc32(crc, &d, sizeof d);
        any = 1;
      }
  char digest[16] = "none";
  if (any) snprintf(digest, sizeof digest, "%08x", crc);
  snprintf(out, cap, "%lld samples, %lld tokens, vocab %lld, %lld classes, digest %s", (long long)ds->n_samples,
           (long long)ds->n_tokens, (long long)ds->vocab_size, (long long)ds->n_classes, digest);
}
