/* Model files: parameters and codebooks under the spec's /model/... paths (name '.' -> '/'),
 * float32 with fletcher32 checksums, plus the effective config as YAML text; every dataset carries
 * its crc32 digest (io/digest.h); the HDF5 1.10 format (checksummed metadata). Readable by h5py.
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
 * right shape and matches its digest (and /config its digest, if the file has one). Returns 0, or 1
 * with a message (naming file and tensor) in err. A file without digests (older) loads, with a note
 * (log_info). */
int lv_model_load(const char *path, const lv_layout *lay, float *params, float *state, char *err, size_t cap);

/* Reads the YAML text of /config (malloc'd, NUL-terminated) of a model file or a checkpoint, or
 * NULL if absent or unreadable (quietly: lv_model_load / lv_ckpt_read report what is wrong). */
char *lv_model_read_config(const char *path);

/* The shape of tensor `name` (spec name, e.g. "embed.weight") in model file `path`, quietly: 0 with
 * shape[0..*ndim) (at most cap_dims), or 1 with a message naming the file and tensor in err. For
 * sizes a config leaves to the data (`generate` takes V from embed.weight). */
int lv_model_tensor_shape(const char *path, const char *name, int64_t *shape, int cap_dims, int *ndim, char *err,
                          size_t cap);

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
/* Opens an HDF5 file read-only without HDF5 printing errors: the id, or -1 with err = "<path>: no
 * such file" / "not a regular file (a FIFO)" / "cannot open as HDF5 (..)". Never blocks on a FIFO. */
hid_t lv_h5_open_file_quiet(const char *path, char *err, size_t cap);
/* "a directory", "a FIFO", ... for a stat() st_mode. */
const char *lv_file_kind(unsigned mode);
/* An integer attribute (any width) as mem_type into out, quietly: 1, 0 absent, -1 unreadable. */
int lv_h5_attr_int_quiet(hid_t obj, const char *name, hid_t mem_type, void *out);
/* A string attribute (fixed or variable length) into out, quietly: 1, 0 absent, -1 unreadable. */
int lv_h5_attr_str_quiet(hid_t obj, const char *name, char *out, size_t cap);
/* The layout of our files (checkpoints, model files): fapl gets the HDF5 1.10 format bounds; *fcpl
 * and *gcpl (the caller closes them) track creation order and keep links and root attributes in the
 * checksummed object headers. */
void lv_h5_format_props(hid_t fapl, hid_t *fcpl, hid_t *gcpl);
/* Creates the missing groups on the way to h5path with gcpl (collective under parallel HDF5). */
void lv_h5_make_parents(hid_t file, const char *h5path, hid_t gcpl);
/* /config (a scalar or 1-element fixed-length string) into *out (malloc'd, also on failure: free
 * it), its digest verified if `declared`. 0, or 1 + err naming fname. */
int lv_h5_read_config(hid_t file, const char *fname, int declared, char **out, char *err, size_t cap);
/* Opens a dataset without HDF5 printing errors: its id, or a negative value if absent or broken. */
hid_t lv_h5_open_quiet(hid_t file, const char *h5path);
/* One whole tensor of /model (by its spec name) into data, checking presence, shape, checksums and,
 * if the file `declared` digests (lv_digest_declared), its crc32. Returns 0, or 1 with a message
 * naming fname and the tensor in err. */
int lv_model_read_tensor(hid_t file, const char *fname, const lv_tensor *t, float *data, int declared, char *err,
                         size_t cap);
/* 0 if dataset ds has tensor t's shape; else 1 and err = "fname: <what> <name> has shape (..), the
 * config needs (..)". */
int lv_h5_check_shape(hid_t ds, const lv_tensor *t, const char *fname, const char *what, char *err, size_t cap);
/* Reads all of ds as float quietly: 0, or 1 and err = "fname: <what> <name> cannot be read (..)". */
int lv_h5_read_quiet(hid_t ds, hid_t mem_space, hid_t file_space, float *data, const lv_tensor *t, const char *fname,
                     const char *what, char *err, size_t cap);

#endif
