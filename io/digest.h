/* Digests of the data in our HDF5 files (checkpoints and model files): end-to-end checks that the
 * per-chunk fletcher32 cannot give (a chunk zeroed together with its checksum passes fletcher32).
 *
 * What is hashed: the zlib crc32 of a dataset's whole data as stored, in row-major order: a float
 * tensor's float32 little-endian bytes; /config's YAML text (without a terminating NUL). So the
 * digest is a function of the dataset's bytes only: h5py checks it with
 * zlib.crc32(ds[()].astype("<f4").tobytes()) == ds.attrs["crc32"] (tests/load_checkpoint.py).
 * Where: a scalar uint32 attribute `crc32` on each dataset (in its checksummed object header), and
 * the root attribute `digest` = "crc32" declaring that every dataset carries one. A file without
 * the root attribute predates digests: it loads with a note, its chunk checksums still verified.
 * Pieces hashed on different ranks combine (crc32_combine in offset order) into the same digest,
 * whatever the decomposition. See docs/checkpoints.md. */
#ifndef LONGVQ_DIGEST_H
#define LONGVQ_DIGEST_H

#include <hdf5.h>
#include <stddef.h>
#include <stdint.h>

#define LV_DIGEST_ROOT_ATTR "digest" /* root: the algorithm every dataset's digest uses */
#define LV_DIGEST_ALGO "crc32"
#define LV_DIGEST_ATTR "crc32"       /* per dataset: uint32 */

/* Local: crc32 continued over n bytes (crc = 0 to start; any length). */
uint32_t lv_crc32(uint32_t crc, const void *p, size_t n);

/* Bytes [off, off + len) of dataset `ds` (an index the caller chose), hashed by this rank. */
typedef struct {
  int64_t ds, off, len;
  uint32_t crc, pad_;
} lv_digest_piece;

/* Collective: the crc32 of each of the n datasets (byte lengths len[]) from every rank's pieces
 * (any order, any split over the ranks), into out[] on every rank. Returns -1, or (the same on
 * every rank) the first dataset whose pieces over all ranks do not cover it exactly once: its
 * digest cannot be known (a caller's invariant, not damage). */
int lv_digest_combine(const lv_digest_piece *mine, int n_mine, const int64_t *len, int n, uint32_t *out);

/* Writing (collective under parallel HDF5: the same values on every rank). */
void lv_digest_declare(hid_t file);        /* root attribute digest = "crc32" */
void lv_digest_write(hid_t ds, uint32_t crc); /* the dataset's crc32 attribute */

/* Reading, quietly (never aborts on a damaged file). 1 if the file declares crc32 digests, 0 if it
 * has no `digest` attribute (an older file), -1 with err ("<fname>: ...") if the attribute is
 * unreadable or names another algorithm. */
int lv_digest_declared(hid_t file, const char *fname, char *err, size_t cap);

enum { LV_DIGEST_OK = 0, LV_DIGEST_BAD = 1, LV_DIGEST_NONE = 2 };
/* Compares `got` (the crc32 of the data read) with dataset ds's recorded digest. LV_DIGEST_OK;
 * LV_DIGEST_NONE if the file declares no digests (declared = 0); LV_DIGEST_BAD with err =
 * "<fname>: <what><name> does not match its crc32 digest (recorded 0x.., data read 0x..): damaged data"
 * or "... has no crc32 digest (the file records one for every dataset)". */
int lv_digest_verify(hid_t ds, int declared, uint32_t got, const char *fname, const char *what, const char *name,
                     char *err, size_t cap);

/* Rank 0 (log_info): "note: <path> carries no crc32 digests (written before ...)". */
void lv_digest_note_none(const char *path);

#endif
