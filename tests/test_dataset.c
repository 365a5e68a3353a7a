/* Dataset writer/reader round trips: uint8, uint16 and int32 tokens; classification and LM;
 * one file against 3-4 shards (glob, comma list in any order) for the same global indices;
 * truncation, padding, masks, lengths, labels; the stored HDF5 types are the smallest; the
 * digests (format version 2) match a CRC-32 computed here, and a changed entry is found. */
#include <hdf5.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "io/dataset.h"
#include "tests/test_util.h"

static char dir[64];

static uint64_t mix(uint64_t x) { /* splitmix64: test data independent of the code under test */
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

typedef struct {
  int64_t n, n_tokens, vocab, classes;
  int32_t *tok; /* reference values */
  int64_t *off;
  int32_t *lbl;
  void *typed;  /* tokens in the writer's input type */
  lv_dtype type;
} ref_split;

/* n samples of lengths 1..maxlen, ids < vocab, labels < classes. */
static ref_split make_split(int64_t n, int64_t maxlen, int64_t vocab, int64_t classes, uint64_t seed, lv_dtype type) {
  ref_split r = {n, 0, vocab, classes, NULL, NULL, NULL, NULL, type};
  r.off = malloc((size_t)(n + 1) * sizeof *r.off);
  r.lbl = malloc((size_t)n * sizeof *r.lbl);
  r.off[0] = 0;
  for (int64_t i = 0; i < n; i++) {
    r.off[i + 1] = r.off[i] + 1 + (int64_t)(mix(seed * 1000003 + (uint64_t)i) % (uint64_t)maxlen);
    r.lbl[i] = (int32_t)(mix(seed + 7 * (uint64_t)i) % (uint64_t)classes);
  }
  r.n_tokens = r.off[n];
  r.tok = malloc((size_t)r.n_tokens * sizeof *r.tok);
  size_t es = type == LV_DTYPE_U8 ? 1 : type == LV_DTYPE_U16 ? 2 : 4;
  r.typed = malloc((size_t)r.n_tokens * es);
  for (int64_t t = 0; t < r.n_tokens; t++) {
    int32_t v = (int32_t)(mix(seed ^ (0xABCDull + (uint64_t)t)) % (uint64_t)vocab);
    r.tok[t] = v;
    if (type == LV_DTYPE_U8) ((uint8_t *)r.typed)[t] = (uint8_t)v;
    else if (type == LV_DTYPE_U16) ((uint16_t *)r.typed)[t] = (uint16_t)v;
    else ((int32_t *)r.typed)[t] = v;
  }
  return r;
}

static void free_split(ref_split *r) {
  free(r->tok); free(r->off); free(r->lbl); free(r->typed);
}

static lv_split_data as_data(const char *name, const ref_split *r, int lm) {
  lv_split_data d = {name, r->n, r->n_tokens, r->typed, r->type, lm ? NULL : r->off, lm ? NULL : r->lbl, NULL};
  return d;
}

static void path(char *buf, const char *name) { snprintf(buf, 256, "%s/%s", dir, name); }

/* Read `n` indices from ds and compare with the reference, row length L. */
static void check_read(lv_dataset *ds, const ref_split *r, const int64_t *idx, int64_t n, int64_t L, int truncate) {
  int32_t *tok = malloc((size_t)(n * L) * sizeof *tok), *len = malloc((size_t)n * sizeof *len);
  int32_t *lbl = malloc((size_t)n * sizeof *lbl);
  uint8_t *mask = malloc((size_t)(n * L));
  memset(tok, 0x7f, (size_t)(n * L) * sizeof *tok); /* garbage that must be overwritten */
  memset(mask, 9, (size_t)(n * L));
  lv_dataset_read(ds, n, idx, tok, mask, len, lbl, L, truncate);
  int bad = 0;
  for (int64_t k = 0; k < n && bad < 5; k++) {
    int64_t i = idx[k], full = r->off[i + 1] - r->off[i], want = full < L ? full : L;
    if (len[k] != want || lbl[k] != r->lbl[i]) {
      bad++;
      EXPECT(0, "sample %lld: length %d (want %lld) label %d (want %d)", (long long)i, len[k], (long long)want,
             lbl[k], r->lbl[i]);
    }
    for (int64_t t = 0; t < L; t++) {
      int32_t w = t < want ? r->tok[r->off[i] + t] : 0;
      if (tok[k * L + t] != w || mask[k * L + t] != (t < want)) {
        bad++;
        EXPECT(0, "sample %lld pos %lld: token %d mask %d, want %d %d", (long long)i, (long long)t, tok[k * L + t],
               mask[k * L + t], w, t < want);
        break;
      }
    }
  }
  EXPECT(bad == 0, "read mismatches");
  free(tok); free(len); free(lbl); free(mask);
}

static int64_t *random_indices(int64_t n, int64_t range, uint64_t seed) {
  int64_t *v = malloc((size_t)n * sizeof *v);
  for (int64_t k = 0; k < n; k++) v[k] = (int64_t)(mix(seed + (uint64_t)k) % (uint64_t)range);
  v[0] = range - 1; /* always include both ends */
  if (n > 1) v[1] = 0;
  return v;
}

static size_t stored_size(const char *file, const char *dset) {
  hid_t f = H5Fopen(file, H5F_ACC_RDONLY, H5P_DEFAULT), d = H5Dopen2(f, dset, H5P_DEFAULT), t = H5Dget_type(d);
  size_t s = H5Tget_size(t);
  H5Tclose(t); H5Dclose(d); H5Fclose(f);
  return s;
}

/* The `crc32` attribute of dataset `dset` of `file`. */
static uint32_t stored_digest(const char *file, const char *dset) {
  hid_t f = H5Fopen(file, H5F_ACC_RDONLY, H5P_DEFAULT), d = H5Dopen2(f, dset, H5P_DEFAULT);
  hid_t a = H5Aopen(d, "crc32", H5P_DEFAULT);
  uint32_t v = 0;
  if (a < 0 || H5Aread(a, H5T_NATIVE_UINT32, &v) < 0) v = 0xDEADBEEF;
  H5Aclose(a); H5Dclose(d); H5Fclose(f);
  return v;
}

/* The digest as docs/dataset-format.md defines it: CRC-32 of the values, each little-endian in
 * `width` bytes (the stored type). */
static uint32_t ref_digest(const int32_t *v, int64_t n, size_t width) {
  uLong crc = crc32(0L, Z_NULL, 0);
  for (int64_t i = 0; i < n; i++) {
    unsigned char b[4];
    for (size_t k = 0; k < width; k++) b[k] = (unsigned char)((uint32_t)v[i] >> (8 * k));
    crc = crc32(crc, b, (uInt)width);
  }
  return (uint32_t)crc;
}

static void classification_case(lv_dtype type, int64_t vocab, int64_t classes, size_t want_tok_bytes,
                                size_t want_lbl_bytes, const char *stem) {
  ref_split tr = make_split(300, 130, vocab, classes, 11 + (uint64_t)type, type);
  ref_split va = make_split(40, 20, vocab, classes, 99 + (uint64_t)type, type);
  lv_split_data sp[2] = {as_data("train", &tr, 0), as_data("val", &va, 0)};
  lv_dataset_meta m = {LV_TASK_CLASSIFICATION, vocab, classes, "test_dataset", "--x 1", 42, "a.txt\nb.txt", NULL, NULL};
  char one[256], out3[256], name[128];
  snprintf(name, sizeof name, "%s.h5", stem);
  path(one, name);
  path(out3, name); /* three shards: stem-0000k-of-00003.h5 */
  lv_dataset_write(one, 1, 0, &m, 2, sp);
  lv_dataset_write(out3, 3, 1, &m, 2, sp);  /* force: the names differ from `one` anyway */
  char shard1[300];
  lv_dataset_shard_name(shard1, sizeof shard1, out3, 1, 3);
  EXPECT(access(shard1, F_OK) == 0, "shard file %s", shard1);
  EXPECT(stored_size(one, "/train/tokens") == want_tok_bytes, "token bytes %zu", stored_size(one, "/train/tokens"));
  EXPECT(stored_size(one, "/train/labels") == want_lbl_bytes, "label bytes %zu", stored_size(one, "/train/labels"));
  EXPECT(stored_size(one, "/train/offsets") == 8, "offsets are int64");

  lv_dataset_opts o = {"train", 0, 1 << 16};
  lv_dataset *a = lv_dataset_open(one, &o);
  EXPECT(lv_dataset_num_samples(a) == 300, "n %lld", (long long)lv_dataset_num_samples(a));
  EXPECT(lv_dataset_vocab_size(a) == vocab && lv_dataset_num_classes(a) == classes, "vocab/classes");
  EXPECT(lv_dataset_task(a) == LV_TASK_CLASSIFICATION, "task");
  EXPECT(lv_dataset_num_tokens(a) == tr.n_tokens, "tokens");
  EXPECT(!strcmp(lv_dataset_attr(a, "generator"), "test_dataset") && !strcmp(lv_dataset_attr(a, "options"), "--x 1") &&
         !strcmp(lv_dataset_attr(a, "sources"), "a.txt\nb.txt") && lv_dataset_seed(a) == 42, "provenance");
  int64_t mx = 0, mn = 1 << 30;
  for (int64_t i = 0; i < 300; i++) {
    int64_t l = tr.off[i + 1] - tr.off[i];
    EXPECT(lv_dataset_length(a, i) == l && lv_dataset_label(a, i) == tr.lbl[i], "length/label %lld", (long long)i);
    if (l > mx) mx = l;
    if (l < mn) mn = l;
  }
  EXPECT(lv_dataset_max_length(a) == mx && lv_dataset_min_length(a) == mn, "max/min length");
  int64_t *idx = random_indices(64, 300, 5);
  check_read(a, &tr, idx, 64, 130, 0);  /* every sample fits */
  check_read(a, &tr, idx, 64, 48, 1);   /* truncated to 48 */
  check_read(a, &tr, idx, 64, 130, 0);  /* back to a longer row: reuses the reader */

  /* Same global indices through the shards: glob, and a comma list in scrambled order. */
  char glob[300], list[1000], s0[300], s2[300];
  snprintf(glob, sizeof glob, "%s/%s-*-of-00003.h5", dir, stem);
  lv_dataset_shard_name(s0, sizeof s0, out3, 0, 3);
  lv_dataset_shard_name(s2, sizeof s2, out3, 2, 3);
  snprintf(list, sizeof list, "%s, %s,%s", s2, s0, shard1);
  const char *specs[2] = {glob, list};
  for (int k = 0; k < 2; k++) {
    lv_dataset *b = lv_dataset_open(specs[k], &o);
    EXPECT(lv_dataset_num_shards(b) == 3 && lv_dataset_num_samples(b) == 300, "sharded sizes (%s)", specs[k]);
    EXPECT(lv_dataset_max_length(b) == mx, "sharded max length");
    check_read(b, &tr, idx, 64, 130, 0);
    check_read(b, &tr, idx, 64, 17, 1);
    lv_dataset_close(b);
  }
  /* Digests: every array of every shard (3 x tokens, offsets of n_k + 1 entries, labels) matches,
   * and the stored value is the documented CRC-32, computed here from the reference values. */
  lv_verify_stats st;
  char err[512] = "";
  lv_dataset *b = lv_dataset_open(glob, &o);
  EXPECT(lv_dataset_has_digests(b) && lv_dataset_format_version(b) == LV_DATASET_VERSION, "version 2, digests");
  EXPECT(lv_dataset_verify(b, &st, err, sizeof err) == 0 && st.n_arrays == 9, "digests of 3 shards: %s", err);
  EXPECT(st.bytes == tr.n_tokens * (int64_t)want_tok_bytes + 303 * 8 + 300 * (int64_t)want_lbl_bytes, "bytes %lld",
         (long long)st.bytes);
  lv_dataset_close(b);
  EXPECT(stored_digest(one, "/train/tokens") == ref_digest(tr.tok, tr.n_tokens, want_tok_bytes), "tokens digest");
  EXPECT(stored_digest(one, "/train/labels") == ref_digest(tr.lbl, 300, want_lbl_bytes), "labels digest");
  EXPECT(stored_digest(one, "/val/tokens") == ref_digest(va.tok, va.n_tokens, want_tok_bytes), "val tokens digest");

  lv_dataset_opts ov = {"val", 0, 0};
  lv_dataset *v = lv_dataset_open(glob, &ov);
  int64_t *vi = random_indices(40, 40, 9);
  check_read(v, &va, vi, 40, 20, 0);
  lv_dataset_close(v);

  char names[8][64];
  EXPECT(lv_dataset_splits(glob, names, 8) == 2 && !strcmp(names[0], "train") && !strcmp(names[1], "val"), "splits");
  EXPECT(lv_dataset_has_split(one, "val") && !lv_dataset_has_split(one, "test"), "has_split");
  char fmt[64];
  lv_file_format(one, fmt, sizeof fmt);
  EXPECT(!strcmp(fmt, LV_DATASET_FORMAT), "format '%s'", fmt);
  lv_dataset_close(a);
  free(idx); free(vi);
  free_split(&tr); free_split(&va);
}

/* One token of a written file changed in place (a valid chunk, Fletcher32 recomputed by HDF5: only
 * the digest can tell): lv_dataset_verify names the file and the array. */
static void tamper_case(void) {
  enum { NT = 100000 }; /* two 64 Ki chunks */
  uint8_t *tok = malloc(NT);
  for (int64_t t = 0; t < NT; t++) tok[t] = (uint8_t)mix((uint64_t)t);
  lv_split_data sp[1] = {{"train", 0, NT, tok, LV_DTYPE_U8, NULL, NULL, NULL}};
  lv_dataset_meta m = {LV_TASK_LM, 256, 0, "test_dataset tamper", "", 1, "", NULL, NULL};
  char file[256], err[512] = "";
  path(file, "tamper.h5");
  lv_dataset_write(file, 1, 0, &m, 1, sp);
  lv_dataset_opts o = {"train", 0, 0};
  lv_dataset *ds = lv_dataset_open(file, &o);
  EXPECT(lv_dataset_verify(ds, NULL, err, sizeof err) == 0, "untouched: %s", err);
  lv_dataset_close(ds);
  hid_t f = H5Fopen(file, H5F_ACC_RDWR, H5P_DEFAULT), d = H5Dopen2(f, "/train/tokens", H5P_DEFAULT);
  hid_t fs = H5Dget_space(d), ms;
  hsize_t at = 70000, one = 1;
  uint8_t v = (uint8_t)(tok[at] + 1);
  ms = H5Screate_simple(1, &one, NULL);
  H5Sselect_hyperslab(fs, H5S_SELECT_SET, &at, NULL, &one, NULL);
  EXPECT(H5Dwrite(d, H5T_NATIVE_UINT8, ms, fs, H5P_DEFAULT, &v) >= 0, "tamper");
  H5Sclose(ms); H5Sclose(fs); H5Dclose(d); H5Fclose(f);
  ds = lv_dataset_open(file, &o);
  EXPECT(lv_dataset_verify(ds, NULL, err, sizeof err) == 1 && strstr(err, "tamper.h5: /train/tokens: digest mismatch"),
         "one changed token: '%s'", err);
  lv_dataset_close(ds);
  free(tok);
}

static void lm_case(void) {
  ref_split s = make_split(1, 10007, 256, 1, 5, LV_DTYPE_U8); /* one "sample" = the stream */
  lv_split_data sp[1] = {as_data("train", &s, 1)};
  const char *vt[256];
  char names[256][4];
  for (int i = 0; i < 256; i++) {
    snprintf(names[i], 4, "%d", i);
    vt[i] = names[i];
  }
  lv_dataset_meta m = {LV_TASK_LM, 256, 0, "test_dataset lm", "", 1, "", vt, NULL};
  char one[256], four[256];
  path(one, "lm.h5");
  path(four, "lm4.h5");
  lv_dataset_write(one, 1, 0, &m, 1, sp);
  lv_dataset_write(four, 4, 0, &m, 1, sp);
  char glob[300];
  snprintf(glob, sizeof glob, "%s/lm4-*.h5", dir);
  const int64_t L = 64, W = L + 1, n_win = (s.n_tokens - 1) / L;
  int32_t *a = malloc((size_t)(n_win * W) * sizeof *a), *b = malloc((size_t)(n_win * W) * sizeof *b);
  uint8_t *mask = malloc((size_t)(n_win * W));
  int32_t *len = malloc((size_t)n_win * sizeof *len);
  int64_t *idx = malloc((size_t)n_win * sizeof *idx);
  for (int64_t i = 0; i < n_win; i++) idx[i] = n_win - 1 - i; /* reverse order */
  lv_dataset_opts o = {"train", L, 0};
  lv_dataset *d1 = lv_dataset_open(one, &o), *d4 = lv_dataset_open(glob, &o);
  EXPECT(lv_dataset_task(d1) == LV_TASK_LM && lv_dataset_num_classes(d1) == 0, "lm task");
  EXPECT(lv_dataset_num_samples(d1) == n_win && lv_dataset_num_samples(d4) == n_win, "windows %lld",
         (long long)lv_dataset_num_samples(d1));
  EXPECT(lv_dataset_max_length(d1) == W && lv_dataset_length(d4, 3) == W, "window length");
  EXPECT(lv_dataset_vocab_tokens(d4) && !strcmp(lv_dataset_vocab_tokens(d4)[200], "200"), "vocab table");
  lv_dataset_read(d1, n_win, idx, a, mask, len, NULL, W, 0);
  lv_dataset_read(d4, n_win, idx, b, NULL, NULL, NULL, W, 0);
  int bad = 0;
  for (int64_t k = 0; k < n_win; k++) {
    int64_t i = idx[k];
    for (int64_t t = 0; t < W; t++)
      if (a[k * W + t] != s.tok[i * L + t] || mask[k * W + t] != 1) bad++;
    if (len[k] != W) bad++;
  }
  EXPECT(bad == 0, "lm windows differ from the stream in %d places", bad);
  EXPECT(!memcmp(a, b, (size_t)(n_win * W) * sizeof *a), "4 shards read differently from 1 file");
  int32_t raw[3000];
  lv_dataset_read_tokens(d4, 1000, 3000, raw); /* spans shard boundaries at 2501 */
  EXPECT(!memcmp(raw, s.tok + 1000, sizeof raw), "read_tokens across shards");
  lv_dataset_close(d1);
  lv_dataset_close(d4);
  free(a); free(b); free(mask); free(len); free(idx);
  free_split(&s);
}

int main(void) {
  snprintf(dir, sizeof dir, "/tmp/test_dataset.XXXXXX");
  if (!mkdtemp(dir)) return 2;
  classification_case(LV_DTYPE_U8, 200, 5, 1, 1, "u8");
  classification_case(LV_DTYPE_U16, 3000, 300, 2, 2, "u16");
  classification_case(LV_DTYPE_I32, 70000, 70000, 4, 4, "i32");
  classification_case(LV_DTYPE_I32, 256, 10, 1, 1, "narrowed"); /* int32 input, vocab 256: stored as uint8 */
  lm_case();
  tamper_case();
  char cmd[128];
  snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
  if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
  return tu_finish("test_dataset");
}
