/* crc32 digests of datasets: computed, combined over ranks, recorded and verified (see digest.h). */
#include "io/digest.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "io/model_io.h"
#include "trainer/base/check.h"
#include "trainer/base/dist.h"
#include "trainer/base/log.h"

/* The digest is defined on the little-endian bytes; hashing memory gives those bytes only here. */
_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "digests hash float32 LE bytes straight from memory");

uint32_t lv_crc32(uint32_t crc, const void *p, size_t n) { return (uint32_t)crc32_z(crc, p, n); }

static int by_ds_off(const void *x, const void *y) {
  const lv_digest_piece *a = x, *b = y;
  if (a->ds != b->ds) return a->ds < b->ds ? -1 : 1;
  return (a->off > b->off) - (a->off < b->off);
}

/* Rank 0: pieces sorted by (ds, off) -> out[]; the first dataset not tiled exactly, or -1. */
static int64_t combine_sorted(const lv_digest_piece *p, int64_t np, const int64_t *len, int n, uint32_t *out) {
  int64_t first_bad = -1, j = 0;
  for (int d = 0; d < n; d++) {
    uint32_t crc = 0; /* crc32 of no bytes */
    int64_t pos = 0;
    for (; j < np && p[j].ds == d; j++) {
      if (p[j].off != pos) break;
      crc = (uint32_t)crc32_combine(crc, p[j].crc, (z_off_t)p[j].len);
      pos += p[j].len;
    }
    for (; j < np && p[j].ds == d; j++) pos = -1; /* a gap or an overlap stopped the loop above */
    out[d] = crc;
    if (pos != len[d] && first_bad < 0) first_bad = d;
  }
  return first_bad;
}

int lv_digest_combine(const lv_digest_piece *mine, int n_mine, const int64_t *len, int n, uint32_t *out) {
  int world = dist_size();
  double most = n_mine;
  dist_max_f64(&most, 1);
  int64_t cnt = n_mine, *counts = NULL, max = (int64_t)most, first_bad = -1;
  size_t slot = sizeof(lv_digest_piece) * (size_t)(max > 0 ? max : 1);
  lv_digest_piece *send = calloc(1, slot), *all = NULL;
  CHECK_ALLOC(send);
  for (int i = 0; i < n_mine; i++) send[i] = mine[i];
  if (dist_is_root()) {
    counts = malloc(sizeof(int64_t) * (size_t)world);
    all = malloc(slot * (size_t)world);
    CHECK_ALLOC(counts);
    CHECK_ALLOC(all);
  }
  dist_gather_bytes(&cnt, counts, sizeof cnt);
  dist_gather_bytes(send, all, slot);
  if (dist_is_root()) {
    int64_t np = 0;
    for (int r = 0; r < world; r++) /* pack the valid records of every rank's slot */
      for (int64_t i = 0; i < counts[r]; i++) {
        lv_digest_piece q = all[(size_t)r * (size_t)(max > 0 ? max : 1) + (size_t)i];
        if (q.len > 0) all[np++] = q;
      }
    qsort(all, (size_t)np, sizeof *all, by_ds_off);
    first_bad = combine_sorted(all, np, len, n, out);
  }
  dist_bcast_from(out, sizeof(uint32_t) * (size_t)n, 0);
  dist_bcast_from(&first_bad, sizeof first_bad, 0);
  free(send);
  free(all);
  free(counts);
  return (int)first_bad;
}

void lv_digest_declare(hid_t file) { lv_h5_attr_fixed_str(file, LV_DIGEST_ROOT_ATTR, LV_DIGEST_ALGO); }

void lv_digest_write(hid_t ds, uint32_t crc) {
  hid_t space, attr;
  CHECK_H5(space = H5Screate(H5S_SCALAR));
  CHECK_H5(attr = H5Acreate2(ds, LV_DIGEST_ATTR, H5T_STD_U32LE, space, H5P_DEFAULT, H5P_DEFAULT));
  CHECK_H5(H5Awrite(attr, H5T_NATIVE_UINT32, &crc));
  CHECK_H5(H5Aclose(attr));
  CHECK_H5(H5Sclose(space));
}

int lv_digest_declared(hid_t file, const char *fname, char *err, size_t cap) {
  char algo[64] = "";
  int rc = lv_h5_attr_str_quiet(file, LV_DIGEST_ROOT_ATTR, algo, sizeof algo);
  if (rc == 0) return 0;
  if (rc > 0 && !strcmp(algo, LV_DIGEST_ALGO)) return 1;
  if (rc < 0)
    snprintf(err, cap, "%s: unreadable root attribute '%s'", fname, LV_DIGEST_ROOT_ATTR);
  else
    snprintf(err, cap, "%s: digests of an unknown kind ('%s' = '%s', this build knows '%s'): use a newer longvq", fname,
             LV_DIGEST_ROOT_ATTR, algo, LV_DIGEST_ALGO);
  return -1;
}

int lv_digest_verify(hid_t ds, int declared, uint32_t got, const char *fname, const char *what, const char *name,
                     char *err, size_t cap) {
  if (!declared) return LV_DIGEST_NONE;
  uint32_t want = 0;
  int rc = lv_h5_attr_int_quiet(ds, LV_DIGEST_ATTR, H5T_NATIVE_UINT32, &want);
  if (rc == 1 && want == got) return LV_DIGEST_OK;
  if (rc == 1)
    snprintf(err, cap, "%s: %s%s does not match its crc32 digest (recorded 0x%08x, data read 0x%08x): damaged data",
             fname, what, name, (unsigned)want, (unsigned)got);
  else
    snprintf(err, cap, "%s: %s%s has %s crc32 digest (the file records one for every dataset)", fname, what, name,
             rc ? "an unreadable" : "no");
  return LV_DIGEST_BAD;
}

void lv_digest_note_none(const char *path) {
  log_info("note: %s carries no crc32 digests (written before longvq recorded them): its chunk checksums were "
           "verified, but a chunk zeroed together with its checksum would go unnoticed", path);
}
