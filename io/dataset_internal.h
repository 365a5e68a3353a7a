/* Private to io/dataset*.c and io/data_*.c: the reader's state and small HDF5 helpers. */
#ifndef LONGVQ_DATASET_INTERNAL_H
#define LONGVQ_DATASET_INTERNAL_H

#include <hdf5.h>
#include <stdint.h>

#include "io/dataset.h"
#include "trainer/base/check.h"

/* Chunk length (elements) of every 1-D dataset we write: 64 Ki elements keeps a random read of
 * one sample (~1-2 chunks) cheap while compressing well. */
#define LV_DS_CHUNK ((int64_t)1 << 16)
#define LV_DS_DEFAULT_CACHE ((size_t)4 << 20)

/* A failed HDF5 call on a user's file: one line naming the file and what we were doing, with the
 * most specific HDF5 message, exit code 2. */
#define H5_INPUT(call, path, ...) do { if ((long long)(call) < 0) \
    lv_h5_input_fail(__FILE__, __LINE__, path, __VA_ARGS__); } while (0)
_Noreturn void lv_h5_input_fail(const char *file, int line, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Stop HDF5 from printing its error stack: we print one line ourselves. Process-wide. */
void lv_h5_quiet(void);

/* Attributes. Strings are written variable-length UTF-8 (h5py reads them as str). */
void lv_attr_write_str(hid_t obj, const char *name, const char *value);
void lv_attr_write_i64(hid_t obj, const char *name, int64_t value);
void lv_attr_write_u64(hid_t obj, const char *name, uint64_t value);
void lv_attr_write_strv(hid_t obj, const char *name, int64_t n, const char *const *values);
/* Readers return 1 if found, 0 if absent, -1 if present with the wrong type or shape.
 * Strings (fixed or variable length) come back malloc'd. Integers of any width/sign. */
int lv_attr_read_str(hid_t obj, const char *name, char **out);
int lv_attr_read_i64(hid_t obj, const char *name, int64_t *out);
int lv_attr_read_u64(hid_t obj, const char *name, uint64_t *out);
int lv_attr_read_strv(hid_t obj, const char *name, int64_t *n, char ***out);
void lv_strv_free(int64_t n, char **v);

/* Smallest stored integer type for values in [0, n): uint8, uint16 or int32 (file types). */
hid_t lv_small_int_type(int64_t n);

typedef struct {
  char *path;
  hid_t file;
  hid_t tokens, tokens_space;  /* the split's /tokens and its file dataspace (selection reused) */
  hid_t emask, emask_space;    /* LM: the split's optional /eval_mask and its dataspace; -1 if absent */
  int64_t n_samples;           /* classification: samples in this shard */
  int64_t global_offset;       /* classification: global index of its first sample */
  int64_t n_tokens;            /* tokens in this shard's split */
  int64_t token_offset;        /* LM: global token index of its first token */
  int64_t *offsets;            /* classification: (n_samples + 1), local token offsets */
  int64_t shard_index;
} lv_shard;

struct lv_dataset {
  char split[64];
  lv_task task;
  int64_t vocab_size, n_classes, seq_len;
  int n_shards;
  int has_eval_mask;           /* LM: every shard has /eval_mask (all or none may) */
  lv_shard *shards;            /* sorted by shard_index */
  int64_t n_samples, n_tokens, min_len, max_len;
  int32_t *labels;             /* classification: (n_samples), global order */
  hid_t memspace;              /* 1-D (memspace_cap) selection target, reused by every read */
  int64_t memspace_cap;
  uint64_t seed;
  char *attrs[5];              /* generator, options, sources, created_by, format (shard 0) */
  int64_t n_vocab_tokens, n_class_names;
  char **vocab_tokens, **class_names;
};

#endif
