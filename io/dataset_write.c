/* Writer of the longvq-dataset format (docs/dataset-format.md): splits held in memory by the
 * converters are cut into n contiguous shard ranges and written as chunked, shuffled (multi-byte
 * types), deflate-compressed, fletcher32-checksummed 1-D datasets, each with the CRC-32 of its
 * entries (attribute `crc32`), in HDF5's latest file format (checksummed metadata). Object
 * timestamps are off so the same inputs give byte-identical files. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "io/config.h" /* LV_PATH_MAX */
#include "io/dataset_internal.h"
#include "io/digest.h"
#include "trainer/base/log.h"

static size_t dtype_size(lv_dtype t) { return t == LV_DTYPE_U8 ? 1 : t == LV_DTYPE_U16 ? 2 : 4; }

static hid_t dtype_native(lv_dtype t) {
  return t == LV_DTYPE_U8 ? H5T_NATIVE_UINT8 : t == LV_DTYPE_U16 ? H5T_NATIVE_UINT16 : H5T_NATIVE_INT32;
}

static int64_t token_at(const lv_split_data *s, int64_t i) {
  switch (s->tokens_type) {
    case LV_DTYPE_U8: return ((const uint8_t *)s->tokens)[i];
    case LV_DTYPE_U16: return ((const uint16_t *)s->tokens)[i];
    default: return ((const int32_t *)s->tokens)[i];
  }
}

void lv_dataset_shard_name(char *buf, size_t cap, const char *out, int k, int n) {
  if (!out) DIE("lv_dataset_shard_name: no output name");
  if (n == 1) {
    snprintf(buf, cap, "%s", out);
    return;
  }
  size_t len = strlen(out);
  if (len > 3 && !strcmp(out + len - 3, ".h5")) len -= 3;
  snprintf(buf, cap, "%.*s-%05d-of-%05d.h5", (int)len, out, k, n);
}

/* A converter bug must never reach a file: the checks the reader makes, made before writing. */
static void validate(const lv_dataset_meta *m, int n_shards, int n_splits, const lv_split_data *sp) {
  if (m->vocab_size < 1 || m->vocab_size > INT32_MAX) DIE("vocab_size %lld out of range", (long long)m->vocab_size);
  if (m->task == LV_TASK_CLASSIFICATION && m->n_classes < 1) DIE("n_classes %lld < 1", (long long)m->n_classes);
  if (n_splits < 1) DIE("no splits to write");
  for (int s = 0; s < n_splits; s++) {
    const lv_split_data *d = &sp[s];
    int64_t units = m->task == LV_TASK_LM ? d->n_tokens : d->n_samples;
    if (units < n_shards)
      DIE_INPUT("split '%s' has %lld %s, fewer than --shards %d", d->name, (long long)units,
                m->task == LV_TASK_LM ? "tokens" : "samples", n_shards);
    for (int64_t i = 0; i < d->n_tokens; i++) {
      int64_t t = token_at(d, i);
      if (t < 0 || t >= m->vocab_size)
        DIE("split '%s': token %lld = %lld outside vocab %lld", d->name, (long long)i, (long long)t,
            (long long)m->vocab_size);
    }
    if (d->eval_mask && m->task != LV_TASK_LM) DIE("split '%s': eval_mask is for LM datasets only", d->name);
    for (int64_t i = 0; d->eval_mask && i < d->n_tokens; i++)
      if (d->eval_mask[i] > 1) DIE("split '%s': eval_mask[%lld] = %d, not 0 or 1", d->name, (long long)i, d->eval_mask[i]);
    if (m->task == LV_TASK_LM) continue;
    if (d->offsets[0] != 0 || d->offsets[d->n_samples] != d->n_tokens)
      DIE("split '%s': offsets do not span the tokens", d->name);
    for (int64_t i = 0; i < d->n_samples; i++) {
      if (d->offsets[i + 1] <= d->offsets[i]) DIE("split '%s': sample %lld is empty", d->name, (long long)i);
      if (d->labels[i] < 0 || d->labels[i] >= m->n_classes)
        DIE("split '%s': sample %lld label %d outside [0, %lld)", d->name, (long long)i, d->labels[i],
            (long long)m->n_classes);
    }
  }
}

/* CRC-32 of n values of mem_type as the file stores them (file_type: little-endian, its width), which
 * is what the reader recomputes from the file. */
static uint32_t digest(hid_t file_type, hid_t mem_type, int64_t n, const void *data) {
  size_t ms = H5Tget_size(mem_type), fs = H5Tget_size(file_type);
  uint8_t *buf = malloc((size_t)LV_DS_CHUNK * (ms > fs ? ms : fs));
  CHECK_ALLOC(buf);
  uint32_t crc = 0;
  for (int64_t off = 0; off < n; off += LV_DS_CHUNK) {
    size_t cnt = (size_t)(n - off < LV_DS_CHUNK ? n - off : LV_DS_CHUNK);
    memcpy(buf, (const char *)data + (size_t)off * ms, cnt * ms);
    CHECK_H5(H5Tconvert(mem_type, file_type, cnt, buf, NULL, H5P_DEFAULT));
    crc = lv_crc32(crc, buf, cnt * fs);
  }
  free(buf);
  return crc;
}

/* One 1-D dataset of n >= 1 elements, chunked and filtered, with its digest. */
static void write_1d(hid_t g, const char *name, hid_t file_type, hid_t mem_type, int64_t n, const void *data) {
  hsize_t dim = (hsize_t)n, chunk = (hsize_t)(n < LV_DS_CHUNK ? n : LV_DS_CHUNK);
  hid_t sp, dcpl, d;
  CHECK_H5(sp = H5Screate_simple(1, &dim, NULL));
  CHECK_H5(dcpl = H5Pcreate(H5P_DATASET_CREATE));
  CHECK_H5(H5Pset_chunk(dcpl, 1, &chunk));
  if (H5Tget_size(file_type) > 1) CHECK_H5(H5Pset_shuffle(dcpl));
  CHECK_H5(H5Pset_deflate(dcpl, 4));
  CHECK_H5(H5Pset_fletcher32(dcpl));
  CHECK_H5(H5Pset_obj_track_times(dcpl, 0));
  CHECK_H5(d = H5Dcreate2(g, name, file_type, sp, H5P_DEFAULT, dcpl, H5P_DEFAULT));
  CHECK_H5(H5Dwrite(d, mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, data));
  lv_attr_write_u32(d, LV_DIGEST_ATTR, digest(file_type, mem_type, n, data));
  CHECK_H5(H5Dclose(d));
  CHECK_H5(H5Pclose(dcpl));
  CHECK_H5(H5Sclose(sp));
}

static void write_root_attrs(hid_t f, const lv_dataset_meta *m, int k, int n) {
  char created[256];
  snprintf(created, sizeof created, "longvq %s (git %s)", LONGVQ_VERSION, LONGVQ_GIT);
  lv_attr_write_str(f, "format", LV_DATASET_FORMAT);
  lv_attr_write_i64(f, "format_version", LV_DATASET_VERSION);
  lv_attr_write_str(f, "task", m->task == LV_TASK_LM ? "lm" : "classification");
  lv_attr_write_i64(f, "vocab_size", m->vocab_size);
  lv_attr_write_i64(f, "n_classes", m->task == LV_TASK_LM ? 0 : m->n_classes);
  lv_attr_write_str(f, "generator", m->generator ? m->generator : "");
  lv_attr_write_str(f, "options", m->options ? m->options : "");
  lv_attr_write_u64(f, "seed", m->seed);
  lv_attr_write_str(f, "sources", m->sources ? m->sources : "");
  lv_attr_write_str(f, "created_by", created);
  lv_attr_write_i64(f, "shard_index", k);
  lv_attr_write_i64(f, "shard_count", n);
  if (m->vocab_tokens) lv_attr_write_strv(f, "vocab_tokens", m->vocab_size, m->vocab_tokens);
  if (m->class_names && m->task == LV_TASK_CLASSIFICATION)
    lv_attr_write_strv(f, "class_names", m->n_classes, m->class_names);
}

/* Shard k's part of split d: samples (classification) or tokens (LM) [lo, hi) of the split. */
static void write_split(hid_t f, const lv_dataset_meta *m, const lv_split_data *d, int k, int n) {
  hid_t gcpl, g;
  CHECK_H5(gcpl = H5Pcreate(H5P_GROUP_CREATE));
  CHECK_H5(H5Pset_obj_track_times(gcpl, 0));
  CHECK_H5(g = H5Gcreate2(f, d->name, H5P_DEFAULT, gcpl, H5P_DEFAULT));
  size_t es = dtype_size(d->tokens_type);
  hid_t ttype = lv_small_int_type(m->vocab_size);
  if (m->task == LV_TASK_LM) {
    int64_t lo = d->n_tokens * k / n, hi = d->n_tokens * (k + 1) / n;
    lv_attr_write_i64(g, "n_tokens", hi - lo);
    lv_attr_write_i64(g, "global_token_offset", lo);
    lv_attr_write_i64(g, "n_tokens_total", d->n_tokens);
    write_1d(g, "tokens", ttype, dtype_native(d->tokens_type), hi - lo, (const char *)d->tokens + (size_t)lo * es);
    if (d->eval_mask) write_1d(g, "eval_mask", H5T_STD_U8LE, H5T_NATIVE_UINT8, hi - lo, d->eval_mask + lo);
  } else {
    int64_t lo = d->n_samples * k / n, hi = d->n_samples * (k + 1) / n, ns = hi - lo;
    int64_t t0 = d->offsets[lo], t1 = d->offsets[hi];
    int64_t *off = malloc((size_t)(ns + 1) * sizeof *off);
    CHECK_ALLOC(off);
    for (int64_t i = 0; i <= ns; i++) off[i] = d->offsets[lo + i] - t0; /* local to the shard */
    lv_attr_write_i64(g, "n_samples", ns);
    lv_attr_write_i64(g, "global_offset", lo);
    lv_attr_write_i64(g, "n_samples_total", d->n_samples);
    lv_attr_write_i64(g, "n_tokens", t1 - t0);
    lv_attr_write_i64(g, "global_token_offset", t0);
    lv_attr_write_i64(g, "n_tokens_total", d->n_tokens);
    write_1d(g, "tokens", ttype, dtype_native(d->tokens_type), t1 - t0, (const char *)d->tokens + (size_t)t0 * es);
    write_1d(g, "offsets", H5T_STD_I64LE, H5T_NATIVE_INT64, ns + 1, off);
    write_1d(g, "labels", lv_small_int_type(m->n_classes), H5T_NATIVE_INT32, ns, d->labels + lo);
    free(off);
  }
  CHECK_H5(H5Gclose(g));
  CHECK_H5(H5Pclose(gcpl));
}

/* mkdir -p of the directory part of `path`. */
static void make_parent_dirs(const char *path) {
  char buf[4096];
  snprintf(buf, sizeof buf, "%s", path);
  for (char *p = buf + 1; *p; p++) {
    if (*p != '/') continue;
    *p = 0;
    if (mkdir(buf, 0777) != 0 && errno != EEXIST) DIE_INPUT("%s: cannot create directory: %s", buf, strerror(errno));
    *p = '/';
  }
}

void lv_dataset_write(const char *out, int n_shards, int force, const lv_dataset_meta *m, int n_splits,
                      const lv_split_data *splits) {
  if (n_shards < 1 || n_shards > 99999) DIE_INPUT("--shards %d: must be in [1, 99999]", n_shards);
  validate(m, n_shards, n_splits, splits);
  char name[LV_PATH_MAX], tmp[LV_PATH_MAX + sizeof ".tmp"];
  for (int k = 0; k < n_shards; k++) { /* refuse before writing anything */
    lv_dataset_shard_name(name, sizeof name, out, k, n_shards);
    if (!force && access(name, F_OK) == 0) DIE_INPUT("%s: exists (use --force to overwrite)", name);
  }
  make_parent_dirs(out);
  lv_h5_quiet();
  for (int k = 0; k < n_shards; k++) {
    lv_dataset_shard_name(name, sizeof name, out, k, n_shards);
    snprintf(tmp, sizeof tmp, "%s.tmp", name);
    log_progress("writing %s (shard %d of %d)", name, k + 1, n_shards);
    hid_t fcpl, fapl, f;
    CHECK_H5(fcpl = H5Pcreate(H5P_FILE_CREATE));
    CHECK_H5(H5Pset_obj_track_times(fcpl, 0));
    CHECK_H5(fapl = H5Pcreate(H5P_FILE_ACCESS));
    lv_h5_latest_format(fapl);
    H5_INPUT(f = H5Fcreate(tmp, H5F_ACC_TRUNC, fcpl, fapl), tmp, "cannot create file");
    write_root_attrs(f, m, k, n_shards);
    for (int s = 0; s < n_splits; s++) write_split(f, m, &splits[s], k, n_shards);
    CHECK_H5(H5Fclose(f));
    CHECK_H5(H5Pclose(fapl));
    CHECK_H5(H5Pclose(fcpl));
    if (rename(tmp, name) != 0) DIE_INPUT("%s: cannot rename to %s: %s", tmp, name, strerror(errno));
  }
  log_progress_done();
}
