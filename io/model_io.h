/* Model files: parameters and codebooks under the spec's /model/... paths (name '.' -> '/'),
 * float32 with fletcher32 checksums, plus the effective config as YAML text. Readable by h5py.
 * The full checkpoint (optimizer, data order, ...) builds on this layout. */
#ifndef LONGVQ_MODEL_IO_H
#define LONGVQ_MODEL_IO_H

#include <hdf5.h>
#include <stddef.h>
#include <stdint.h>

#include "layers/params.h"

#define LV_MODEL_FORMAT "longvq-model"
#define LV_MODEL_FORMAT_VERSION 1

/* Writes `path` atomically (temporary name, fsync, rename). Called by one rank. Root attributes:
 * format, format_version, step, build version; dataset /config (YAML text, may be NULL). */
void lv_model_save(const char *path, const lv_layout *lay, const float *params, const float *state,
                   const char *config_yaml, int64_t step);

/* Reads every tensor of the layout from `path` into params/state, checking that each exists with the
 * right shape. Returns 0, or 1 with a message (naming file and tensor) in err. */
int lv_model_load(const char *path, const lv_layout *lay, float *params, float *state, char *err, size_t cap);

/* Reads the YAML text of /config (malloc'd, NUL-terminated) of a model file or a checkpoint, or
 * NULL if absent or unreadable (quietly: lv_model_load / lv_ckpt_read report what is wrong). */
char *lv_model_read_config(const char *path);

/* "layers.3.mixer.ema.delta" -> "/model/layers/3/mixer/ema/delta". */
void lv_model_h5path(const char *name, char *out, size_t cap);

/* ---- shared with checkpoints (io/checkpoint_*.c) ------------------------------------------ */
/* "<prefix>/<name with . -> />", e.g. ("/optimizer/exp_avg", "embed.weight") -> "/optimizer/exp_avg/embed/weight". */
void lv_h5_tensor_path(const char *prefix, const char *name, char *out, size_t cap);
/* A scalar fixed-length string attribute: stored in the object header (checksummed in the 1.10
 * format), not in the unchecked global heap like variable-length strings. */
void lv_h5_attr_fixed_str(hid_t obj, const char *name, const char *val);
/* fsync the file / the directory that holds `path`; DIE naming the path on failure. */
void lv_fsync_path(const char *path);
void lv_fsync_parent_dir(const char *path);
/* rename(tmp, path), then fsync the directory: the new name is durable. DIE on failure. */
void lv_rename_durable(const char *tmp, const char *path);
/* Opens a dataset without HDF5 printing errors: its id, or a negative value if absent or broken. */
hid_t lv_h5_open_quiet(hid_t file, const char *h5path);
/* One whole tensor of /model (by its spec name) into data, checking presence, shape and checksums.
 * Returns 0, or 1 with a message naming fname and the tensor in err. */
int lv_model_read_tensor(hid_t file, const char *fname, const lv_tensor *t, float *data, char *err, size_t cap);
/* 0 if dataset ds has tensor t's shape; else 1 and err = "fname: <what> <name> has shape (..), the
 * config needs (..)". */
int lv_h5_check_shape(hid_t ds, const lv_tensor *t, const char *fname, const char *what, char *err, size_t cap);
/* Reads all of ds as float quietly: 0, or 1 and err = "fname: <what> <name> cannot be read (..)". */
int lv_h5_read_quiet(hid_t ds, hid_t mem_space, hid_t file_space, float *data, const lv_tensor *t, const char *fname,
                     const char *what, char *err, size_t cap);

#endif
