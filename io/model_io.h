/* Model files: parameters and codebooks under the spec's /model/... paths (name '.' -> '/'),
 * float32 with fletcher32 checksums, plus the effective config as YAML text. Readable by h5py.
 * The full checkpoint (optimizer, data order, ...) builds on this layout. */
#ifndef LONGVQ_MODEL_IO_H
#define LONGVQ_MODEL_IO_H

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

/* Reads the YAML text of /config (malloc'd, NUL-terminated) or NULL if absent. */
char *lv_model_read_config(const char *path);

/* "layers.3.mixer.ema.delta" -> "/model/layers/3/mixer/ema/delta". */
void lv_model_h5path(const char *name, char *out, size_t cap);

#endif
