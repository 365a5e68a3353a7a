/* Integrity beyond HDF5's chunk checksums: a whole chunk zeroed together with its fletcher32 (which
 * then passes) in any dataset of a checkpoint is refused by the reader (any decomposition), by the
 * layout-free check and so by resume=auto, which falls back; the same for model files; files
 * written before digests still load; and run-dir entries that are not regular files (a FIFO or a
 * directory named like a checkpoint) are skipped without blocking, and refused as later targets. */
#include <fcntl.h>
#include <hdf5.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "io/checkpoint_internal.h"
#include "io/digest.h"
#include "tests/test_checkpoint.h"
#include "trainer/base/dist.h"

/* The stored bytes of one chunk (the middle one) of a dataset, or of a contiguous dataset. */
static int stored_span(const char *path, const char *h5path, haddr_t *addr, hsize_t *size) {
  hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT), ds = f >= 0 ? H5Dopen2(f, h5path, H5P_DEFAULT) : -1;
  hid_t dcpl = ds >= 0 ? H5Dget_create_plist(ds) : -1, sp = ds >= 0 ? H5Dget_space(ds) : -1;
  int bad = dcpl < 0 || sp < 0;
  if (!bad && H5Pget_layout(dcpl) == H5D_CHUNKED) {
    hsize_t n = 0, coord[2];
    unsigned mask;
    bad = H5Dget_num_chunks(ds, sp, &n) < 0 || n == 0 ||
          H5Dget_chunk_info(ds, sp, n / 2, coord, &mask, addr, size) < 0;
  } else if (!bad) {
    *addr = H5Dget_offset(ds);
    *size = H5Dget_storage_size(ds);
    bad = *addr == HADDR_UNDEF;
  }
  if (sp >= 0) H5Sclose(sp);
  if (dcpl >= 0) H5Pclose(dcpl);
  if (ds >= 0) H5Dclose(ds);
  if (f >= 0) H5Fclose(f);
  return bad;
}

/* Rank 0: copy src to out (new inode) with the stored bytes of h5path zeroed: data and checksum. */
static int zero_copy(const char *src, const char *h5path, const char *out) {
  haddr_t addr;
  hsize_t size;
  if (stored_span(src, h5path, &addr, &size) || ck_copy_file(src, out)) return 1;
  char *z = calloc(size, 1);
  int fd = open(out, O_WRONLY);
  int bad = !z || fd < 0 || pwrite(fd, z, size, (off_t)addr) != (ssize_t)size;
  if (fd >= 0) close(fd);
  free(z);
  return bad;
}

#define MAX_DATASETS 512

typedef struct {
  char path[MAX_DATASETS][256];
  int n;
} names;

static herr_t add_name(hid_t obj, const char *name, const H5O_info_t *info, void *data) {
  (void)obj;
  names *l = data;
  if (info->type == H5O_TYPE_DATASET && l->n < MAX_DATASETS) snprintf(l->path[l->n++], 256, "/%s", name);
  return 0;
}

/* Every dataset of the file (malloc'd), in creation order. */
static names *list_datasets(const char *path) {
  names *l = calloc(1, sizeof *l);
  CHECK_ALLOC(l);
  hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
  if (f >= 0) H5Ovisit2(f, H5_INDEX_CRT_ORDER, H5_ITER_INC, add_name, l, H5O_INFO_BASIC);
  if (f >= 0) H5Fclose(f);
  return l;
}

/* What the reader says of dataset h5 when its data does not match: "tensor a.b does not match its
 * crc32" for /model/a/b, "optimizer tensor exp_avg of a.b ..." for /optimizer/exp_avg/a/b. */
static void expected_message(const char *h5, char *out, size_t cap) {
  char buf[256], what[64] = "";
  const char *name = h5;
  if (!strncmp(h5, "/model/", 7)) {
    snprintf(what, sizeof what, "tensor ");
    name = h5 + 7;
  } else if (!strncmp(h5, "/optimizer/", 11)) {
    const char *slash = strchr(h5 + 11, '/');
    snprintf(what, sizeof what, "optimizer tensor %.*s of ", (int)(slash - (h5 + 11)), h5 + 11);
    name = slash + 1;
  }
  snprintf(buf, sizeof buf, "%s", name);
  for (char *c = buf; *c && name != h5; c++)
    if (*c == '/') *c = '.';
  snprintf(out, cap, "%s%s does not match its crc32", what, buf);
}

/* Rank 0: the digests removed (a file written before them) or, with only_one, the second dataset's. */
static int strip_digests(const char *path, int only_one) {
  names *l = list_datasets(path);
  hid_t f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
  int bad = f < 0 || l->n < 2;
  if (!bad && !only_one) bad = H5Adelete(f, LV_DIGEST_ROOT_ATTR) < 0;
  for (int i = only_one; i < (only_one ? 2 : l->n) && !bad; i++)
    bad = H5Adelete_by_name(f, l->path[i], LV_DIGEST_ATTR, H5P_DEFAULT) < 0;
  if (f >= 0) H5Fclose(f);
  free(l);
  return bad;
}

static int made_on_root(int ok) {
  dist_bcast_from(&ok, sizeof ok, 0);
  return ok;
}

/* Every dataset of a checkpoint in turn (at one rank; every third under mpirun, to keep the time
 * down): its middle chunk zeroed with its checksum. The resume=auto fallback is taken every 8th. */
static void zeroed_chunks(ck_model *c, const char *d) {
  char good[4500], orig[4500], bad[4500], path[4500], err[1024];
  lv_ckpt_path(good, sizeof good, d, 20);
  lv_ckpt_path(bad, sizeof bad, d, 30);
  snprintf(orig, sizeof orig, "%s/orig30.h5", d);
  lv_ckpt_chunk_floats = 256; /* big tensors in several chunks, some written by several ranks */
  ck_write(c, good, 20, 1);
  ck_write(c, bad, 30, 1);
  lv_ckpt_chunk_floats = (int64_t)1 << 20;
  if (dist_is_root()) EXPECT(rename(bad, orig) == 0, "rename");
  dist_barrier();
  ck_decomp(c, "cut", 4); /* read in another decomposition than written */
  names *l = list_datasets(orig);
  int refused[3] = {0, 0, 0}, trials = 0, finds = 0, stride = dist_size() == 1 ? 1 : 3;
  for (int i = 0; i < l->n; i += stride, trials++) {
    char want[512];
    expected_message(l->path[i], want, sizeof want);
    EXPECT(made_on_root(dist_is_root() ? zero_copy(orig, l->path[i], bad) == 0 : 0), "zero %s", l->path[i]);
    int64_t r = ck_read_verify(c, bad, 30, err, sizeof err);
    int ok = r == -1 && strstr(err, want) && strstr(err, bad);
    EXPECT(ok, "%s zeroed: read gives %lld '%s', want '%s'", l->path[i], (long long)r, r == -1 ? err : "", want);
    refused[0] += ok;
    lv_ckpt_meta meta;
    int b = lv_ckpt_check(bad, dist_rank(), dist_size(), &meta, NULL, NULL, err, sizeof err);
    free((void *)meta.config_yaml);
    ok = dist_any(b);
    EXPECT(ok, "%s zeroed: lv_ckpt_check accepts it", l->path[i]);
    refused[1] += ok;
    if (trials % 8) continue;
    ok = lv_ckpt_find_resumable(d, path, sizeof path) == 0 && !strcmp(path, good);
    EXPECT(ok, "%s zeroed: resume=auto picks '%s', want %s", l->path[i], path, good);
    refused[2] += ok, finds++;
  }
  if (dist_is_root())
    printf("  a whole chunk (data + fletcher32) zeroed in %d of the %d datasets, one at a time: %d refused by the "
           "reader, %d by the check; resume=auto fell back to the previous checkpoint %d times in %d\n", trials, l->n,
           refused[0], refused[1], refused[2], finds);
  EXPECT(l->n == 3 * c->lay.n_params + c->lay.n_state + 1, "%d datasets", l->n);
  /* Older files (no digests) read, with every value; a file that declares digests needs each. */
  if (dist_is_root()) EXPECT(ck_copy_file(orig, bad) == 0 && strip_digests(bad, 0) == 0, "strip");
  dist_barrier();
  EXPECT(ck_read_verify(c, bad, 30, err, sizeof err) == 0, "a checkpoint without digests: %s", err);
  lv_ckpt_tensor *t = NULL;
  lv_ckpt_meta meta;
  int nt = 0;
  EXPECT(lv_ckpt_check(bad, 0, 1, &meta, &t, &nt, err, sizeof err) == 0 && nt > 0 && t[0].read[0] == 1 &&
             t[0].digest[0] == 0, "check of a checkpoint without digests: %s", err);
  free(t);
  free((void *)meta.config_yaml);
  dist_barrier(); /* every rank is done with the file before rank 0 rewrites it */
  if (dist_is_root()) EXPECT(ck_copy_file(orig, bad) == 0 && strip_digests(bad, 1) == 0, "strip one");
  dist_barrier();
  EXPECT(ck_read_verify(c, bad, 30, err, sizeof err) == -1 && strstr(err, "has no crc32 digest"), "one digest "
         "missing: '%s'", err);
  if (dist_is_root()) unlink(orig), unlink(bad), unlink(good);
  free(l);
}

/* Model files (one rank writes, every rank loads): digests, a zeroed chunk, an older file. */
static void model_files(ck_model *c, const char *d) {
  char good[4500], bad[4500], err[1024];
  snprintf(good, sizeof good, "%s/model.h5", d);
  snprintf(bad, sizeof bad, "%s/model_bad.h5", d);
  ck_fill(c, 5);
  if (dist_is_root()) lv_model_save(good, &c->lay, c->params, c->state, CK_YAML, 5);
  dist_barrier();
  EXPECT(lv_model_load(good, &c->lay, c->params, c->state, err, sizeof err) == 0, "model file: %s", err);
  const char *what[] = {"/model/layers/1/ffn/fc1/weight", "/model/layers/0/mixer/codebook/c_sum", "/config"};
  const char *want[] = {"tensor layers.1.ffn.fc1.weight does not match its crc32",
                        "tensor layers.0.mixer.codebook.c_sum does not match its crc32", "/config does not match"};
  for (int k = 0; k < 3; k++) {
    EXPECT(made_on_root(dist_is_root() ? zero_copy(good, what[k], bad) == 0 : 0), "zero %s", what[k]);
    int r = lv_model_load(bad, &c->lay, c->params, c->state, err, sizeof err);
    EXPECT(r == 1 && strstr(err, want[k]) && strstr(err, bad), "model file, %s zeroed: %d '%s'", what[k], r, err);
    char *yaml = lv_model_read_config(bad);
    EXPECT((yaml != NULL) == (k < 2), "model file, %s zeroed: config %s", what[k], yaml ? "read" : "refused");
    free(yaml);
    dist_barrier();
  }
  if (dist_is_root()) EXPECT(ck_copy_file(good, bad) == 0 && strip_digests(bad, 0) == 0, "strip");
  dist_barrier();
  int n_ranges = c->n, r = lv_model_load(bad, &c->lay, c->params, c->state, err, sizeof err);
  c->n = 0; /* ck_verify: params and state only */
  EXPECT(r == 0 && ck_verify(c, 5) == 0, "a model file without digests: %s", r ? err : "wrong values");
  c->n = n_ranges;
  dist_barrier(); /* every rank closed it */
  if (dist_is_root()) { /* a digest of another kind: this build cannot verify it, so it refuses */
    hid_t f = H5Fopen(bad, H5F_ACC_RDWR, H5P_DEFAULT);
    EXPECT(f >= 0 && H5Adelete(f, LV_DIGEST_ROOT_ATTR) < 0, "open %s", bad); /* stripped already */
    if (f >= 0) lv_h5_attr_fixed_str(f, LV_DIGEST_ROOT_ATTR, "sha256"), H5Fclose(f);
  }
  dist_barrier();
  EXPECT(lv_model_load(bad, &c->lay, c->params, c->state, err, sizeof err) == 1 && strstr(err, "unknown kind"),
         "digest sha256: '%s'", err);
}

static void alarm_fail(int sig) {
  (void)sig;
  static const char msg[] = "FAIL: blocked on a run-dir entry (alarm)\n";
  if (write(2, msg, sizeof msg - 1) < 0) _exit(3);
  _exit(3);
}

/* A FIFO and a directory named like checkpoints, a FIFO as the latest record. */
static void odd_entries(ck_model *c, const char *d) {
  char p[4500], path[4500], err[1024];
  const char *odd[] = {"ckpt_00000020.h5", "ckpt_00000030.h5", "ckpt_00000040.h5.tmp", "latest"};
  for (int i = 0; i < 4 && dist_is_root(); i++) { /* left by an earlier run of the test */
    snprintf(p, sizeof p, "%s/%s", d, odd[i]);
    if (unlink(p) != 0) rmdir(p);
  }
  dist_barrier();
  lv_ckpt_path(p, sizeof p, d, 10);
  ck_write(c, p, 10, 1);
  if (dist_is_root()) {
    snprintf(p, sizeof p, "%s/ckpt_00000020.h5", d);
    EXPECT(mkfifo(p, 0644) == 0, "mkfifo");
    snprintf(p, sizeof p, "%s/ckpt_00000030.h5", d);
    EXPECT(mkdir(p, 0755) == 0, "mkdir");
    snprintf(p, sizeof p, "%s/ckpt_00000040.h5.tmp", d);
    EXPECT(mkfifo(p, 0644) == 0, "mkfifo tmp");
  }
  dist_barrier();
  signal(SIGALRM, alarm_fail);
  alarm(120); /* before the fix, opening the FIFO blocked for ever */
  char names_[4][LV_CKPT_NAME_MAX];
  EXPECT(lv_ckpt_list(d, names_, NULL, 4) == 1, "list: only the regular file");
  int found = lv_ckpt_find_resumable(d, path, sizeof path);
  lv_ckpt_path(p, sizeof p, d, 10);
  EXPECT(found == 0 && !strcmp(path, p), "resume=auto: rc %d '%s', want %s", found, path, p);
  EXPECT(ck_read_verify(c, path, 10, err, sizeof err) == 0, "the fallback reads: %s", err);
  snprintf(p, sizeof p, "%s/ckpt_00000020.h5", d);
  EXPECT(ck_read_verify(c, p, 20, err, sizeof err) == -1 && strstr(err, "not a regular file (a FIFO)"),
         "read of a FIFO: '%s'", err);
  EXPECT(lv_model_load(p, &c->lay, c->params, c->state, err, sizeof err) == 1 && strstr(err, "a FIFO"),
         "model load of a FIFO: '%s'", err);
  EXPECT(lv_ckpt_check_targets(d, 10, 15, err, sizeof err) == 0, "no target in (10, 15]: '%s'", err);
  EXPECT(lv_ckpt_check_targets(d, 10, 25, err, sizeof err) == 1 && strstr(err, "ckpt_00000020.h5 is a FIFO"),
         "target 20: '%s'", err);
  EXPECT(lv_ckpt_check_targets(d, 20, 30, err, sizeof err) == 1 && strstr(err, "ckpt_00000030.h5 is a directory") &&
             strstr(err, "step-30 checkpoint"), "target 30: '%s'", err);
  EXPECT(lv_ckpt_check_targets(d, 35, 45, err, sizeof err) == 1 && strstr(err, "ckpt_00000040.h5.tmp is a FIFO"),
         "target 40 (.tmp): '%s'", err);
  if (dist_is_root()) {
    lv_ckpt_rotate(d, 1, 0); /* leaves what is not a regular file alone */
    snprintf(p, sizeof p, "%s/ckpt_00000030.h5", d);
    struct stat st;
    EXPECT(stat(p, &st) == 0 && S_ISDIR(st.st_mode), "rotation kept the directory");
    snprintf(p, sizeof p, "%s/latest", d);
    unlink(p);
    EXPECT(mkfifo(p, 0644) == 0, "mkfifo latest");
    char name[LV_CKPT_NAME_MAX];
    EXPECT(lv_ckpt_latest(d, name, sizeof name) == 0, "a FIFO as latest: no record");
  }
  dist_barrier();
  EXPECT(lv_ckpt_find_resumable(d, path, sizeof path) == 0, "resume=auto with a FIFO as latest");
  EXPECT(lv_ckpt_check_targets(d, 10, 15, err, sizeof err) == 1 && strstr(err, "latest is a FIFO"),
         "latest FIFO: '%s'", err);
  alarm(0);
}

int ck_integrity_suite(const char *dir) {
  int fail0 = tu_failures;
  char d[4200], d2[4300], d3[4300];
  snprintf(d, sizeof d, "%s/integrity", dir);
  snprintf(d2, sizeof d2, "%s/odd", d);
  snprintf(d3, sizeof d3, "%s/model", d);
  if (dist_is_root()) mkdir(d, 0755), mkdir(d2, 0755), mkdir(d3, 0755);
  dist_barrier();
  ck_model c;
  ck_model_init(&c, 0);
  ck_decomp(&c, "zero", 3);
  H5E_auto2_t fn;
  void *cd;
  H5Eget_auto2(H5E_DEFAULT, &fn, &cd);
  H5Eset_auto2(H5E_DEFAULT, NULL, NULL); /* the damage makes HDF5 calls of the test fail on purpose */
  zeroed_chunks(&c, d);
  model_files(&c, d3);
  odd_entries(&c, d2);
  H5Eset_auto2(H5E_DEFAULT, fn, cd);
  ck_model_free(&c);
  return tu_failures - fail0;
}
