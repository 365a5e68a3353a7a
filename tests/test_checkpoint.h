/* Shared by tests/test_checkpoint.c and tests/test_checkpoint_corrupt.c: a model layout, a range
 * decomposition of its flat buffer and data that is a pure function of (buffer, index, step). */
#ifndef LONGVQ_TEST_CHECKPOINT_H
#define LONGVQ_TEST_CHECKPOINT_H

#include <stddef.h>
#include <stdint.h>

#include "io/checkpoint.h"
#include "io/model_io.h"
#include "layers/params.h"
#include "tests/test_util.h"
#include "trainer/base/check.h"

#define CK_MAX_RANGES 8192
#define CK_YAML "model:\n  d_model: 24\nrun:\n  seed: 4242\n"

typedef struct {
  lv_layout lay;
  size_t pad;                 /* params floats, padded as the trainer pads them */
  float *params, *state, *red;
  double *stats;
  lv_range ranges[CK_MAX_RANGES];
  size_t off[CK_MAX_RANGES];
  int n;
  size_t n_mom;
  float *m, *v;
} ck_model;

float ck_value(int buf, size_t i, int64_t step); /* buf: 0 params, 1 state, 2 exp_avg, 3 exp_avg_sq */
void ck_model_init(ck_model *c, int large);
void ck_model_free(ck_model *c);
void ck_decomp(ck_model *c, const char *kind, uint64_t seed);
void ck_fill(ck_model *c, int64_t step);
int64_t ck_verify(const ck_model *c, int64_t step);
/* Collective: writes path with the data of `step`. */
void ck_write(ck_model *c, const char *path, int64_t step, int zero);
/* Collective: reads path (step < 0: the file's step) and counts wrong values over all ranks;
 * -1 if the read failed (err set). */
int64_t ck_read_verify(ck_model *c, const char *path, int64_t step, char *err, size_t cap);

/* tests/test_checkpoint_corrupt.c */
/* Collective: every kind of damaged file, the auto-picker's fallbacks, random byte flips.
 * Returns this rank's number of failed expectations. */
int ck_corruption_suite(const char *dir);
/* Rank 0: copy src to out with one byte flipped in the middle of dataset h5path's first chunk. */
int ck_corrupt_chunk(const char *src, const char *h5path, const char *out);
/* Rank 0: copy src to dst as a new file (new inode: HDF5 keeps a failed-to-close corrupt file open
 * and would match the inode). 0 or 1. */
int ck_copy_file(const char *src, const char *dst);
/* tests/test_checkpoint_integrity.c */
/* Collective: zeroed chunks (data + checksum) of every dataset, model files' digests, files without
 * digests, a FIFO and a directory named like checkpoints. Returns this rank's failed expectations. */
int ck_integrity_suite(const char *dir);
/* Rank 0: DIR/manifest.txt: one line per /model tensor: name, shape, sum of squares (%.17g). */
void ck_manifest(const ck_model *c, const char *dir, int64_t step);

#endif
