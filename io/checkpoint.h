/* Checkpoints: everything a run needs to resume exactly, in one HDF5 file that h5py reads.
 *
 *   /model/<name, '.' -> '/'>                  params and codebooks (the spec's paths; float32, tensor shapes)
 *   /optimizer/exp_avg/<same sub-path>         AdamW m of every trained tensor (not codebooks)
 *   /optimizer/exp_avg_sq/<same sub-path>      AdamW v
 *   /config                                    effective config, YAML (1-element fixed-length string)
 *   root attributes: format, format_version, step, samples_seen, seed, world_size, zero,
 *                    restart_count, build, created, digest ("crc32")
 * Every dataset is chunked (<= 4 MiB chunks of whole rows) with a fletcher32 checksum and carries
 * the crc32 of its whole data (attribute crc32, io/digest.h), verified on every read; metadata
 * (object headers, chunk indexes) is checksummed too (HDF5 1.10 file format). Groups keep creation
 * order, so tools list tensors in the spec's order. Files are named <run_dir>/ckpt_<step %08lld>.h5;
 * <run_dir>/latest holds the name of the newest complete one. See docs/checkpoints.md.
 */
#ifndef LONGVQ_CHECKPOINT_H
#define LONGVQ_CHECKPOINT_H

#include <stddef.h>
#include <stdint.h>

#include "layers/params.h"
#include "trainer/base/range.h"

#define LV_CKPT_FORMAT "longvq-checkpoint"
#define LV_CKPT_VERSION 1
#define LV_CKPT_NAME_MAX 256

typedef struct {
  int64_t step;            /* optimizer steps done */
  int64_t samples_seen;    /* global samples consumed (the data order is a pure function of run.seed and this) */
  uint64_t seed;           /* run.seed */
  int world_size;          /* ranks that wrote it (read; the writer records its own world size) */
  int zero;                /* dist.zero when written */
  int64_t restart_count;   /* how many times the run was resumed */
  const char *config_yaml; /* effective config (write: taken from rank 0, NULL = ""); malloc'd on read, caller frees */
  char data_identity[256]; /* the training split's identity (lv_dataset_identity); "" = not recorded (older files) */
} lv_ckpt_meta;

/* Local. zlib level (1-9) for the checkpoints written from now on, 0 = off (the default: see
 * docs/checkpoints.md for its cost). Must be the same on every rank. */
void lv_ckpt_set_deflate(int level);

/* Collective. Writes `path` with parallel HDF5 (MPI-IO, collective metadata and data writes).
 * params/state: full replicas on every rank (indexed by the layout's offsets); each tensor is
 * written once, its chunks split among the ranks. m/v: this rank's AdamW moments, compact: the
 * moments of ranges[k] = [lo, hi) (floats of the flat param buffer) start at m + range_off[k].
 * If every rank passes the same ranges (no ZeRO) the writing is split among the ranks; otherwise
 * (ZeRO-1) each rank writes its own ranges, which must cover every trained float exactly once over
 * all ranks (checked). Floats outside tensors (padding) are ignored. meta must be the same on every
 * rank (checked); config_yaml is taken from rank 0.
 * Atomic and durable: written to "<path>.tmp", MPI_File_sync'ed, closed, fsync'ed, renamed by rank 0
 * after a barrier, directory fsync'ed; then <dir>/latest is replaced (tmp + fsync + rename + dir
 * fsync). Returns on every rank only when all of it is done. Failures abort the job (the previous
 * checkpoint and the latest record stay intact). */
void lv_ckpt_write(const char *path, const lv_layout *lay, const float *params, const float *state,
                   const float *m, const float *v, const lv_range *ranges, const size_t *range_off, int n_ranges,
                   const lv_ckpt_meta *meta);

/* Collective. Fills params/state fully on every rank (each tensor read by one rank and broadcast),
 * and m/v for THIS rank's ranges (any decomposition: other world size, with or without ZeRO;
 * ranges/range_off as for lv_ckpt_write); moments of padding floats are set to 0. m = v = NULL
 * (on every rank) skips the optimizer (model only). Validates the format and version attributes, the
 * run attributes, every tensor (present, right shape, no tensor the layout lacks), every checksum of
 * what is read and every dataset's crc32 digest (the pieces each rank read combine into whole-tensor
 * digests, so any decomposition verifies them all). Returns 0, or 1 with a one-line message naming
 * the file and the problem (identical on all ranks; buffers then hold partial data). On success
 * meta->config_yaml is malloc'd: the caller frees it. A file without digests (older) is read, with
 * a note from rank 0. */
int lv_ckpt_read(const char *path, const lv_layout *lay, float *params, float *state, float *m, float *v,
                 const lv_range *ranges, const size_t *range_off, int n_ranges, lv_ckpt_meta *meta, char *err,
                 size_t cap);

/* Local, pure: "<run_dir>/ckpt_<step %08lld>.h5". */
void lv_ckpt_path(char *out, size_t cap, const char *run_dir, int64_t step);

/* Local, cheap (directory listing only): the complete-named checkpoints ckpt_<digits>.h5 in run_dir
 * that are regular files (".tmp" leftovers of interrupted writes and entries of other kinds, such as
 * a directory or a FIFO of that name, are not listed), newest first by step. Returns how many were
 * found (at most cap are stored). */
int lv_ckpt_list(const char *run_dir, char names[][LV_CKPT_NAME_MAX], int64_t *steps, int cap);

/* Local: the file name recorded in <run_dir>/latest. Returns 1 and fills name, or 0 if there is no
 * (well-formed) record. The record does not say the file exists: lv_ckpt_find_resumable checks. */
int lv_ckpt_latest(const char *run_dir, char *name, size_t cap);

/* Collective, for resume=auto: the newest checkpoint of run_dir that passes lv_ckpt_check (every
 * dataset read and checksummed, the work split among the ranks). Each one skipped (corrupt,
 * truncated, wrong format, incomplete) is reported on stderr by rank 0 ("warning: skipping
 * checkpoint: <file>: <why>"), as are a latest record naming a missing file, ".tmp" leftovers and
 * entries with a checkpoint's name that are not regular files (never opened: a FIFO would block).
 * Returns, identically on every rank:
 *   0: found, path filled (then lv_ckpt_read it: that also checks the shapes against the layout)
 *   1: run_dir holds no checkpoint at all
 *   2: checkpoints exist but none is intact (each was reported). */
int lv_ckpt_find_resumable(const char *run_dir, char *path, size_t cap);

/* One /model tensor of a checkpoint, found without a layout (lv_ckpt_check). */
typedef struct {
  char name[2 * LV_NAME_MAX]; /* state_dict name */
  int ndim;
  int64_t shape[2];
  int has_moments;            /* /optimizer/exp_avg and exp_avg_sq exist (codebooks: 0) */
  int read[3];                /* param, exp_avg, exp_avg_sq: 1 = read OK, -1 = read failed, 0 = not read */
  int digest[3];              /* their crc32 digests: 1 = match, -1 = mismatch or missing, 0 = not checked or the
                                 file has none (older) */
  double l2[3];               /* their L2 norms (when read OK) */
} lv_ckpt_tensor;

/* Local: a string root attribute (build, created, ...) into out; 0, or 1 if absent/unreadable. */
int lv_ckpt_attr_str(const char *path, const char *name, char *out, size_t cap);

/* Local, layout-free. Checks the attributes (fills meta; meta->config_yaml is malloc'd or NULL:
 * free it whatever the result), /config, the structure (every /model tensor but codebooks has both
 * moments, of its shape; no moment without a tensor) and reads every dataset whose index (3 per
 * tensor: param, exp_avg, exp_avg_sq) is = part mod parts, verifying its checksums and its crc32
 * digest (if the file has digests) and computing its L2 norm. Keeps going after
 * a failed read or digest so that tensors[] (malloc'd, *n_tensors; may be NULL) reports every one.
 * Returns 0, or 1 with the first problem (file named) in err. */
int lv_ckpt_check(const char *path, int part, int parts, lv_ckpt_meta *meta, lv_ckpt_tensor **tensors,
                  int *n_tensors, char *err, size_t cap);

/* Collective, before training continues after step `from` up to step `to`: every name a later
 * checkpoint of run_dir may be written under (lv_ckpt_path of the steps (from, to] and its ".tmp",
 * latest, latest.tmp) must be absent or a regular file: a directory there would make that
 * checkpoint's rename fail, a FIFO would block its writer. Returns 0, or 1 with err naming the first
 * such entry (the same on every rank: rank 0 looks). */
int lv_ckpt_check_targets(const char *run_dir, int64_t from, int64_t to, char *err, size_t cap);

/* Rank 0 acts, other ranks return at once. Keeps the newest `keep` checkpoints (keep < 1: keep all),
 * every one whose step is a multiple of keep_every (> 0), and the one the latest record names;
 * deletes the others and ".tmp" leftovers of interrupted writes. Call after lv_ckpt_write. */
void lv_ckpt_rotate(const char *run_dir, int64_t keep, int64_t keep_every);

#endif
