/* Shared by io/checkpoint_{write,read,dir}.c: how a rank's part of a tensor is described. */
#ifndef LONGVQ_CHECKPOINT_INTERNAL_H
#define LONGVQ_CHECKPOINT_INTERNAL_H

#include <hdf5.h>
#include <stddef.h>
#include <stdint.h>

#include "io/checkpoint.h"

/* Target chunk size in floats (default 1 << 20 = 4 MiB): chunks are whole rows, one fletcher32
 * checksum each. A variable so that tests can make tensors span many chunks. */
extern int64_t lv_ckpt_chunk_floats;

/* A run of a tensor's flattened elements [a, b) that lives at buf[mem .. mem + b - a) of a flat buffer. */
typedef struct {
  int64_t a, b;
  size_t mem;
} lv_ckpt_piece;

/* Collective: 1 if every rank passes the same ranges (the moments are replicated: no ZeRO-1). */
int lv_ckpt_ranges_replicated(const lv_range *ranges, int n_ranges);
/* The pieces of tensor t covered by ranges (floats of the flat buffer; ranges[k] starts at
 * range_off[k] of the compact buffer), sorted by a. out needs n_ranges entries. Returns the count. */
int lv_ckpt_pieces(const lv_tensor *t, const lv_range *ranges, const size_t *range_off, int n_ranges,
                   lv_ckpt_piece *out);
/* Selects the union of the pieces, moved back by `shift` elements (a multiple of the row length),
 * in `space` (the tensor's dataspace or a span of its rows; 1-D or 2-D row-major): a flat run
 * becomes up to three hyperslabs (partial first row, whole rows, partial last row). Returns the
 * number of elements selected. */
int64_t lv_ckpt_select(hid_t space, const lv_tensor *t, const lv_ckpt_piece *p, int n, int64_t shift);
/* The whole rows of t that the pieces touch: their shape in dims (1-D: dims[0] elements) and,
 * returned, the flat offset of the first (the `shift` for lv_ckpt_select). Memory laid out as these
 * rows, with the file's selection moved by shift, has "the same shape" as the file selection: HDF5
 * then maps chunks with selection arithmetic instead of element by element (~25 ns per element). */
int64_t lv_ckpt_span(const lv_tensor *t, const lv_ckpt_piece *p, int n, hsize_t *dims);
/* 1 if every piece sits at mem = a + base for one base (then *base is set): the buffer holds the
 * pieces in tensor layout already, no staging copy needed. */
int lv_ckpt_contiguous(const lv_ckpt_piece *p, int n, int64_t *base);
/* Chunk dimensions of tensor t (whole rows, about lv_ckpt_chunk_floats); returns floats per chunk. */
int64_t lv_ckpt_chunk_dims(const lv_tensor *t, hsize_t *dims);
/* HDF5 error printing must be off (H5Eset_auto2) around these: they report, never abort. */
/* Checks format/format_version, the run attributes and the digest declaration, fills meta (not
 * config_yaml) and *digests (1: the file records crc32 digests, 0: an older file without). 0, or 1 + err. */
int lv_ckpt_check_attrs(hid_t file, const char *path, lv_ckpt_meta *meta, int *digests, char *err, size_t cap);
/* "<dir>/latest" := name, atomically and durably (tmp + fsync + rename + dir fsync). */
void lv_ckpt_write_latest(const char *dir, const char *name);
/* 1 if `name` is "ckpt_<digits>.h5" (then *step is set); 2 if it is that plus ".tmp"; else 0. */
int lv_ckpt_parse_name(const char *name, int64_t *step);

#endif
