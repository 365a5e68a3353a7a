/* Damaged checkpoints: each kind is refused with a message naming the file and the problem (the
 * same on every rank), lv_ckpt_find_resumable falls back to the previous intact checkpoint, and a
 * byte flipped anywhere in a file either makes the read fail or leaves every value intact. */
#include <fcntl.h>
#include <hdf5.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "io/checkpoint_internal.h"
#include "tests/test_checkpoint.h"
#include "trainer/base/dist.h"
#include "trainer/base/hash.h"

int ck_copy_file(const char *src, const char *dst) {
  unlink(dst);
  FILE *a = fopen(src, "rb"), *b = fopen(dst, "wb");
  char buf[1 << 16];
  size_t n;
  int ok = a && b;
  while (ok && (n = fread(buf, 1, sizeof buf, a)) > 0) ok = fwrite(buf, 1, n, b) == n;
  if (a) fclose(a);
  if (b && fclose(b) != 0) ok = 0;
  return ok ? 0 : 1;
}

static long file_size(const char *p) {
  struct stat st;
  return stat(p, &st) == 0 ? (long)st.st_size : -1;
}

static int flip(const char *path, long off) {
  int fd = open(path, O_RDWR);
  unsigned char c;
  int ok = fd >= 0 && pread(fd, &c, 1, off) == 1;
  c ^= 0x55;
  ok = ok && pwrite(fd, &c, 1, off) == 1;
  if (fd >= 0) close(fd);
  return ok ? 0 : 1;
}

int ck_corrupt_chunk(const char *src, const char *h5path, const char *out) {
  hid_t f = H5Fopen(src, H5F_ACC_RDONLY, H5P_DEFAULT), ds = f >= 0 ? H5Dopen2(f, h5path, H5P_DEFAULT) : -1;
  hid_t sp = ds >= 0 ? H5Dget_space(ds) : -1;
  hsize_t coord[2], size = 0;
  haddr_t addr = 0;
  unsigned mask;
  int bad = sp < 0 || H5Dget_chunk_info(ds, sp, 0, coord, &mask, &addr, &size) < 0;
  if (sp >= 0) H5Sclose(sp);
  if (ds >= 0) H5Dclose(ds);
  if (f >= 0) H5Fclose(f);
  if (bad) return fprintf(stderr, "%s: no chunk for %s\n", src, h5path), 1;
  return ck_copy_file(src, out) || flip(out, (long)(addr + size / 2));
}

void ck_manifest(const ck_model *c, const char *dir, int64_t step) {
  char p[4200];
  snprintf(p, sizeof p, "%s/manifest_%lld.txt", dir, (long long)step);
  FILE *f = fopen(p, "w");
  if (!f) DIE("%s: cannot write", p);
  for (int s = 0; s < 2; s++)
    for (int i = 0; i < (s ? c->lay.n_state : c->lay.n_params); i++) {
      const lv_tensor *t = s ? &c->lay.state[i] : &c->lay.params[i];
      const float *x = (s ? c->state : c->params) + t->offset;
      double sq = 0;
      for (int64_t j = 0; j < t->numel; j++) sq += (double)x[j] * (double)x[j];
      fprintf(f, "%s %d %lld %lld %.17g %.9g\n", t->name, t->ndim, (long long)t->shape[0], (long long)t->shape[1], sq,
              (double)x[0]);
    }
  fclose(f);
}

/* ---- damage done to a copy of a good file (rank 0; serial HDF5) ------------------------------ */

static int h5_edit(const char *path, int kind) {
  hid_t f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
  if (f < 0) return 1;
  int bad = 0;
  if (kind == 0) bad = H5Ldelete(f, "/model/layers/1/ffn/fc2/bias", H5P_DEFAULT) < 0;
  if (kind == 1) bad = H5Ldelete(f, "/optimizer/exp_avg_sq/embed/weight", H5P_DEFAULT) < 0;
  if (kind == 2) bad = H5Adelete(f, "format") < 0, lv_h5_attr_fixed_str(f, "format", "longvq-model");
  if (kind == 3 || kind == 4) {
    bad = H5Adelete(f, kind == 3 ? "format_version" : "world_size") < 0;
    hid_t sp = H5Screate(H5S_SCALAR), a = H5Acreate2(f, kind == 3 ? "format_version" : "world_size", H5T_STD_I64LE, sp,
                                                     H5P_DEFAULT, H5P_DEFAULT);
    int64_t val = kind == 3 ? 2 : 0;
    bad |= a < 0 || H5Awrite(a, H5T_NATIVE_INT64, &val) < 0;
    H5Aclose(a), H5Sclose(sp);
  }
  if (kind == 5) {
    hsize_t n = 4;
    hid_t lcpl = H5Pcreate(H5P_LINK_CREATE), sp = H5Screate_simple(1, &n, NULL);
    H5Pset_create_intermediate_group(lcpl, 1);
    hid_t ds = H5Dcreate2(f, "/model/extra/weight", H5T_IEEE_F32LE, sp, lcpl, H5P_DEFAULT, H5P_DEFAULT);
    bad = ds < 0;
    H5Dclose(ds), H5Sclose(sp), H5Pclose(lcpl);
  }
  H5Fclose(f);
  return bad;
}

typedef struct {
  const char *what, *expect; /* expected text in lv_ckpt_read's message */
} damage;

static const damage kDamage[] = {
    {"truncated to half", "truncated"},
    {"byte flipped in /model/embed/weight", "tensor embed.weight cannot be read (checksum"},
    {"byte flipped in an exp_avg chunk", "optimizer tensor exp_avg of layers.1.ffn.fc1.weight cannot be read"},
    {"byte flipped in a codebook", "tensor layers.0.mixer.codebook.c_sum cannot be read"},
    {"byte flipped in /config", "/config cannot be read"},
    {"missing tensor", "missing tensor layers.1.ffn.fc2.bias"},
    {"missing moment", "missing optimizer tensor exp_avg_sq of embed.weight"},
    {"wrong format attribute", "not a longvq checkpoint (format 'longvq-model'"},
    {"newer format_version", "format_version 2 is newer"},
    {"world_size 0", "'world_size' is 0"},
    {"extra tensor", "has tensor extra.weight"},
    {"empty file", "cannot open as HDF5"},
    {"not HDF5", "cannot open as HDF5"},
};
#define N_DAMAGE ((int)(sizeof kDamage / sizeof kDamage[0]))

static int make_damaged(int k, const char *good, const char *out) {
  static const char *const chunk_of[] = {NULL, "/model/embed/weight", "/optimizer/exp_avg/layers/1/ffn/fc1/weight",
                                         "/model/layers/0/mixer/codebook/c_sum", "/config"};
  if (k >= 1 && k <= 4) return ck_corrupt_chunk(good, chunk_of[k], out);
  if (k == 11 || k == 12) {
    unlink(out);
    FILE *f = fopen(out, "w");
    if (f && k == 12) fputs("model:\n  d_model: 24\n", f);
    return f ? fclose(f) : 1;
  }
  if (ck_copy_file(good, out)) return 1;
  if (k == 0) return truncate(out, file_size(out) / 2);
  return h5_edit(out, k - 5);
}

static int same_on_all_ranks(const char *s) {
  return dist_all_equal_u64(lv_fnv1a(LV_FNV1A_INIT, s, strlen(s)));
}

int ck_corruption_suite(const char *dir) {
  int fail0 = tu_failures;
  char d[4200], good10[4300], good20[4300], bad30[4300], tmp40[4300], path[4300], err[1024];
  snprintf(d, sizeof d, "%s/corrupt", dir);
  if (dist_is_root()) mkdir(d, 0755);
  ck_model c;
  ck_model_init(&c, 0);
  ck_decomp(&c, "zero", 3);
  lv_ckpt_chunk_floats = 256; /* several chunks per big tensor */
  lv_ckpt_path(good10, sizeof good10, d, 10);
  lv_ckpt_path(good20, sizeof good20, d, 20);
  lv_ckpt_path(bad30, sizeof bad30, d, 30);
  snprintf(tmp40, sizeof tmp40, "%s/ckpt_00000040.h5.tmp", d);
  ck_write(&c, good10, 10, 1);
  ck_write(&c, good20, 20, 1);
  ck_write(&c, bad30, 30, 1); /* the good original of the damaged copies */
  lv_ckpt_chunk_floats = (int64_t)1 << 20;
  char orig[4300];
  snprintf(orig, sizeof orig, "%s/orig30.h5", d);
  if (dist_is_root()) {
    EXPECT(rename(bad30, orig) == 0, "rename");
    EXPECT(ck_copy_file(good20, tmp40) == 0 && truncate(tmp40, file_size(tmp40) / 3) == 0, "tmp leftover");
  }
  for (int k = 0; k < N_DAMAGE; k++) {
    int made = 0;
    if (dist_is_root()) {
      made = make_damaged(k, orig, bad30) == 0;
      lv_ckpt_write_latest(d, "ckpt_00000050.h5"); /* names a file that does not exist */
    }
    dist_bcast_from(&made, sizeof made, 0);
    EXPECT(made, "%s: could not make the damaged file", kDamage[k].what);
    int64_t r = ck_read_verify(&c, bad30, 30, err, sizeof err);
    EXPECT(r == -1 && strstr(err, kDamage[k].expect) && strstr(err, bad30), "%s: read gives %lld '%s', want '%s'",
           kDamage[k].what, (long long)r, r == -1 ? err : "", kDamage[k].expect);
    EXPECT(same_on_all_ranks(err), "%s: message differs between ranks", kDamage[k].what);
    if (dist_is_root()) printf("  %-40s -> %s\n", kDamage[k].what, err);
    lv_ckpt_meta meta;
    int bad = lv_ckpt_check(bad30, dist_rank(), dist_size(), &meta, NULL, NULL, err, sizeof err);
    free((void *)meta.config_yaml);
    EXPECT(dist_any(bad), "%s: lv_ckpt_check accepts it", kDamage[k].what);
    int found = lv_ckpt_find_resumable(d, path, sizeof path);
    EXPECT(found == 0 && !strcmp(path, good20), "%s: resume picks '%s' (rc %d), want %s", kDamage[k].what,
           found == 0 ? path : "", found, good20);
    EXPECT(ck_read_verify(&c, path, 20, err, sizeof err) == 0, "%s: the fallback does not read: %s", kDamage[k].what,
           err);
  }
  /* A checkpoint of another model: refused by the reader (shapes), but intact for the picker. */
  ck_model other;
  ck_model_init(&other, 0);
  lv_layout_free(&other.lay);
  lv_dims dd = c.lay.dims;
  dd.D = 32;
  EXPECT(lv_layout_build(&other.lay, &dd, err, sizeof err) == 0, "layout");
  free(other.params);
  other.params = calloc(other.lay.n_param_floats, sizeof(float));
  lv_ckpt_meta meta;
  int r = lv_ckpt_read(good20, &other.lay, other.params, other.state, NULL, NULL, NULL, NULL, 0, &meta, err, sizeof err);
  EXPECT(r == 1 && strstr(err, "has shape (30, 24), the config needs (30, 32)"), "other model: '%s'", err);
  ck_model_free(&other);
  /* Nothing intact / nothing at all. */
  if (dist_is_root()) {
    unlink(good10), unlink(good20), unlink(orig);
  }
  dist_barrier();
  EXPECT(lv_ckpt_find_resumable(d, path, sizeof path) == 2, "only a damaged checkpoint: rc 2");
  if (dist_is_root()) unlink(bad30);
  dist_barrier();
  EXPECT(lv_ckpt_find_resumable(d, path, sizeof path) == 1, "no checkpoint: rc 1");
  /* One byte flipped anywhere: the read fails or every value is right (never silently wrong). */
  lv_ckpt_chunk_floats = 256;
  ck_write(&c, good10, 10, 1);
  lv_ckpt_chunk_floats = (int64_t)1 << 20;
  long size = file_size(good10);
  int failed = 0, intact = 0;
  char where[256] = "";
  snprintf(path, sizeof path, "%s/flipped.h5", d);
  for (long pos = 0; pos < size; pos += pos < 8192 ? 61 : size / 200 + 1) {
    if (dist_is_root()) EXPECT(ck_copy_file(good10, path) == 0 && flip(path, pos) == 0, "flip %ld", pos);
    dist_barrier();
    int64_t w = ck_read_verify(&c, path, 10, err, sizeof err);
    EXPECT(w <= 0, "byte %ld of %ld flipped: the read succeeds with %lld wrong values", pos, size, (long long)w);
    failed += w < 0, intact += w == 0;
    if (w == 0 && strlen(where) < 200) snprintf(where + strlen(where), sizeof where - strlen(where), " %ld", pos);
  }
  if (dist_is_root())
    printf("  single byte flips at %d offsets of a %ld-byte file: %d refused, %d read back intact (at%s), none may be "
           "silently wrong\n", failed + intact, size, failed, intact, where);
  ck_model_free(&c);
  return tu_failures - fail0;
}
