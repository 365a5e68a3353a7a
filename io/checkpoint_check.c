/* lv_ckpt_check: a checkpoint checked without knowing the model (resume=auto picker, inspect). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/checkpoint_internal.h"
#include "io/dataset_internal.h"
#include "io/digest.h"
#include "io/model_io.h"
#include "trainer/base/check.h"

static const char *const kPrefix[3] = {"/model", "/optimizer/exp_avg", "/optimizer/exp_avg_sq"};

typedef struct {
  lv_ckpt_tensor *t;
  int n, cap;
} tlist;

static herr_t collect(hid_t obj, const char *name, const H5O_info_t *info, void *data) {
  (void)obj;
  tlist *l = data;
  if (info->type != H5O_TYPE_DATASET) return 0;
  if (l->n == l->cap) {
    l->cap = l->cap ? 2 * l->cap : 64;
    l->t = realloc(l->t, sizeof(lv_ckpt_tensor) * (size_t)l->cap);
    CHECK_ALLOC(l->t);
  }
  lv_ckpt_tensor *t = &l->t[l->n++];
  memset(t, 0, sizeof *t);
  snprintf(t->name, sizeof t->name, "%s", name);
  for (char *c = t->name; *c; c++)
    if (*c == '/') *c = '.';
  return 0;
}

/* Datasets under group `g` of the file, in creation order when the file tracks it (spec order). */
static int list(hid_t file, const char *g, tlist *l) {
  hid_t grp = H5Lexists(file, g, H5P_DEFAULT) > 0 ? H5Gopen2(file, g, H5P_DEFAULT) : -1;
  if (grp < 0) return -1;
  herr_t r = H5Ovisit2(grp, H5_INDEX_CRT_ORDER, H5_ITER_INC, collect, l, H5O_INFO_BASIC);
  if (r < 0) {
    l->n = 0;
    r = H5Ovisit2(grp, H5_INDEX_NAME, H5_ITER_INC, collect, l, H5O_INFO_BASIC);
  }
  H5Gclose(grp);
  return r < 0 ? -1 : 0;
}

/* Opens prefix/<name> and reads its shape: the id, or -1 if absent. *is_float: stored as floats. */
static hid_t open_shape(hid_t file, int kind, const char *name, int *ndim, int64_t *shape, int *is_float) {
  char h5[3 * LV_NAME_MAX];
  lv_h5_tensor_path(kPrefix[kind], name, h5, sizeof h5);
  hid_t ds = lv_h5_open_quiet(file, h5);
  if (ds < 0) return -1;
  hid_t sp = H5Dget_space(ds), ty = H5Dget_type(ds);
  hsize_t d[2] = {0, 0};
  *ndim = sp >= 0 ? H5Sget_simple_extent_ndims(sp) : -1;
  if (*ndim >= 1 && *ndim <= 2) H5Sget_simple_extent_dims(sp, d, NULL);
  shape[0] = (int64_t)d[0];
  shape[1] = *ndim == 2 ? (int64_t)d[1] : 0;
  *is_float = ty >= 0 && H5Tget_class(ty) == H5T_FLOAT;
  if (ty >= 0) H5Tclose(ty);
  if (sp >= 0) H5Sclose(sp);
  return ds;
}

static void first_error(int *bad, char *err, size_t cap, const char *fmt, const char *path, const char *a,
                        const char *b) {
  if (!*bad) snprintf(err, cap, fmt, path, a, b);
  *bad = 1;
}

static void check_tensor(hid_t file, const char *path, int digests, lv_ckpt_tensor *t, int index, int part, int parts,
                         int *bad, char *err, size_t cap) {
  int is_float = 0, nd, f;
  int64_t sh[2];
  hid_t ds[3] = {-1, -1, -1};
  int usable[3] = {0, 0, 0}; /* opened, float, the tensor's shape: safe to read into numel floats */
  ds[0] = open_shape(file, 0, t->name, &t->ndim, t->shape, &is_float);
  usable[0] = ds[0] >= 0 && t->ndim >= 1 && t->ndim <= 2 && is_float;
  if (!usable[0]) first_error(bad, err, cap, "%s: tensor %s%s is not a 1-D or 2-D float dataset", path, t->name, "");
  int codebook = strstr(t->name, ".codebook.") != NULL;
  t->has_moments = 1;
  for (int k = 1; k < 3; k++) {
    ds[k] = open_shape(file, k, t->name, &nd, sh, &f);
    if (ds[k] < 0) {
      t->has_moments = 0;
      if (!codebook) first_error(bad, err, cap, "%s: missing optimizer tensor %s of %s", path, kPrefix[k] + 11, t->name);
    } else if (!usable[0] || nd != t->ndim || sh[0] != t->shape[0] || sh[1] != t->shape[1] || !f) {
      first_error(bad, err, cap, "%s: optimizer tensor %s of %s does not have the tensor's shape", path,
                  kPrefix[k] + 11, t->name);
    } else {
      usable[k] = 1;
    }
  }
  int64_t numel = t->shape[0] * (t->ndim == 2 ? t->shape[1] : 1);
  for (int k = 0; k < 3; k++) {
    if (!usable[k] || (3 * index + k) % parts != part || numel <= 0) continue;
    float *buf = malloc(sizeof(float) * (size_t)numel);
    CHECK_ALLOC(buf);
    char what[64];
    snprintf(what, sizeof what, "%s%s%s", k ? "optimizer tensor " : "tensor ", k ? kPrefix[k] + 11 : "",
             k ? " of " : "");
    if (H5Dread(ds[k], H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) < 0) {
      t->read[k] = -1;
      if (!*bad)
        snprintf(err, cap, "%s: %s%s cannot be read (checksum mismatch or truncated file: %s)", path, what, t->name,
                 lv_h5_errstr());
      *bad = 1;
    } else {
      double s = 0;
      for (int64_t i = 0; i < numel; i++) s += (double)buf[i] * (double)buf[i];
      t->read[k] = 1;
      t->l2[k] = sqrt(s);
      char msg[1024];
      int rc = lv_digest_verify(ds[k], digests, lv_crc32(0, buf, sizeof(float) * (size_t)numel), path, what, t->name,
                                msg, sizeof msg);
      t->digest[k] = rc == LV_DIGEST_OK ? 1 : rc == LV_DIGEST_BAD ? -1 : 0;
      if (rc == LV_DIGEST_BAD && !*bad) snprintf(err, cap, "%s", msg);
      *bad |= rc == LV_DIGEST_BAD;
    }
    free(buf);
  }
  for (int k = 0; k < 3; k++)
    if (ds[k] >= 0) H5Dclose(ds[k]);
}

static int check_file(hid_t file, const char *path, int part, int parts, lv_ckpt_meta *meta, tlist *l, char *err,
                      size_t cap) {
  char *cfg = NULL;
  int digests = 0;
  if (lv_ckpt_check_attrs(file, path, meta, &digests, err, cap) ||
      lv_h5_read_config(file, path, digests, &cfg, err, cap)) {
    free(cfg);
    return 1;
  }
  meta->config_yaml = cfg;
  if (list(file, "/model", l) != 0 || l->n == 0) {
    snprintf(err, cap, "%s: no tensors under /model (%s)", path, lv_h5_errstr());
    return 1;
  }
  int bad = 0;
  for (int i = 0; i < l->n; i++) check_tensor(file, path, digests, &l->t[i], i, part, parts, &bad, err, cap);
  for (int k = 1; k < 3 && !bad; k++) { /* no moment without its tensor */
    tlist o = {0};
    if (list(file, kPrefix[k], &o) != 0)
      first_error(&bad, err, cap, "%s: %s is missing or cannot be listed%s", path, kPrefix[k], "");
    for (int j = 0; j < o.n && !bad; j++) {
      int found = 0;
      for (int i = 0; i < l->n && !found; i++) found = !strcmp(o.t[j].name, l->t[i].name);
      if (!found) first_error(&bad, err, cap, "%s: %s/%s has no tensor under /model", path, kPrefix[k], o.t[j].name);
    }
    free(o.t);
  }
  return bad;
}

int lv_ckpt_check(const char *path, int part, int parts, lv_ckpt_meta *meta, lv_ckpt_tensor **tensors,
                  int *n_tensors, char *err, size_t cap) {
  H5E_auto2_t fn;
  void *cd;
  H5Eget_auto2(H5E_DEFAULT, &fn, &cd);
  H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
  memset(meta, 0, sizeof *meta);
  tlist l = {0};
  int bad = 1;
  hid_t file = lv_h5_open_file_quiet(path, err, cap);
  if (file >= 0) {
    bad = check_file(file, path, part < 0 ? 0 : part, parts < 1 ? 1 : parts, meta, &l, err, cap);
    H5Fclose(file);
  }
  H5Eset_auto2(H5E_DEFAULT, fn, cd);
  if (tensors) {
    *tensors = l.t;
    *n_tensors = l.n;
  } else {
    free(l.t);
  }
  return bad;
}
