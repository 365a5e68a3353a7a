/* Private to io/dataset*.c and io/data_*.c: the reader's state and small HDF5 helpers. */
#ifndef LONGVQ_DATASET_INTERNAL_H
#define LONGVQ_DATASET_INTERNAL_H

#include <hdf5.h>
#include <stdint.h>

#include "io/dataset.h"
#include "io/digest.h" /* LV_DIGEST_ATTR, lv_crc32 */
#include "layers/params.h" /* LV_MAX_VOCAB, LV_MAX_CLASSES */
#include "trainer/base/check.h"

/* Chunk length (elements) of every 1-D dataset we write: 64 Ki elements keeps a random read of
 * one sample (~1-2 chunks) cheap while compressing well. */
#define LV_DS_CHUNK ((int64_t)1 << 16)
#define LV_DS_DEFAULT_CACHE ((size_t)4 << 20)

/* A failed HDF5 call on a user's file: one line naming the file and the object (and what we were
 * doing), with the most specific HDF5 message, exit code 2. Every HDF5 call that touches a dataset
 * file being read goes through it: a damaged file is an error naming itself, never "HDF5 error at
 * io/dataset.c:123". */
#define H5_INPUT(call, path, ...) do { if ((long long)(call) < 0) \
    lv_h5_input_fail(__FILE__, __LINE__, path, __VA_ARGS__); } while (0)
_Noreturn void lv_h5_input_fail(const char *file, int line, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Stop HDF5 from printing its error stack: we print one line ourselves. Process-wide. */
void lv_h5_quiet(void);

/* The file's bytes as the format version 2 writer lays them out: the latest HDF5 file format that
 * HDF5 1.10 knows, whose metadata (superblock, object headers, B-trees, heaps' indexes) carries
 * checksums. Applied to a file-access property list. */
void lv_h5_latest_format(hid_t fapl);

/* Attributes. Strings are written variable-length UTF-8 (h5py reads them as str). */
void lv_attr_write_str(hid_t obj, const char *name, const char *value);
void lv_attr_write_i64(hid_t obj, const char *name, int64_t value);
void lv_attr_write_u32(hid_t obj, const char *name, uint32_t value);
void lv_attr_write_u64(hid_t obj, const char *name, uint64_t value);
void lv_attr_write_strv(hid_t obj, const char *name, int64_t n, const char *const *values);
/* Readers return 1 if found, 0 if absent, -1 if present with the wrong type or shape.
 * Strings (fixed or variable length) come back malloc'd. Integers of any width/sign. An HDF5
 * failure while reading is an input error naming `path`, the object `where` ("/", "/train", ...)
 * and the attribute (exit 2). */
int lv_attr_read_str(hid_t obj, const char *path, const char *where, const char *name, char **out);
int lv_attr_read_i64(hid_t obj, const char *path, const char *where, const char *name, int64_t *out);
int lv_attr_read_u64(hid_t obj, const char *path, const char *where, const char *name, uint64_t *out);
int lv_attr_read_strv(hid_t obj, const char *path, const char *where, const char *name, int64_t *n, char ***out);
void lv_strv_free(int64_t n, char **v);

/* Does `obj` (called `where` in messages) have a link `name`? HDF5 failures are input errors. */
int lv_h5_has_link(hid_t obj, const char *path, const char *where, const char *name);
/* Opens /split/name of group g: a 1-D integer dataset (at most 4 bytes for "tokens") of exactly n >= 1
 * entries, every chunk of it stored (HDF5 reads what is not stored as zeros); else an input error. */
hid_t lv_h5_open_array(hid_t g, const char *path, const char *split, const char *name, int64_t n, hid_t dapl);

/* Smallest stored integer type for values in [0, n): uint8, uint16 or int32 (file types). */
hid_t lv_small_int_type(int64_t n);

/* Limits of what a file may declare (beyond them: exit 2 naming the field and the limit), so that
 * no size read from a file can wrap an int64 product or sum: tokens per shard file, shards, and
 * (lengths are int32 in lv_dataset_read) tokens per sample. Totals over shards stay below 2^57. */
#define LV_DS_MAX_TOKENS ((int64_t)1 << 40)
#define LV_DS_MAX_SHARDS 99999
#define LV_DS_MAX_SAMPLE_LEN ((int64_t)INT32_MAX)

/* The arrays of a split and their digests (format version 2: attribute `crc32` on each). */
enum { LV_ARR_TOKENS, LV_ARR_OFFSETS, LV_ARR_LABELS, LV_ARR_EVAL_MASK, LV_N_ARRAYS };
extern const char *const lv_array_names[LV_N_ARRAYS];

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
  int64_t n_elems[LV_N_ARRAYS]; /* entries of each array in this shard; 0 = the split has no such array */
  int64_t digest[LV_N_ARRAYS];  /* its stored CRC-32, or -1 (version 1 files have none) */
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
  int64_t version;             /* format_version of the files (1: no digests) */
  char *attrs[5];              /* generator, options, sources, created_by, format (shard 0) */
  int64_t n_vocab_tokens, n_class_names;
  char **vocab_tokens, **class_names;
};

#endif
