/* Small HDF5 helpers shared by the dataset reader, writer and inspect: attributes of the few
 * types the format uses, and one-line error reporting for problems with users' files. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/dataset_internal.h"

_Noreturn void lv_h5_input_fail(const char *file, int line, const char *path, const char *fmt, ...) {
  char what[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(what, sizeof what, fmt, ap);
  va_end(ap);
  lv_failf(LV_EXIT_USAGE, file, line, "%s: %s: %s", path, what, lv_h5_errstr());
}

void lv_h5_quiet(void) { H5Eset_auto2(H5E_DEFAULT, NULL, NULL); }

void lv_h5_latest_format(hid_t fapl) { CHECK_H5(H5Pset_libver_bounds(fapl, H5F_LIBVER_LATEST, H5F_LIBVER_LATEST)); }

const char *const lv_array_names[LV_N_ARRAYS] = {"tokens", "offsets", "labels", "eval_mask"};

hid_t lv_small_int_type(int64_t n) {
  if (n <= 256) return H5T_STD_U8LE;
  if (n <= 65536) return H5T_STD_U16LE;
  return H5T_STD_I32LE;
}

/* ---- writing -------------------------------------------------------------------------------- */

/* Variable-length UTF-8 strings: what version 1 files hold (h5py's default), read but no longer
 * written. Their bytes live in HDF5's global heap, the one metadata structure without a checksum:
 * a flipped bit in a heap object's size crashes HDF5 inside H5Aread. */
static hid_t vlen_str_type(void) {
  hid_t t;
  CHECK_H5(t = H5Tcopy(H5T_C_S1));
  CHECK_H5(H5Tset_size(t, H5T_VARIABLE));
  CHECK_H5(H5Tset_cset(t, H5T_CSET_UTF8));
  return t;
}

void lv_attr_write_str(hid_t obj, const char *name, const char *value) {
  lv_attr_write_strv(obj, name, -1, &value);
}

/* n < 0: scalar attribute holding values[0]; else a 1-D array of n strings. Fixed-length UTF-8,
 * NUL-padded to the longest: stored inside the attribute itself, under the checksums of the latest
 * file format (h5py reads them as bytes). */
void lv_attr_write_strv(hid_t obj, const char *name, int64_t n, const char *const *values) {
  int64_t count = n < 0 ? 1 : n;
  size_t width = 1;
  for (int64_t i = 0; i < count; i++)
    if (strlen(values[i]) > width) width = strlen(values[i]);
  char *buf = calloc((size_t)count, width);
  CHECK_ALLOC(buf);
  for (int64_t i = 0; i < count; i++) memcpy(buf + (size_t)i * width, values[i], strlen(values[i]));
  hid_t t, sp, a;
  CHECK_H5(t = H5Tcopy(H5T_C_S1));
  CHECK_H5(H5Tset_size(t, width));
  CHECK_H5(H5Tset_strpad(t, H5T_STR_NULLPAD));
  CHECK_H5(H5Tset_cset(t, H5T_CSET_UTF8));
  if (n < 0) {
    CHECK_H5(sp = H5Screate(H5S_SCALAR));
  } else {
    hsize_t d = (hsize_t)n;
    CHECK_H5(sp = H5Screate_simple(1, &d, NULL));
  }
  CHECK_H5(a = H5Acreate2(obj, name, t, sp, H5P_DEFAULT, H5P_DEFAULT));
  CHECK_H5(H5Awrite(a, t, buf));
  CHECK_H5(H5Aclose(a));
  CHECK_H5(H5Sclose(sp));
  CHECK_H5(H5Tclose(t));
  free(buf);
}

static void write_scalar(hid_t obj, const char *name, hid_t file_type, hid_t mem_type, const void *v) {
  hid_t sp, a;
  CHECK_H5(sp = H5Screate(H5S_SCALAR));
  CHECK_H5(a = H5Acreate2(obj, name, file_type, sp, H5P_DEFAULT, H5P_DEFAULT));
  CHECK_H5(H5Awrite(a, mem_type, v));
  CHECK_H5(H5Aclose(a));
  CHECK_H5(H5Sclose(sp));
}

void lv_attr_write_i64(hid_t obj, const char *name, int64_t value) {
  write_scalar(obj, name, H5T_STD_I64LE, H5T_NATIVE_INT64, &value);
}

void lv_attr_write_u32(hid_t obj, const char *name, uint32_t value) {
  write_scalar(obj, name, H5T_STD_U32LE, H5T_NATIVE_UINT32, &value);
}

void lv_attr_write_u64(hid_t obj, const char *name, uint64_t value) {
  write_scalar(obj, name, H5T_STD_U64LE, H5T_NATIVE_UINT64, &value);
}

/* ---- reading ----------------------------------------------------------------------------------- */

/* Does `obj` (called `where` in messages) have a link `name`? */
int lv_h5_has_link(hid_t obj, const char *path, const char *where, const char *name) {
  htri_t e = H5Lexists(obj, name, H5P_DEFAULT);
  H5_INPUT(e, path, "%s: cannot look up '%s'", where, name);
  return e > 0;
}

/* Every chunk of dataset d (n >= 1 entries) is in the file. HDF5 reads what a dataset does not store
 * as its fill value: a chunk index that lost entries, or a file written sparse, would read as zeros
 * (valid token ids) without an error. */
static void check_stored(hid_t d, const char *path, const char *obj, int64_t n) {
  hid_t dcpl;
  H5_INPUT(dcpl = H5Dget_create_plist(d), path, "%s: cannot read its creation properties", obj);
  H5D_layout_t layout = H5Pget_layout(dcpl);
  H5_INPUT(layout, path, "%s: cannot read its storage layout", obj);
  if (layout == H5D_CHUNKED) {
    hsize_t chunk = 0, have = 0;
    hid_t sp;
    H5_INPUT(H5Pget_chunk(dcpl, 1, &chunk), path, "%s: cannot read its chunk size", obj);
    if (chunk < 1) DIE_INPUT("%s: %s: chunk size 0", path, obj);
    hsize_t want = ((hsize_t)n + chunk - 1) / chunk;
    H5_INPUT(sp = H5Dget_space(d), path, "%s: cannot read its shape", obj);
    H5_INPUT(H5Dget_num_chunks(d, sp, &have), path, "%s: cannot read its chunk index", obj);
    CHECK_H5(H5Sclose(sp));
    if (have != want)
      DIE_INPUT("%s: %s: %llu of its %llu chunks are not stored (they would read as zeros): the file is incomplete "
                "or damaged", path, obj, (unsigned long long)(want - (have < want ? have : want)),
                (unsigned long long)want);
  } else {
    H5D_space_status_t st;
    H5_INPUT(H5Dget_space_status(d, &st), path, "%s: cannot read its storage status", obj);
    if (st != H5D_SPACE_STATUS_ALLOCATED)
      DIE_INPUT("%s: %s: its data is not stored (it would read as zeros): the file is incomplete or damaged", path,
                obj);
  }
  CHECK_H5(H5Pclose(dcpl));
}

/* A 1-D integer dataset of `n` >= 1 elements, stored in full. */
hid_t lv_h5_open_array(hid_t g, const char *path, const char *split, const char *name, int64_t n, hid_t dapl) {
  char obj[160];
  snprintf(obj, sizeof obj, "/%s/%s", split, name);
  if (!lv_h5_has_link(g, path, obj, name)) DIE_INPUT("%s: %s is missing", path, obj);
  hid_t d, t, sp;
  H5_INPUT(d = H5Dopen2(g, name, dapl), path, "%s: cannot open", obj);
  H5_INPUT(t = H5Dget_type(d), path, "%s: cannot read its type", obj);
  if (H5Tget_class(t) != H5T_INTEGER || H5Tget_size(t) > 8) DIE_INPUT("%s: %s is not an integer dataset", path, obj);
  if (!strcmp(name, "tokens") && H5Tget_size(t) > 4)
    DIE_INPUT("%s: %s has %zu-byte integers (at most 4: token ids are int32)", path, obj, H5Tget_size(t));
  CHECK_H5(H5Tclose(t));
  H5_INPUT(sp = H5Dget_space(d), path, "%s: cannot read its shape", obj);
  hsize_t dim = 0;
  if (H5Sget_simple_extent_ndims(sp) != 1) DIE_INPUT("%s: %s is not 1-dimensional", path, obj);
  H5_INPUT(H5Sget_simple_extent_dims(sp, &dim, NULL), path, "%s: cannot read its shape", obj);
  CHECK_H5(H5Sclose(sp));
  if (dim != (hsize_t)n)
    DIE_INPUT("%s: %s has %llu entries, expected %lld", path, obj, (unsigned long long)dim, (long long)n);
  check_stored(d, path, obj, n);
  return d;
}


/* Opens attribute `name` if it exists: 1 = opened (*a, *t, *npoints set), 0 = absent. */
static int open_attr(hid_t obj, const char *path, const char *where, const char *name, hid_t *a, hid_t *t,
                     hssize_t *npoints) {
  htri_t e = H5Aexists(obj, name);
  H5_INPUT(e, path, "%s: cannot look up attribute '%s'", where, name);
  if (!e) return 0;
  hid_t sp;
  H5_INPUT(*a = H5Aopen(obj, name, H5P_DEFAULT), path, "%s: cannot open attribute '%s'", where, name);
  H5_INPUT(*t = H5Aget_type(*a), path, "%s: attribute '%s': cannot read its type", where, name);
  H5_INPUT(sp = H5Aget_space(*a), path, "%s: attribute '%s': cannot read its shape", where, name);
  H5_INPUT(*npoints = H5Sget_simple_extent_npoints(sp), path, "%s: attribute '%s': bad shape", where, name);
  CHECK_H5(H5Sclose(sp));
  return 1;
}

static void close_attr(hid_t a, hid_t t, const char *path, const char *where, const char *name) {
  H5_INPUT(H5Tclose(t), path, "%s: attribute '%s': cannot close its type", where, name);
  H5_INPUT(H5Aclose(a), path, "%s: attribute '%s': cannot close it", where, name);
}

int lv_attr_read_strv(hid_t obj, const char *path, const char *where, const char *name, int64_t *n, char ***out) {
  hid_t a, t;
  hssize_t np;
  if (!open_attr(obj, path, where, name, &a, &t, &np)) return 0;
  int rc = -1;
  /* Few strings, each short: the attributes we read are names (at most one per vocab entry). */
  if (H5Tget_class(t) == H5T_STRING && np >= 1 && np <= LV_MAX_VOCAB) {
    char **v = calloc((size_t)np, sizeof *v);
    CHECK_ALLOC(v);
    htri_t is_var = H5Tis_variable_str(t);
    H5_INPUT(is_var, path, "%s: attribute '%s': bad string type", where, name);
    if (is_var) {
      hid_t mt = vlen_str_type(), sp;
      char **raw = calloc((size_t)np, sizeof *raw);
      CHECK_ALLOC(raw);
      H5_INPUT(H5Aread(a, mt, raw), path, "%s: cannot read attribute '%s'", where, name);
      for (hssize_t i = 0; i < np; i++) {
        v[i] = strdup(raw[i] ? raw[i] : "");
        CHECK_ALLOC(v[i]);
      }
      H5_INPUT(sp = H5Aget_space(a), path, "%s: attribute '%s': cannot read its shape", where, name);
      H5_INPUT(H5Dvlen_reclaim(mt, sp, H5P_DEFAULT, raw), path, "%s: attribute '%s': bad strings", where, name);
      CHECK_H5(H5Sclose(sp));
      CHECK_H5(H5Tclose(mt));
      free(raw);
    } else {
      size_t sz = H5Tget_size(t);
      if (sz == 0 || sz > ((size_t)1 << 20) || (size_t)np * sz > ((size_t)1 << 30))
        DIE_INPUT("%s: %s: attribute '%s' has %lld strings of %zu bytes (at most 1 MiB each, 1 GiB in all)", path,
                  where, name, (long long)np, sz);
      char *raw = calloc((size_t)np, sz);
      CHECK_ALLOC(raw);
      H5_INPUT(H5Aread(a, t, raw), path, "%s: cannot read attribute '%s'", where, name);
      for (hssize_t i = 0; i < np; i++) {
        v[i] = calloc(sz + 1, 1);
        CHECK_ALLOC(v[i]);
        memcpy(v[i], raw + (size_t)i * sz, sz); /* NUL-padded or space-padded: stop at NUL */
      }
      free(raw);
    }
    *n = np;
    *out = v;
    rc = 1;
  }
  close_attr(a, t, path, where, name);
  return rc;
}

int lv_attr_read_str(hid_t obj, const char *path, const char *where, const char *name, char **out) {
  int64_t n = 0;
  char **v = NULL;
  int rc = lv_attr_read_strv(obj, path, where, name, &n, &v);
  if (rc <= 0) return rc;
  if (n != 1) {
    lv_strv_free(n, v);
    return -1;
  }
  *out = v[0];
  free(v);
  return 1;
}

void lv_strv_free(int64_t n, char **v) {
  if (!v) return;
  for (int64_t i = 0; i < n; i++) free(v[i]);
  free(v);
}

static int read_int(hid_t obj, const char *path, const char *where, const char *name, hid_t mem_type, void *out) {
  hid_t a, t;
  hssize_t np;
  if (!open_attr(obj, path, where, name, &a, &t, &np)) return 0;
  int rc = -1;
  if (H5Tget_class(t) == H5T_INTEGER && np == 1) {
    H5_INPUT(H5Aread(a, mem_type, out), path, "%s: cannot read attribute '%s'", where, name);
    rc = 1;
  }
  close_attr(a, t, path, where, name);
  return rc;
}

int lv_attr_read_i64(hid_t obj, const char *path, const char *where, const char *name, int64_t *out) {
  return read_int(obj, path, where, name, H5T_NATIVE_INT64, out);
}

int lv_attr_read_u64(hid_t obj, const char *path, const char *where, const char *name, uint64_t *out) {
  return read_int(obj, path, where, name, H5T_NATIVE_UINT64, out);
}
