#include "io/config.h" /* LV_PATH_MAX */
#include "io/model_io.h"

#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "io/dataset_internal.h"
#include "io/digest.h"
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
  if (!ok) { /* (a 1-D shape printed as "(16)", not with a second dimension's digits glued on) */
    char have[48], need[48];
    if (nd > 1) snprintf(have, sizeof have, "%llu, %llu", (unsigned long long)dims[0], (unsigned long long)dims[1]);
    else snprintf(have, sizeof have, "%llu", (unsigned long long)dims[0]);
    if (t->ndim > 1) snprintf(need, sizeof need, "%lld, %lld", (long long)t->shape[0], (long long)t->shape[1]);
    else snprintf(need, sizeof need, "%lld", (long long)t->shape[0]);
    snprintf(err, cap, "%s: %s%s has shape (%s), the config needs (%s)", fname, what, t->name, have, need);
  }
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

hid_t lv_h5_open_file_quiet(const char *path, char *err, size_t cap) {
  struct stat st;
  if (stat(path, &st) != 0) {
    snprintf(err, cap, "%s: no such file", path);
    return -1;
  }
  if (!S_ISREG(st.st_mode)) { /* opening a FIFO would block for ever, a directory fails obscurely */
    snprintf(err, cap, "%s: not a regular file (%s)", path, lv_file_kind(st.st_mode));
    return -1;
  }
  H5E_auto2_t fn;
  void *cd;
  H5Eget_auto2(H5E_DEFAULT, &fn, &cd);
  H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
  hid_t file = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
  if (file < 0) snprintf(err, cap, "%s: cannot open as HDF5 (%s)", path, lv_h5_errstr());
  H5Eset_auto2(H5E_DEFAULT, fn, cd);
  return file;
}

const char *lv_file_kind(unsigned mode) {
  return S_ISDIR(mode) ? "a directory" : S_ISFIFO(mode) ? "a FIFO" : S_ISSOCK(mode) ? "a socket" : S_ISCHR(mode) ?
         "a character device" : S_ISBLK(mode) ? "a block device" : S_ISREG(mode) ? "a regular file" : "not a file";
}

int lv_h5_attr_int_quiet(hid_t obj, const char *name, hid_t mem_type, void *out) {
  htri_t e = H5Aexists(obj, name);
  if (e == 0) return 0;
  hid_t a = e > 0 ? H5Aopen(obj, name, H5P_DEFAULT) : -1, t = a >= 0 ? H5Aget_type(a) : -1;
  int ok = t >= 0 && H5Tget_class(t) == H5T_INTEGER && H5Aread(a, mem_type, out) >= 0;
  if (t >= 0) H5Tclose(t);
  if (a >= 0) H5Aclose(a);
  return ok ? 1 : -1;
}

int lv_h5_attr_str_quiet(hid_t obj, const char *name, char *out, size_t cap) {
  htri_t e = H5Aexists(obj, name);
  if (e == 0) return 0;
  hid_t a = e > 0 ? H5Aopen(obj, name, H5P_DEFAULT) : -1, t = a >= 0 ? H5Aget_type(a) : -1;
  int ok = 0;
  if (t >= 0 && H5Tget_class(t) == H5T_STRING) {
    if (H5Tis_variable_str(t) > 0) {
      char *s = NULL;
      ok = H5Aread(a, t, &s) >= 0 && s;
      if (ok) snprintf(out, cap, "%s", s);
      if (s) H5free_memory(s);
    } else {
      size_t n = H5Tget_size(t);
      char *s = calloc(n + 1, 1);
      CHECK_ALLOC(s);
      ok = H5Aread(a, t, s) >= 0;
      if (ok) snprintf(out, cap, "%s", s);
      free(s);
    }
  }
  if (t >= 0) H5Tclose(t);
  if (a >= 0) H5Aclose(a);
  return ok ? 1 : -1;
}

void lv_h5_format_props(hid_t fapl, hid_t *fcpl, hid_t *gcpl) {
  /* The 1.10 format (pinned, not LATEST: a newer library must not write what 1.10 readers such as
   * Debian's h5py cannot open): checksummed superblock, object headers and chunk indexes. */
  CHECK_H5(H5Pset_libver_bounds(fapl, H5F_LIBVER_V110, H5F_LIBVER_V110));
  CHECK_H5(*fcpl = H5Pcreate(H5P_FILE_CREATE));
  CHECK_H5(H5Pset_link_creation_order(*fcpl, H5P_CRT_ORDER_TRACKED | H5P_CRT_ORDER_INDEXED));
  CHECK_H5(H5Pset_attr_phase_change(*fcpl, 32, 24)); /* root attributes stay in the checksummed header */
  CHECK_H5(H5Pset_link_phase_change(*fcpl, 1000, 800));
  CHECK_H5(*gcpl = H5Pcreate(H5P_GROUP_CREATE));
  CHECK_H5(H5Pset_link_creation_order(*gcpl, H5P_CRT_ORDER_TRACKED | H5P_CRT_ORDER_INDEXED));
  /* links stay in the (checksummed) group headers, not in a fractal heap whose blocks are unchecked */
  CHECK_H5(H5Pset_link_phase_change(*gcpl, 1000, 800));
}

void lv_h5_make_parents(hid_t file, const char *h5path, hid_t gcpl) {
  char buf[3 * LV_NAME_MAX];
  snprintf(buf, sizeof buf, "%s", h5path);
  for (char *p = strchr(buf + 1, '/'); p; p = strchr(p + 1, '/')) {
    *p = '\0';
    htri_t e = H5Lexists(file, buf, H5P_DEFAULT);
    CHECK_H5(e);
    if (!e) {
      hid_t g;
      CHECK_H5(g = H5Gcreate2(file, buf, H5P_DEFAULT, gcpl, H5P_DEFAULT));
      CHECK_H5(H5Gclose(g));
    }
    *p = '/';
  }
}

static void write_tensor(hid_t file, hid_t gcpl, const lv_tensor *t, const float *data) {
  char path[2 * LV_NAME_MAX];
  lv_model_h5path(t->name, path, sizeof path);
  lv_h5_make_parents(file, path, gcpl);
  hsize_t dims[2] = {(hsize_t)t->shape[0], (hsize_t)t->shape[1]};
  hid_t space, dcpl, ds;
  CHECK_H5(space = H5Screate_simple(t->ndim, dims, NULL));
  CHECK_H5(dcpl = H5Pcreate(H5P_DATASET_CREATE));
  CHECK_H5(H5Pset_chunk(dcpl, t->ndim, dims)); /* one chunk: checksums need a chunked layout */
  CHECK_H5(H5Pset_fletcher32(dcpl));
  CHECK_H5(ds = H5Dcreate2(file, path, H5T_IEEE_F32LE, space, H5P_DEFAULT, dcpl, H5P_DEFAULT));
  lv_digest_write(ds, lv_crc32(0, data, sizeof(float) * (size_t)t->numel));
  CHECK_H5(H5Dwrite(ds, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, data));
  CHECK_H5(H5Dclose(ds));
  CHECK_H5(H5Pclose(dcpl));
  CHECK_H5(H5Sclose(space));
}

void lv_model_save(const char *path, const lv_layout *lay, const float *params, const float *state,
                   const char *config_yaml, int64_t step) {
  char tmp[LV_PATH_MAX];
  snprintf(tmp, sizeof tmp, "%s.tmp.%d", path, (int)getpid());
  hid_t file, fapl, fcpl, gcpl;
  CHECK_H5(fapl = H5Pcreate(H5P_FILE_ACCESS));
  lv_h5_format_props(fapl, &fcpl, &gcpl);
  CHECK_H5(file = H5Fcreate(tmp, H5F_ACC_TRUNC, fcpl, fapl));
  lv_h5_attr_fixed_str(file, "format", LV_MODEL_FORMAT);
  lv_attr_write_i64(file, "format_version", LV_MODEL_FORMAT_VERSION);
  lv_attr_write_i64(file, "step", step);
  lv_h5_attr_fixed_str(file, "build", LONGVQ_VERSION " (git " LONGVQ_GIT ")");
  lv_digest_declare(file);
  for (int i = 0; i < lay->n_params; i++) write_tensor(file, gcpl, &lay->params[i], params + lay->params[i].offset);
  for (int i = 0; i < lay->n_state; i++) write_tensor(file, gcpl, &lay->state[i], state + lay->state[i].offset);
  if (config_yaml) {
    hid_t type, space, ds;
    CHECK_H5(type = H5Tcopy(H5T_C_S1));
    CHECK_H5(H5Tset_size(type, strlen(config_yaml) + 1));
    CHECK_H5(space = H5Screate(H5S_SCALAR));
    CHECK_H5(ds = H5Dcreate2(file, "/config", type, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT));
    lv_digest_write(ds, lv_crc32(0, config_yaml, strlen(config_yaml)));
    CHECK_H5(H5Dwrite(ds, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, config_yaml));
    CHECK_H5(H5Dclose(ds));
    CHECK_H5(H5Sclose(space));
    CHECK_H5(H5Tclose(type));
  }
  CHECK_H5(H5Pclose(gcpl));
  CHECK_H5(H5Pclose(fcpl));
  CHECK_H5(H5Pclose(fapl));
  CHECK_H5(H5Fflush(file, H5F_SCOPE_GLOBAL));
  CHECK_H5(H5Fclose(file));
  lv_fsync_path(tmp);
  lv_rename_durable(tmp, path);
}

int lv_model_read_tensor(hid_t file, const char *fname, const lv_tensor *t, float *data, int declared, char *err,
                         size_t cap) {
  char path[2 * LV_NAME_MAX];
  lv_model_h5path(t->name, path, sizeof path);
  hid_t ds = lv_h5_open_quiet(file, path);
  if (ds < 0) {
    snprintf(err, cap, "%s: missing tensor %s (%s)", fname, t->name, path);
    return 1;
  }
  int bad = lv_h5_check_shape(ds, t, fname, "tensor ", err, cap);
  if (!bad) bad = lv_h5_read_quiet(ds, H5S_ALL, H5S_ALL, data, t, fname, "tensor ", err, cap);
  if (!bad)
    bad = lv_digest_verify(ds, declared, lv_crc32(0, data, sizeof(float) * (size_t)t->numel), fname, "tensor ",
                           t->name, err, cap) == LV_DIGEST_BAD;
  H5Dclose(ds);
  return bad;
}

int lv_h5_read_config(hid_t file, const char *fname, int declared, char **out, char *err, size_t cap) {
  *out = NULL;
  hid_t ds = lv_h5_open_quiet(file, "/config"), t = ds >= 0 ? H5Dget_type(ds) : -1;
  int ok = t >= 0 && H5Tget_class(t) == H5T_STRING && H5Tis_variable_str(t) == 0;
  if (!ok) {
    snprintf(err, cap, "%s: %s /config (the YAML text)", fname, ds < 0 ? "missing" : "unreadable");
  } else { /* a scalar (model files) or a 1-element array (checkpoints) */
    hid_t sp = H5Dget_space(ds);
    hssize_t np = sp >= 0 ? H5Sget_simple_extent_npoints(sp) : -1;
    size_t n = H5Tget_size(t);
    *out = calloc(n * (np > 0 ? (size_t)np : 1) + 1, 1);
    CHECK_ALLOC(*out);
    ok = np == 1 && H5Dread(ds, t, H5S_ALL, H5S_ALL, H5P_DEFAULT, *out) >= 0;
    if (!ok)
      snprintf(err, cap, "%s: /config cannot be read (checksum mismatch or truncated file: %s)", fname, lv_h5_errstr());
    else
      ok = lv_digest_verify(ds, declared, lv_crc32(0, *out, strlen(*out)), fname, "", "/config", err, cap) !=
           LV_DIGEST_BAD;
    if (sp >= 0) H5Sclose(sp);
  }
  if (t >= 0) H5Tclose(t);
  if (ds >= 0) H5Dclose(ds);
  return ok ? 0 : 1;
}

/* Opens path and reads whether it declares digests: the file id, or -1 with err. */
static hid_t open_model(const char *path, int *declared, char *err, size_t cap) {
  hid_t file = lv_h5_open_file_quiet(path, err, cap);
  if (file < 0) return -1;
  H5E_auto2_t fn;
  void *cd;
  H5Eget_auto2(H5E_DEFAULT, &fn, &cd);
  H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
  *declared = lv_digest_declared(file, path, err, cap);
  H5Eset_auto2(H5E_DEFAULT, fn, cd);
  if (*declared >= 0) return file;
  H5Fclose(file);
  return -1;
}

int lv_model_load(const char *path, const lv_layout *lay, float *params, float *state, char *err, size_t cap) {
  int declared = 0;
  hid_t file = open_model(path, &declared, err, cap);
  if (file < 0) return 1;
  int bad = 0;
  for (int i = 0; i < lay->n_params && !bad; i++)
    bad = lv_model_read_tensor(file, path, &lay->params[i], params + lay->params[i].offset, declared, err, cap);
  for (int i = 0; i < lay->n_state && !bad; i++)
    bad = lv_model_read_tensor(file, path, &lay->state[i], state + lay->state[i].offset, declared, err, cap);
  hid_t cfg = bad ? -1 : lv_h5_open_quiet(file, "/config");
  if (cfg >= 0) { /* optional; eval adopts model keys from it */
    H5Dclose(cfg);
    char *yaml;
    bad = lv_h5_read_config(file, path, declared, &yaml, err, cap);
    free(yaml);
  }
  H5Fclose(file);
  if (!bad && !declared) lv_digest_note_none(path);
  return bad;
}

char *lv_model_read_config(const char *path) {
  char err[1024], *out = NULL;
  int declared = 0;
  hid_t file = open_model(path, &declared, err, sizeof err);
  if (file < 0) return NULL; /* quietly: lv_model_load / lv_ckpt_read report what is wrong */
  H5E_auto2_t fn;
  void *cd;
  H5Eget_auto2(H5E_DEFAULT, &fn, &cd);
  H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
  if (lv_h5_read_config(file, path, declared, &out, err, sizeof err)) {
    free(out);
    out = NULL;
  }
  H5Fclose(file);
  H5Eset_auto2(H5E_DEFAULT, fn, cd);
  return out;
}

int lv_model_tensor_shape(const char *path, const char *name, int64_t *shape, int cap_dims, int *ndim, char *err,
                          size_t cap) {
  int declared = 0;
  hid_t file = open_model(path, &declared, err, cap);
  if (file < 0) return 1;
  char h5path[256];
  lv_model_h5path(name, h5path, sizeof h5path);
  int bad = 1;
  hid_t ds = lv_h5_open_quiet(file, h5path);
  if (ds < 0) {
    snprintf(err, cap, "%s: no tensor %s (%s): not a LongVQ model file of this kind", path, name, h5path);
  } else {
    hid_t sp = H5Dget_space(ds);
    int nd = sp >= 0 ? H5Sget_simple_extent_ndims(sp) : -1;
    hsize_t dims[8];
    if (nd < 1 || nd > cap_dims || nd > 8 || H5Sget_simple_extent_dims(sp, dims, NULL) < 0) {
      snprintf(err, cap, "%s: tensor %s has an unreadable or unexpected shape", path, name);
    } else {
      *ndim = nd;
      for (int i = 0; i < nd; i++) shape[i] = (int64_t)dims[i];
      bad = 0;
    }
    if (sp >= 0) H5Sclose(sp);
    H5Dclose(ds);
  }
  H5Fclose(file);
  return bad;
}
