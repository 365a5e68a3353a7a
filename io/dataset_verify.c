/* Digests of a dataset's arrays (format version 2): the CRC-32 (zlib's, as gzip and PNG use) of
 * every array of a split, each entry taken as a little-endian integer of its stored width, checked
 * against the `crc32` attribute the converter wrote. One reader (inspect --verify) reads whole arrays;
 * a job (run start) splits every array into W contiguous pieces of whole blocks, rank r reads piece
 * r, and the piece CRCs are joined with crc32_combine, so the verdict does not depend on W. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/dataset_internal.h"
#include "io/digest.h"
#include "trainer/base/clock.h"
#include "trainer/base/dist.h"
#include "trainer/base/log.h"

#define BLOCK LV_DS_CHUNK /* entries per read: one chunk of the files we write */

/* One array of one shard, open for reading. */
typedef struct {
  lv_shard *s;
  int arr;
  hid_t d;       /* the dataset (the reader's own handle for tokens / eval_mask) */
  int owned;     /* d was opened here (offsets, labels) */
  hid_t mtype;   /* its stored integer type, little-endian: the bytes the digest covers */
  int64_t n;     /* entries */
  size_t width;  /* bytes per entry */
} item;

typedef struct {
  lv_dataset *ds;
  item *it;
  int n;
  uint8_t *buf;  /* BLOCK entries of up to 8 bytes */
  char *err;
  size_t cap;
} verifier;

static int fail(verifier *v, const item *it, const char *what) {
  snprintf(v->err, v->cap, "%s: /%s/%s: %s: %s", it->s->path, v->ds->split, lv_array_names[it->arr], what,
           lv_h5_errstr());
  return 1;
}

static void close_items(verifier *v) {
  for (int i = 0; i < v->n; i++) {
    if (v->it[i].mtype >= 0) H5Tclose(v->it[i].mtype);
    if (v->it[i].owned) H5Dclose(v->it[i].d);
  }
  free(v->it);
  free(v->buf);
}

/* The arrays of every shard that the split has, in shard order. Returns 0, or 1 with v->err set. */
static int open_items(verifier *v, lv_dataset *ds, char *err, size_t cap) {
  memset(v, 0, sizeof *v);
  v->ds = ds;
  v->err = err;
  v->cap = cap;
  v->it = calloc((size_t)ds->n_shards * LV_N_ARRAYS, sizeof *v->it);
  v->buf = malloc((size_t)BLOCK * 8);
  CHECK_ALLOC(v->it);
  CHECK_ALLOC(v->buf);
  for (int k = 0; k < ds->n_shards; k++)
    for (int a = 0; a < LV_N_ARRAYS; a++) {
      lv_shard *s = &ds->shards[k];
      if (s->n_elems[a] < 1) continue;
      item *it = &v->it[v->n++];
      *it = (item){s, a, -1, 0, -1, s->n_elems[a], 0};
      if (a == LV_ARR_TOKENS || a == LV_ARR_EVAL_MASK) {
        it->d = a == LV_ARR_TOKENS ? s->tokens : s->emask;
      } else {
        char name[160];
        snprintf(name, sizeof name, "/%s/%s", ds->split, lv_array_names[a]);
        if ((it->d = H5Dopen2(s->file, name, H5P_DEFAULT)) < 0) return fail(v, it, "cannot open");
        it->owned = 1;
      }
      hid_t t = H5Dget_type(it->d);
      if (t < 0) return fail(v, it, "cannot read its type");
      it->mtype = H5Tcopy(t);
      H5Tclose(t);
      if (it->mtype < 0 || H5Tset_order(it->mtype, H5T_ORDER_LE) < 0) return fail(v, it, "bad integer type");
      it->width = H5Tget_size(it->mtype);
    }
  return 0;
}

/* CRC-32 of entries [lo, hi) of one array, continuing *crc; adds the bytes read. Returns 0, or 1
 * with v->err set (the HDF5 failure, e.g. a chunk whose Fletcher32 checksum is wrong). */
static int crc_range(verifier *v, const item *it, int64_t lo, int64_t hi, uint32_t *crc, int64_t *bytes) {
  hid_t fspace = H5Dget_space(it->d), mspace;
  hsize_t cap = BLOCK;
  if (fspace < 0) return fail(v, it, "cannot read its shape");
  CHECK_H5(mspace = H5Screate_simple(1, &cap, NULL));
  uint32_t c = *crc;
  int rc = 0;
  for (int64_t off = lo; off < hi && !rc; off += BLOCK) {
    hsize_t start = (hsize_t)off, cnt = (hsize_t)(hi - off < BLOCK ? hi - off : BLOCK), zero = 0;
    CHECK_H5(H5Sselect_hyperslab(fspace, H5S_SELECT_SET, &start, NULL, &cnt, NULL));
    CHECK_H5(H5Sselect_hyperslab(mspace, H5S_SELECT_SET, &zero, NULL, &cnt, NULL));
    if (H5Dread(it->d, it->mtype, mspace, fspace, H5P_DEFAULT, v->buf) < 0) {
      char what[96];
      snprintf(what, sizeof what, "cannot read entries %lld..%lld", (long long)off,
               (long long)(off + (int64_t)cnt - 1));
      rc = fail(v, it, what);
      break;
    }
    c = lv_crc32(c, v->buf, cnt * it->width);
    *bytes += (int64_t)(cnt * it->width);
  }
  CHECK_H5(H5Sclose(mspace));
  CHECK_H5(H5Sclose(fspace));
  *crc = c;
  return rc;
}

/* Piece p of P of an array of n entries: whole blocks [p nb / P, (p+1) nb / P), in entries. */
static void piece(int64_t n, int p, int P, int64_t *lo, int64_t *hi) {
  int64_t nb = (n + BLOCK - 1) / BLOCK;
  *lo = nb * p / P * BLOCK;
  *hi = nb * (p + 1) / P * BLOCK;
  if (*hi > n) *hi = n;
  if (*lo > n) *lo = n;
}

static int mismatch(verifier *v, const item *it, uint32_t got) {
  snprintf(v->err, v->cap, "%s: /%s/%s: digest mismatch (crc32 %08x stored, %08x read): the file is damaged",
           it->s->path, v->ds->split, lv_array_names[it->arr], (unsigned)it->s->digest[it->arr], (unsigned)got);
  return 1;
}

int lv_dataset_verify(lv_dataset *ds, lv_verify_stats *st, char *err, size_t cap) {
  if (ds->version < 2) return -1;
  double t0 = lv_now_s();
  verifier v;
  int64_t bytes = 0;
  int rc = open_items(&v, ds, err, cap);
  for (int i = 0; i < v.n && !rc; i++) {
    uint32_t crc = 0;
    rc = crc_range(&v, &v.it[i], 0, v.it[i].n, &crc, &bytes);
    if (!rc && crc != (uint32_t)v.it[i].s->digest[v.it[i].arr]) rc = mismatch(&v, &v.it[i], crc);
  }
  if (st) *st = (lv_verify_stats){v.n, bytes, lv_now_s() - t0};
  close_items(&v);
  return rc;
}

void lv_dataset_verify_all(lv_dataset *ds, const char *key, int verify) {
  if (ds->version < 2) {
    log_info("note: %s: %s is a version 1 dataset: it carries no digests, so its contents cannot be verified "
             "(convert it again with `longvq data` to add them)", key, ds->shards[0].path);
    return;
  }
  if (!verify) return;
  const int W = dist_size(), r = dist_rank();
  double t0 = lv_now_s();
  char err[1024] = "";
  verifier v;
  int64_t bytes = 0;
  int bad = open_items(&v, ds, err, sizeof err);
  uint32_t *mine = calloc((size_t)v.n + 1, sizeof *mine);
  CHECK_ALLOC(mine);
  for (int i = 0; i < v.n && !bad; i++) {
    int64_t lo, hi;
    piece(v.it[i].n, r, W, &lo, &hi);
    bad = crc_range(&v, &v.it[i], lo, hi, &mine[i], &bytes);
  }
  CHECK_INPUT_ALL(bad, "%s: %s", key, err); /* a damaged chunk may be in one rank's piece only */
  /* This rank's piece of every array, joined over the ranks in offset order (io/digest.h). */
  lv_digest_piece *pieces = calloc((size_t)v.n + 1, sizeof *pieces);
  int64_t *len = calloc((size_t)v.n + 1, sizeof *len), total = 0;
  uint32_t *crc = calloc((size_t)v.n + 1, sizeof *crc);
  CHECK_ALLOC(pieces);
  CHECK_ALLOC(len);
  CHECK_ALLOC(crc);
  for (int i = 0; i < v.n; i++) {
    int64_t lo, hi, w = (int64_t)v.it[i].width;
    piece(v.it[i].n, r, W, &lo, &hi);
    pieces[i] = (lv_digest_piece){i, lo * w, (hi - lo) * w, mine[i], 0};
    len[i] = v.it[i].n * w;
    total += len[i];
  }
  if (lv_digest_combine(pieces, v.n, len, v.n, crc) >= 0) DIE("dataset verification: pieces do not cover the arrays");
  for (int i = 0; i < v.n && !bad; i++)
    if (crc[i] != (uint32_t)v.it[i].s->digest[v.it[i].arr]) bad = mismatch(&v, &v.it[i], crc[i]);
  int n_arrays = v.n;
  close_items(&v);
  free(mine);
  free(pieces);
  free(len);
  free(crc);
  if (bad) DIE_INPUT_ALL("%s: %s", key, err); /* every rank combined the same pieces */
  double dt = lv_now_s() - t0;
  dist_max_f64(&dt, 1);
  log_info("%s: split '%s' verified: %d arrays, %.1f MB, digests match (%.2f s, %.0f MB/s over %d rank%s; "
           "data.verify=false skips this)", key, ds->split, n_arrays, (double)total / 1e6, dt,
           (double)total / 1e6 / (dt > 1e-9 ? dt : 1e-9), W, W == 1 ? "" : "s");
}
