/* Fashion-MNIST (Xiao et al. 2017) from its IDX files into a classification dataset of 784-token
 * pixel sequences (row-major, token = pixel value 0..255, vocab 256, 10 classes).
 * Splits: test = the t10k files; val = the LAST --val images of the train files (the train files
 * are already shuffled, so a tail is a fair sample, and it needs no seed); train = the rest. */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "io/config.h" /* LV_PATH_MAX */
#include "io/data_convert.h"
#include "trainer/base/check.h"
#include "trainer/base/log.h"

#define IDX_IMAGES_MAGIC 0x00000803u /* unsigned byte, 3 dimensions */
#define IDX_LABELS_MAGIC 0x00000801u /* unsigned byte, 1 dimension */
#define SIDE 28

static const char *const class_names[10] = {"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                                            "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"};

/* zlib prefixes gzerror() with the path; we print the path ourselves. */
static const char *gz_message(gzFile g, const char *path, int *err) {
  const char *m = gzerror(g, err);
  size_t n = strlen(path);
  return !strncmp(m, path, n) && !strncmp(m + n, ": ", 2) ? m + n + 2 : m;
}

/* Exactly n bytes or a clear error: truncation and gzip corruption are told apart. */
static void read_exact(gzFile g, const char *path, void *dst, int64_t n, const char *what) {
  int64_t done = 0;
  while (done < n) {
    int64_t want = n - done > INT_MAX / 2 ? INT_MAX / 2 : n - done;
    int got = gzread(g, (char *)dst + done, (unsigned)want);
    int err = 0;
    if (got < 0) DIE_INPUT("%s: corrupt gzip data while reading %s: %s", path, what, gz_message(g, path, &err));
    if (got == 0) {
      const char *msg = gz_message(g, path, &err);
      DIE_INPUT("%s: truncated: only %lld of the %lld bytes of %s%s%s", path, (long long)done, (long long)n, what,
                err ? ": " : "", err ? msg : "");
    }
    done += got;
  }
}

static uint32_t be32(const uint8_t *p) {
  return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* One IDX file: magic, then `ndims` big-endian sizes, then the bytes. Returns the data (malloc'd)
 * and the item count; images must be 28 x 28. */
static uint8_t *read_idx(const char *path, uint32_t magic, int ndims, int64_t *count) {
  gzFile g = gzopen(path, "rb");
  if (!g) DIE_INPUT("%s: cannot open: %s", path, errno ? strerror(errno) : "gzopen failed");
  uint8_t hdr[16];
  read_exact(g, path, hdr, 4 + 4 * ndims, "the IDX header");
  uint32_t m = be32(hdr);
  if (m != magic)
    DIE_INPUT("%s: bad IDX magic number 0x%08x (expected 0x%08x, %s)", path, m, magic,
              ndims == 3 ? "unsigned-byte images" : "unsigned-byte labels");
  int64_t n = be32(hdr + 4), item = 1;
  if (ndims == 3) {
    uint32_t rows = be32(hdr + 8), cols = be32(hdr + 12);
    if (rows != SIDE || cols != SIDE) DIE_INPUT("%s: images are %u x %u, expected %d x %d", path, rows, cols, SIDE, SIDE);
    item = SIDE * SIDE;
  }
  if (n < 1 || n > 10000000) DIE_INPUT("%s: implausible item count %lld", path, (long long)n);
  uint8_t *data = malloc((size_t)(n * item));
  CHECK_ALLOC(data);
  read_exact(g, path, data, n * item, ndims == 3 ? "the pixels" : "the labels");
  uint8_t extra;
  int more = gzread(g, &extra, 1);
  if (more < 0) DIE_INPUT("%s: corrupt gzip data at the end: %s", path, gz_message(g, path, &more));
  if (more > 0) DIE_INPUT("%s: unexpected bytes after %lld items", path, (long long)n);
  gzclose(g);
  *count = n;
  return data;
}

static void load_pair(const char *dir, const char *prefix, uint8_t **img, int32_t **lbl, int64_t *n,
                      char *sources, size_t cap) {
  char ip[LV_PATH_MAX], lp[LV_PATH_MAX];
  snprintf(ip, sizeof ip, "%s/%s-images-idx3-ubyte.gz", dir, prefix);
  snprintf(lp, sizeof lp, "%s/%s-labels-idx1-ubyte.gz", dir, prefix);
  size_t len = strlen(sources);
  snprintf(sources + len, cap - len, "%s%s\n%s", len ? "\n" : "", ip, lp);
  int64_t ni, nl;
  *img = read_idx(ip, IDX_IMAGES_MAGIC, 3, &ni);
  uint8_t *raw = read_idx(lp, IDX_LABELS_MAGIC, 1, &nl);
  if (ni != nl) DIE_INPUT("%s: %lld labels for %lld images in %s", lp, (long long)nl, (long long)ni, ip);
  *lbl = malloc((size_t)nl * sizeof **lbl);
  CHECK_ALLOC(*lbl);
  for (int64_t i = 0; i < nl; i++) {
    if (raw[i] > 9) DIE_INPUT("%s: label %u of item %lld is not a class 0..9", lp, raw[i], (long long)i);
    (*lbl)[i] = raw[i];
  }
  free(raw);
  *n = ni;
}

/* Fixed-length samples: offsets are multiples of 784. */
static int64_t *fixed_offsets(int64_t n) {
  int64_t *o = malloc((size_t)(n + 1) * sizeof *o);
  CHECK_ALLOC(o);
  for (int64_t i = 0; i <= n; i++) o[i] = i * SIDE * SIDE;
  return o;
}

int lv_data_fmnist(int argc, char **argv) {
  lv_data_common c = {.shards = 1};
  char *dir = "/usr/share/datasets/fashion-mnist";
  int64_t n_val = 5000;
  const lv_opt opts[] = {
      LV_DATA_COMMON_OPTS(c),
      {"--dir", LV_OPT_STR, &dir, "directory of {train,t10k}-{images-idx3,labels-idx1}-ubyte.gz", 0},
      {"--val", LV_OPT_I64, &n_val, "validation images: the last N of the train files (default 5000)", 1},
      {NULL, 0, NULL, NULL, 0},
  };
  char prov[1024], sources[8192] = "";
  if (lv_opts_parse("fashion-mnist", "--out FILE.h5 [options]", argc, argv, opts, NULL, NULL, prov, sizeof prov)) return 0;
  lv_data_check_common("fashion-mnist", &c);
  uint8_t *tr_img, *te_img;
  int32_t *tr_lbl, *te_lbl;
  int64_t n_tr, n_te;
  log_progress("fashion-mnist: reading %s", dir);
  load_pair(dir, "train", &tr_img, &tr_lbl, &n_tr, sources, sizeof sources);
  load_pair(dir, "t10k", &te_img, &te_lbl, &n_te, sources, sizeof sources);
  log_progress_done();
  if (n_val < 0 || n_val >= n_tr) DIE_INPUT("data fashion-mnist: --val %lld must be in [0, %lld)", (long long)n_val, (long long)n_tr);
  const int64_t px = SIDE * SIDE, n_train = n_tr - n_val;
  int64_t *off_tr = fixed_offsets(n_train), *off_va = fixed_offsets(n_val), *off_te = fixed_offsets(n_te);
  lv_split_data sp[3];
  int ns = 0;
  sp[ns++] = (lv_split_data){"train", n_train, n_train * px, tr_img, LV_DTYPE_U8, off_tr, tr_lbl, NULL};
  if (n_val > 0)
    sp[ns++] = (lv_split_data){"val", n_val, n_val * px, tr_img + n_train * px, LV_DTYPE_U8, off_va, tr_lbl + n_train, NULL};
  sp[ns++] = (lv_split_data){"test", n_te, n_te * px, te_img, LV_DTYPE_U8, off_te, te_lbl, NULL};
  lv_dataset_meta m = {LV_TASK_CLASSIFICATION, 256, 10, "longvq data fashion-mnist", prov, c.seed, sources, NULL,
                       class_names};
  lv_dataset_write(c.out, (int)c.shards, c.force, &m, ns, sp);
  log_info("fashion-mnist: %lld train, %lld val, %lld test images", (long long)n_train, (long long)n_val, (long long)n_te);
  free(off_tr); free(off_va); free(off_te);
  free(tr_img); free(te_img); free(tr_lbl); free(te_lbl);
  return 0;
}
