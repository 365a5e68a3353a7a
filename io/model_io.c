#include "io/config.h" /* LV_PATH_MAX */
#include "io/model_io.h"

#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "io/dataset_internal.h"
#include "trainer/base/check.h"

void lv_h5_tensor_path(const char *prefix, const char *name, char *out, size_t cap) {
  size_t n = strlen(prefix);
  snprintf(out, cap, "%s/%s", prefix, name);
  for (char *c = out + (n + 1 < cap ? n + 1 : 0); *c; c++)
    if (*c == '.') *c = '/';
}

void lv_model_h5path(const char *name, char *out, size_t cap) { lv_h5_tensor_path("/model", name, out, cap); }

void lv_fsync_path(const char *path) {
  int fd = open(path, O_RDONLY);
  if (fd < 0 || fsync(fd) != 0) DIE("%s: fsync failed", path);
  close(fd);
}

void lv_fsync_parent_dir(const char *path) {
  char buf[4096];
  snprintf(buf, sizeof buf, "%s", path);
  lv_fsync_path(dirname(buf));
}

void lv_rename_durable(const char *tmp, const char *path) {
  if (rename(tmp, path) != 0) DIE("%s: cannot rename %s into place", path, tmp);
  lv_fsync_parent_dir(path);
}

hid_t lv_h5_open_quiet(hid_t file, const char *h5path) {
  H5E_auto2_t fn;
  void *cd;
  H5Eget_auto2(H5E_DEFAULT, &fn, &cd);
  H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
  hid_t ds = H5Lexists(file, h5path, H5P_DEFAULT) > 0 ? H5Dopen2(file, h5path, H5P_DEFAULT) : -1;
  H5Eset_auto2(H5E_DEFAULT, fn, cd);
  return ds;
}

int lv_h5_check_shape(hid_t ds, const lv_tensor *t, const char *fname, const char *what, char *err, size_t cap) {
  hid_t space = H5Dget_space(ds);
  hsize_t dims[2] = {0, 0};
  int nd = space >= 0 ? H5Sget_simple_extent_ndims(space) : -1;
  if (nd >= 1 && nd <= 2) H5Sget_simple_extent_dims(space, dims, NULL);
  if (space >= 0) H5Sclose(space);
  int ok = nd == t->ndim && (int64_t)dims[0] == t->shape[0] && (nd < 2 || (int64_t)dims[1] == t->shape[1]);
  if (!ok)
    snprintf(err, cap, "%s: %s%s has shape (%llu%s%llu), the config needs (%lld%s%lld)", fname, what, t->name,
             (unsigned long long)dims[0], nd > 1 ? ", " : "", nd > 1 ? (unsigned long long)dims[1] : 0ull,
             (long long)t->shape[0], t->ndim > 1 ? ", " : "", t->ndim > 1 ? (long long)t->shape[1] : 0ll);
  return ok ? 0 : 1;
}

int lv_h5_read_quiet(hid_t ds, hid_t mem_space, hid_t file_space, float *data, const lv_tensor *t, const char *fname,
                     const char *what, char *err, size_t cap) {
  H5E_auto2_t fn;
  void *cd;
  H5Eget_auto2(H5E_DEFAULT, &fn, &cd);
  H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
  herr_t r = H5Dread(ds, H5T_NATIVE_FLOAT, mem_space, file_space, H5P_DEFAULT, data);
  if (r < 0)
    snprintf(err, cap, "%s: %s%s cannot be read (checksum mismatch or truncated file: %s)", fname, what, t->name,
             lv_h5_errstr());
  H5Eset_auto2(H5E_DEFAULT, fn, cd);
  return r < 0 ? 1 : 0;
}

void lv_h5_attr_fixed_str(hid_t obj, const char *name, const char *val) {
  hid_t type, space, attr;
  CHECK_H5(type = H5Tcopy(H5T_C_S1));
  CHECK_H5(H5Tset_size(type, strlen(val) + 1));
  CHECK_H5(space = H5Screate(H5S_SCALAR));
  CHECK_H5(attr = H5Acreate2(obj, name, type, space, H5P_DEFAULT, H5P_DEFAULT));
  CHECK_H5(H5Awrite(attr, type, val));
  CHECK_H5(H5Aclose(attr));
  CHECK_H5(H5Sclose(space));
  CHECK_H5(H5Tclose(type));
}

static void write_tensor(hid_t file, hid_t lcpl, const lv_tensor *t, const float *data) {
  char path[2 * LV_NAME_MAX];
  lv_model_h5path(t->name, path, sizeof path);
  hsize_t dims[2] = {(hsize_t)t->shape[0], (hsize_t)t->shape[1]};
  hid_t space, dcpl, ds;
  CHECK_H5(space = H5Screate_simple(t->ndim, dims, NULL));
  CHECK_H5(dcpl = H5Pcreate(H5P_DATASET_CREATE));
  CHECK_H5(H5Pset_chunk(dcpl, t->ndim, dims)); /* one chunk: checksums need a chunked layout */
  CHECK_H5(H5Pset_fletcher32(dcpl));
  CHECK_H5(ds = H5Dcreate2(file, path, H5T_IEEE_F32LE, space, lcpl, dcpl, H5P_DEFAULT));
  CHECK_H5(H5Dwrite(ds, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, data));
  CHECK_H5(H5Dclose(ds));
  CHECK_H5(H5Pclose(dcpl));
  CHECK_H5(H5Sclose(space));
}

void lv_model_save(const char *path, const lv_layout *lay, const float *params, const float *state,
                   const char *config_yaml, int64_t step) {
  char tmp[LV_PATH_MAX];
  snprintf(tmp, sizeof tmp, "%s.tmp.%d", path, (int)getpid());
  hid_t file, lcpl;
  CHECK_H5(file = H5Fcreate(tmp, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT));
  CHECK_H5(lcpl = H5Pcreate(H5P_LINK_CREATE));
  CHECK_H5(H5Pset_create_intermediate_group(lcpl, 1));
  lv_h5_attr_fixed_str(file, "format", LV_MODEL_FORMAT);
  lv_attr_write_i64(file, "format_version", LV_MODEL_FORMAT_VERSION);
  lv_attr_write_i64(file, "step", step);
  lv_h5_attr_fixed_str(file, "build", LONGVQ_VERSION " (git " LONGVQ_GIT ")");
  for (int i = 0; i < lay->n_params; i++) write_tensor(file, lcpl, &lay->params[i], params + lay->params[i].offset);
  for (int i = 0; i < lay->n_state; i++) write_tensor(file, lcpl, &lay->state[i], state + lay->state[i].offset);
  if (config_yaml) {
    hid_t type, space, ds;
    CHECK_H5(type = H5Tcopy(H5T_C_S1));
    CHECK_H5(H5Tset_size(type, strlen(config_yaml) + 1));
    CHECK_H5(space = H5Screate(H5S_SCALAR));
    CHECK_H5(ds = H5Dcreate2(file, "/config", type, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT));
    CHECK_H5(H5Dwrite(ds, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, config_yaml));
    CHECK_H5(H5Dclose(ds));
    CHECK_H5(H5Sclose(space));
    CHECK_H5(H5Tclose(type));
  }
  CHECK_H5(H5Pclose(lcpl));
  CHECK_H5(H5Fflush(file, H5F_SCOPE_GLOBAL));
  CHECK_H5(H5Fclose(file));
  lv_fsync_path(tmp);
  lv_rename_durable(tmp, path);
}

int lv_model_read_tensor(hid_t file, const char *fname, const lv_tensor *t, float *data, char *err, size_t cap) {
  char path[2 * LV_NAME_MAX];
  lv_model_h5path(t->name, path, sizeof path);
  hid_t ds = lv_h5_open_quiet(file, path);
  if (ds < 0) {
    snprintf(err, cap, "%s: missing tensor %s (%s)", fname, t->name, path);
    return 1;
  }
  int bad = lv_h5_check_shape(ds, t, fname, "tensor ", err, cap);
  if (!bad) bad = lv_h5_read_quiet(ds, H5S_ALL, H5S_ALL, data, t, fname, "tensor ", err, cap);
  H5Dclose(ds);
  return bad;
}

int lv_model_load(const char *path, const lv_layout *lay, float *params, float *state, char *err, size_t cap) {
  H5E_auto2_t fn;
  void *cd;
  H5Eget_auto2(H5E_DEFAULT, &fn, &cd);
  H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
  hid_t file = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
  H5Eset_auto2(H5E_DEFAULT, fn, cd);
  if (file < 0) {
    snprintf(err, cap, "%s: cannot open as HDF5 (missing, truncated or not an HDF5 file)", path);
    return 1;
  }
  int bad = 0;
  for (int i = 0; i < lay->n_params && !bad; i++)
    bad = lv_model_read_tensor(file, path, &lay->params[i], params + lay->params[i].offset, err, cap);
  for (int i = 0; i < lay->n_state && !bad; i++)
    bad = lv_model_read_tensor(file, path, &lay->state[i], state + lay->state[i].offset, err, cap);
  H5Fclose(file);
  return bad;
}

char *lv_model_read_config(const char *path) {
  H5E_auto2_t fn;
  void *cd;
  H5Eget_auto2(H5E_DEFAULT, &fn, &cd);
  H5Eset_auto2(H5E_DEFAULT, NULL, NULL); /* a damaged file gives NULL here; the tensor reader says why */
  hid_t file = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
  hid_t ds = file >= 0 ? lv_h5_open_quiet(file, "/config") : -1, type = ds >= 0 ? H5Dget_type(ds) : -1;
  char *out = NULL;
  if (type >= 0 && H5Tget_class(type) == H5T_STRING && H5Tis_variable_str(type) == 0) {
    size_t n = H5Tget_size(type); /* a scalar (model files) or a 1-element array (checkpoints) */
    out = calloc(n + 1, 1);
    CHECK_ALLOC(out);
    if (H5Dread(ds, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, out) < 0) {
      free(out);
      out = NULL;
    }
  }
  if (type >= 0) H5Tclose(type);
  if (ds >= 0) H5Dclose(ds);
  if (file >= 0) H5Fclose(file);
  H5Eset_auto2(H5E_DEFAULT, fn, cd);
  return out;
}
