/* LongVQ datasets in HDF5 ("longvq-dataset" format version 2; version 1 still reads; docs/dataset-format.md).
 *
 * One file holds the splits as groups /train, /val, /test. A dataset may be sharded: a list of
 * files (or a glob) read as ONE global index space, shard k holding a contiguous range of each
 * split's global sample indices (attributes record shard index/count and global offsets).
 *
 * Reader: every rank opens the files for itself (read-only, default sec2 driver, no collective
 * calls) and reads only the samples it is asked for, with hyperslab selections. Offsets (8 bytes
 * per sample) and labels are read once at open; tokens never are. After open, reads do not
 * allocate: the caller owns the output buffers and the reader reuses its HDF5 selections.
 *
 * Every problem with a file is a user error: one line naming the file (and split, sample, field)
 * on stderr, exit code 2 (LV_EXIT_USAGE), via DIE_INPUT. Nothing is returned on error. That includes
 * any HDF5 failure on a damaged file (named by file and object) and sizes beyond the format's
 * limits (vocab_size, n_classes <= 2^24, tokens per file <= 2^40, a sample <= 2^31 - 1 tokens).
 *
 * Version 2 files store a CRC-32 of every array (tokens, offsets, labels, eval_mask) of every
 * split, and HDF5's checksummed metadata format; lv_dataset_verify[_all] reads the arrays and checks
 * them. Version 1 files (written before) read the same, without digests.
 * Not thread-safe (HDF5 is not): one thread per rank calls these.
 */
#ifndef LONGVQ_DATASET_H
#define LONGVQ_DATASET_H

#include <stddef.h>
#include <stdint.h>

#define LV_DATASET_FORMAT "longvq-dataset"
#define LV_DATASET_VERSION 2 /* written; versions 1..2 are read (1: no digests) */

typedef enum { LV_TASK_CLASSIFICATION = 0, LV_TASK_LM = 1 } lv_task;

/* ---- reader --------------------------------------------------------------------------------- */

typedef struct lv_dataset lv_dataset;

typedef struct {
  const char *split;        /* "train", "val", "test" (any group name in the file) */
  int64_t seq_len;          /* LM only: L; sample i is tokens[i*L .. i*L+L], L+1 tokens (decoder
                               mode). 0 = no windows (n_samples = 0; for inspect). Ignored for
                               classification. */
  size_t chunk_cache_bytes; /* raw-chunk cache for the tokens, split evenly over the shards (at
                               least 1 MiB each); 0 = 4 MiB. The trainer passes data.cache_mb. */
} lv_dataset_opts;

/* Local (not collective). `spec` is one path, a glob ("data/x-*-of-00004.h5") or a comma-separated
 * list of paths/globs; all files must be the shards 0..n-1 of one dataset (any order). */
lv_dataset *lv_dataset_open(const char *spec, const lv_dataset_opts *opts);
/* Same with the paths/globs given as an array (e.g. a YAML list). */
lv_dataset *lv_dataset_open_list(int n_paths, const char *const *paths, const lv_dataset_opts *opts);
void lv_dataset_close(lv_dataset *ds);

/* Read n samples by global index into caller buffers; any order, repeats allowed.
 *   tokens  (n, row_len) int32, row-major, padded with 0 on the right
 *   mask    (n, row_len) uint8, 1 = valid token, 0 = padding             (may be NULL)
 *           LM: every token is valid; if the split has an eval_mask (lv_dataset_has_eval_mask),
 *           mask holds the window's eval_mask entries instead (1 = counted as a target in eval)
 *   lengths (n) int32, valid tokens per row                              (may be NULL)
 *   labels  (n) int32, class of each sample (classification only)       (may be NULL)
 * Classification: row_len = L; a sample longer than L is an error unless `truncate` (then its
 * first L tokens are kept). LM: row_len must be seq_len + 1 (the window); every row is full.
 * Token ids are checked against vocab_size and labels against n_classes here, every time. */
void lv_dataset_read(lv_dataset *ds, int64_t n, const int64_t *global_indices, int32_t *tokens,
                     uint8_t *mask, int32_t *lengths, int32_t *labels, int64_t row_len, int truncate);

/* Tokens [start, start + count) of the split's token stream in global order (all shards' tokens
 * back to back) into dst (count) as int32, ids checked. For LM scans and `inspect --verify`. */
void lv_dataset_read_tokens(lv_dataset *ds, int64_t start, int64_t count, int32_t *dst);

/* Sizes and metadata (local, no I/O). */
int64_t lv_dataset_num_samples(const lv_dataset *ds);  /* LM: floor((n_tokens - 1) / seq_len) */
int64_t lv_dataset_vocab_size(const lv_dataset *ds);
int64_t lv_dataset_num_classes(const lv_dataset *ds);  /* 0 for LM */
lv_task lv_dataset_task(const lv_dataset *ds);
int64_t lv_dataset_max_length(const lv_dataset *ds);   /* longest sample; LM: seq_len + 1 */
int64_t lv_dataset_min_length(const lv_dataset *ds);
int64_t lv_dataset_length(const lv_dataset *ds, int64_t i); /* tokens in sample i (untruncated) */
int32_t lv_dataset_label(const lv_dataset *ds, int64_t i);  /* classification only */
int64_t lv_dataset_num_tokens(const lv_dataset *ds);   /* tokens in the split over all shards */
int lv_dataset_num_shards(const lv_dataset *ds);
/* LM: does the split carry /eval_mask (a 0/1 entry per token of the stream: is the token counted as
 * a target when EVALUATING)? Training counts every target, as the spec says. */
int lv_dataset_has_eval_mask(const lv_dataset *ds);
const char *lv_dataset_shard_path(const lv_dataset *ds, int k);  /* in shard order */
/* Root string attribute of shard 0 ("generator", "options", "sources", "created_by", ...), or
 * NULL if absent. Owned by ds. */
const char *lv_dataset_attr(const lv_dataset *ds, const char *name);
uint64_t lv_dataset_seed(const lv_dataset *ds);
/* Optional name tables (NULL if the file has none): vocab_tokens[vocab_size], class_names[K]. */
const char *const *lv_dataset_vocab_tokens(const lv_dataset *ds);
const char *const *lv_dataset_class_names(const lv_dataset *ds);

/* format_version of the files (1 or 2), and whether they carry digests (version >= 2). */
int lv_dataset_format_version(const lv_dataset *ds);
int lv_dataset_has_digests(const lv_dataset *ds);
/* What makes the split's content: its sizes and a crc32 over the digests stored at conversion
 * ("none" for version-1 files), not its path: "N samples, T tokens, vocab V, K classes, digest D". */
void lv_dataset_identity(const lv_dataset *ds, char *out, size_t cap);

/* ---- verification (io/dataset_verify.c) ----------------------------------------------------- */

typedef struct {
  int n_arrays;    /* arrays checked (over all shards) */
  int64_t bytes;   /* their stored (uncompressed) bytes */
  double seconds;  /* wall time of the reads and CRCs */
} lv_verify_stats;

/* Local. Reads every array of the split in every shard (decompressing, Fletcher32 checked by HDF5)
 * and compares its CRC-32 with the digest stored at conversion. Returns 0 if all match; 1 with a
 * one-line message in err[cap] naming the file and array (a mismatch, or the HDF5 failure that
 * stopped the read); -1 if the files carry no digests (format version 1). st may be NULL. */
int lv_dataset_verify(lv_dataset *ds, lv_verify_stats *st, char *err, size_t cap);
/* Collective (every rank opened the same split). The run-start check: version 1 files get a note
 * (rank 0) that they carry no digests; otherwise, if `verify`, every rank reads 1/W of every array
 * and the CRC pieces are combined, so W ranks take 1/W of the time. A mismatch or damaged file ends
 * the job with exit 2 and one message naming `key` (e.g. "data.train"), the file and the array.
 * Rank 0 logs the bytes, seconds and MB/s. */
void lv_dataset_verify_all(lv_dataset *ds, const char *key, int verify);

/* Local: does shard 0 of `spec` have a group named `split`? (Validates only that the file opens
 * and is a longvq dataset.) */
int lv_dataset_has_split(const char *spec, const char *split);
/* Local: the split (group) names of shard 0 of `spec`, train/val/test first, then the others in
 * name order. Returns how many (at most cap). */
int lv_dataset_splits(const char *spec, char names[][64], int cap);
/* Local: the root string attribute `format` of the first file of `spec` into buf[cap] ("" if the
 * file has none), to tell datasets from checkpoints. Not HDF5 or unreadable: DIE_INPUT. */
void lv_file_format(const char *spec, char *buf, size_t cap);

/* ---- writer (io/dataset_write.c) ------------------------------------------------------------ */

typedef enum { LV_DTYPE_U8 = 0, LV_DTYPE_U16 = 1, LV_DTYPE_I32 = 2 } lv_dtype;

/* One split in memory. Classification: n_samples samples, sample i is
 * tokens[offsets[i] .. offsets[i+1]), offsets has n+1 entries starting at 0, labels has n.
 * LM: one stream of n_tokens tokens; offsets and labels are NULL and n_samples is ignored. */
typedef struct {
  const char *name;          /* group name: "train", "val", "test" */
  int64_t n_samples;
  int64_t n_tokens;
  const void *tokens;        /* n_tokens of tokens_type */
  lv_dtype tokens_type;
  const int64_t *offsets;    /* (n_samples + 1) */
  const int32_t *labels;     /* (n_samples) */
  const uint8_t *eval_mask;  /* LM only, optional (n_tokens) 0/1: 1 = counted as a target by evaluation */
} lv_split_data;

typedef struct {
  lv_task task;
  int64_t vocab_size;
  int64_t n_classes;                /* 0 for LM */
  const char *generator;            /* e.g. "longvq data listops" */
  const char *options;              /* the effective options, as a command line */
  uint64_t seed;
  const char *sources;              /* input files, newline-separated ("" if generated) */
  const char *const *vocab_tokens;  /* optional: vocab_size names */
  const char *const *class_names;   /* optional: n_classes names */
} lv_dataset_meta;

/* Local. Writes n_shards files (n_shards = 1: exactly `out`; else `<out without .h5>-%05d-of-%05d.h5`)
 * through a temporary name and rename, so a failed run leaves no partial file. Refuses to
 * overwrite existing files unless `force`. Validates the data (ids < vocab, labels < K,
 * no empty samples) before writing. Logs progress. */
void lv_dataset_write(const char *out, int n_shards, int force, const lv_dataset_meta *meta,
                      int n_splits, const lv_split_data *splits);
/* Name of shard k of n for output `out` (see above) into buf[cap]. */
void lv_dataset_shard_name(char *buf, size_t cap, const char *out, int k, int n);

#endif
