/* Reading samples by global index (one hyperslab per sample, or per shard piece of an LM window)
 * and the reader's accessors. No allocation after the first read at a given row length: the
 * file dataspaces and the memory dataspace are created once and only their selections change. */
#include <string.h>

#include "io/dataset_internal.h"

/* Shard holding global sample (by_token = 0) or global token (by_token = 1) index i. */
static lv_shard *find_shard(lv_dataset *ds, int64_t i, int by_token) {
  int lo = 0, hi = ds->n_shards - 1;
  while (lo < hi) { /* last shard whose first index is <= i */
    int mid = (lo + hi + 1) / 2;
    int64_t first = by_token ? ds->shards[mid].token_offset : ds->shards[mid].global_offset;
    if (first <= i) lo = mid; else hi = mid - 1;
  }
  return &ds->shards[lo];
}

static void ensure_memspace(lv_dataset *ds, int64_t cap) {
  if (ds->memspace >= 0 && ds->memspace_cap >= cap) return;
  if (ds->memspace >= 0) CHECK_H5(H5Sclose(ds->memspace));
  hsize_t d = (hsize_t)cap;
  CHECK_H5(ds->memspace = H5Screate_simple(1, &d, NULL));
  ds->memspace_cap = cap;
}

/* Entries [off, off+count) of shard s's 1-D dataset `dset` (file dataspace `space`, name `what`)
 * into dst as `mtype`: one hyperslab, the reader's memory dataspace reused. */
static void read_slab(lv_dataset *ds, lv_shard *s, hid_t dset, hid_t space, hid_t mtype, const char *what, int64_t off,
                      int64_t count, void *dst, int64_t gi) {
  hsize_t start = (hsize_t)off, cnt = (hsize_t)count, zero = 0;
  CHECK_H5(H5Sselect_hyperslab(space, H5S_SELECT_SET, &start, NULL, &cnt, NULL));
  CHECK_H5(H5Sselect_hyperslab(ds->memspace, H5S_SELECT_SET, &zero, NULL, &cnt, NULL));
  H5_INPUT(H5Dread(dset, mtype, ds->memspace, space, H5P_DEFAULT, dst), s->path,
           "/%s/%s: reading sample %lld (entries %lld..%lld)", ds->split, what, (long long)gi, (long long)off,
           (long long)(off + count - 1));
}

/* tokens [off, off+count) of shard s (local token indices) into dst[0..count), as int32. */
static void read_range(lv_dataset *ds, lv_shard *s, int64_t off, int64_t count, int32_t *dst, int64_t gi) {
  read_slab(ds, s, s->tokens, s->tokens_space, H5T_NATIVE_INT32, "tokens", off, count, dst, gi);
}

static void check_ids(const lv_dataset *ds, const lv_shard *s, const int32_t *v, int64_t count, int64_t gi,
                      int64_t first_pos) {
  uint32_t vocab = (uint32_t)ds->vocab_size;
  for (int64_t t = 0; t < count; t++)
    if ((uint32_t)v[t] >= vocab) /* negative ids wrap to huge values */
      DIE_INPUT("%s: /%s/tokens: sample %lld (global index), position %lld: token id %d outside vocab_size %lld",
                s->path, ds->split, (long long)gi, (long long)(first_pos + t), v[t], (long long)ds->vocab_size);
}

static int64_t read_classification(lv_dataset *ds, int64_t gi, int32_t *row, int64_t row_len, int truncate) {
  lv_shard *s = find_shard(ds, gi, 0);
  int64_t j = gi - s->global_offset, off = s->offsets[j], len = s->offsets[j + 1] - off;
  if (len > row_len) {
    if (!truncate)
      DIE_INPUT("%s: /%s: sample %lld (global index) has %lld tokens, more than the sequence length %lld "
                "(set data.truncate: true to keep its first %lld)", s->path, ds->split, (long long)gi,
                (long long)len, (long long)row_len, (long long)row_len);
    len = row_len;
  }
  read_range(ds, s, off, len, row, gi);
  check_ids(ds, s, row, len, gi, 0);
  return len;
}

/* eval_mask [off, off+count) of shard s into dst, each entry checked to be 0 or 1. */
static void read_mask_range(lv_dataset *ds, lv_shard *s, int64_t off, int64_t count, uint8_t *dst, int64_t gi) {
  read_slab(ds, s, s->emask, s->emask_space, H5T_NATIVE_UINT8, "eval_mask", off, count, dst, gi);
  for (int64_t t = 0; t < count; t++)
    if (dst[t] > 1)
      DIE_INPUT("%s: /%s/eval_mask[%lld] is %d: must be 0 or 1", s->path, ds->split, (long long)(off + t), dst[t]);
}

/* LM window gi: global tokens [gi*L, gi*L + L] (and their eval_mask entries if emask), possibly
 * spanning shards. */
static void read_window(lv_dataset *ds, int64_t gi, int32_t *row, uint8_t *emask, int64_t row_len) {
  int64_t t = gi * ds->seq_len, done = 0;
  while (done < row_len) {
    lv_shard *s = find_shard(ds, t + done, 1);
    int64_t local = t + done - s->token_offset, take = s->n_tokens - local;
    if (take > row_len - done) take = row_len - done;
    read_range(ds, s, local, take, row + done, gi);
    check_ids(ds, s, row + done, take, gi, done);
    if (emask) read_mask_range(ds, s, local, take, emask + done, gi);
    done += take;
  }
}

void lv_dataset_read(lv_dataset *ds, int64_t n, const int64_t *idx, int32_t *tokens, uint8_t *mask,
                     int32_t *lengths, int32_t *labels, int64_t row_len, int truncate) {
  if (row_len < 1) DIE("lv_dataset_read: row_len %lld < 1", (long long)row_len);
  int lm = ds->task == LV_TASK_LM;
  if (lm && (ds->seq_len < 1 || row_len != ds->seq_len + 1))
    DIE("lv_dataset_read: LM rows hold seq_len + 1 = %lld tokens, got row_len %lld", (long long)(ds->seq_len + 1),
        (long long)row_len);
  ensure_memspace(ds, row_len);
  for (int64_t r = 0; r < n; r++) {
    int64_t gi = idx[r];
    if (gi < 0 || gi >= ds->n_samples)
      DIE("lv_dataset_read: /%s: index %lld outside [0, %lld)", ds->split, (long long)gi, (long long)ds->n_samples);
    int32_t *row = tokens + r * row_len;
    int64_t len = row_len;
    uint8_t *emask = lm && mask && ds->has_eval_mask ? mask + r * row_len : NULL;
    if (lm) read_window(ds, gi, row, emask, row_len);
    else len = read_classification(ds, gi, row, row_len, truncate);
    memset(row + len, 0, (size_t)(row_len - len) * sizeof *row);
    if (mask && !emask) {
      memset(mask + r * row_len, 1, (size_t)len);
      memset(mask + r * row_len + len, 0, (size_t)(row_len - len));
    }
    if (lengths) lengths[r] = (int32_t)len;
    if (labels) {
      if (lm) DIE("lv_dataset_read: an LM dataset has no labels");
      int32_t y = ds->labels[gi];
      if (y < 0 || y >= ds->n_classes) /* checked at open too; cheap insurance against memory bugs */
        DIE_INPUT("%s: /%s/labels: sample %lld (global index) has label %d outside [0, %lld)",
                  find_shard(ds, gi, 0)->path, ds->split, (long long)gi, y, (long long)ds->n_classes);
      labels[r] = y;
    }
  }
}

/* Token `local` of shard s has id `id`, outside the vocab: name the sample and position where the
 * split has samples (classification), as reading that sample would. */
_Noreturn static void bad_stream_id(const lv_dataset *ds, const lv_shard *s, int64_t local, int32_t id) {
  if (ds->task == LV_TASK_CLASSIFICATION) {
    int64_t lo = 0, hi = s->n_samples - 1; /* the last sample whose first token is <= local */
    while (lo < hi) {
      int64_t mid = (lo + hi + 1) / 2;
      if (s->offsets[mid] <= local) lo = mid; else hi = mid - 1;
    }
    DIE_INPUT("%s: /%s/tokens: sample %lld (global index), position %lld: token id %d outside vocab_size %lld",
              s->path, ds->split, (long long)(s->global_offset + lo), (long long)(local - s->offsets[lo]), id,
              (long long)ds->vocab_size);
  }
  DIE_INPUT("%s: /%s/tokens[%lld]: token id %d outside vocab_size %lld", s->path, ds->split, (long long)local, id,
            (long long)ds->vocab_size);
}

void lv_dataset_read_tokens(lv_dataset *ds, int64_t start, int64_t count, int32_t *dst) {
  if (start < 0 || count < 0 || start + count > ds->n_tokens)
    DIE("lv_dataset_read_tokens: [%lld, +%lld) outside %lld tokens", (long long)start, (long long)count,
        (long long)ds->n_tokens);
  if (count == 0) return;
  ensure_memspace(ds, count);
  int64_t done = 0;
  while (done < count) {
    lv_shard *s = find_shard(ds, start + done, 1);
    int64_t local = start + done - s->token_offset, take = s->n_tokens - local;
    if (take > count - done) take = count - done;
    read_range(ds, s, local, take, dst + done, -1);
    for (int64_t t = 0; t < take; t++)
      if ((uint32_t)dst[done + t] >= (uint32_t)ds->vocab_size) bad_stream_id(ds, s, local + t, dst[done + t]);
    done += take;
  }
}

/* ---- accessors -------------------------------------------------------------------------------- */

int64_t lv_dataset_num_samples(const lv_dataset *ds) { return ds->n_samples; }
int64_t lv_dataset_vocab_size(const lv_dataset *ds) { return ds->vocab_size; }
int64_t lv_dataset_num_classes(const lv_dataset *ds) { return ds->n_classes; }
lv_task lv_dataset_task(const lv_dataset *ds) { return ds->task; }
int64_t lv_dataset_max_length(const lv_dataset *ds) { return ds->max_len; }
int64_t lv_dataset_min_length(const lv_dataset *ds) { return ds->min_len; }
int64_t lv_dataset_num_tokens(const lv_dataset *ds) { return ds->n_tokens; }
int lv_dataset_num_shards(const lv_dataset *ds) { return ds->n_shards; }
int lv_dataset_has_eval_mask(const lv_dataset *ds) { return ds->has_eval_mask; }
uint64_t lv_dataset_seed(const lv_dataset *ds) { return ds->seed; }
int lv_dataset_format_version(const lv_dataset *ds) { return (int)ds->version; }
int lv_dataset_has_digests(const lv_dataset *ds) { return ds->version >= 2; }

const char *lv_dataset_shard_path(const lv_dataset *ds, int k) {
  return k >= 0 && k < ds->n_shards ? ds->shards[k].path : NULL;
}

int64_t lv_dataset_length(const lv_dataset *ds, int64_t i) {
  if (i < 0 || i >= ds->n_samples) DIE("lv_dataset_length: index %lld out of range", (long long)i);
  if (ds->task == LV_TASK_LM) return ds->seq_len + 1;
  const lv_shard *s = find_shard((lv_dataset *)ds, i, 0);
  int64_t j = i - s->global_offset;
  return s->offsets[j + 1] - s->offsets[j];
}

int32_t lv_dataset_label(const lv_dataset *ds, int64_t i) {
  if (ds->task != LV_TASK_CLASSIFICATION || i < 0 || i >= ds->n_samples)
    DIE("lv_dataset_label: no label %lld", (long long)i);
  return ds->labels[i];
}

const char *lv_dataset_attr(const lv_dataset *ds, const char *name) {
  static const char *names[5] = {"generator", "options", "sources", "created_by", "format"};
  for (int i = 0; i < 5; i++)
    if (!strcmp(name, names[i])) return ds->attrs[i];
  return NULL;
}

const char *const *lv_dataset_vocab_tokens(const lv_dataset *ds) { return (const char *const *)ds->vocab_tokens; }
const char *const *lv_dataset_class_names(const lv_dataset *ds) { return (const char *const *)ds->class_names; }
