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

hid_t lv_small_int_type(int64_t n) {
  if (n <= 256) return H5T_STD_U8LE;
  if (n <= 65536) return H5T_STD_U16LE;
  return H5T_STD_I32LE;
}

/* ---- writing -------------------------------------------------------------------------------- */

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

/* n < 0: scalar attribute holding values[0]; else a 1-D array of n strings. */
void lv_attr_write_strv(hid_t obj, const char *name, int64_t n, const char *const *values) {
  hid_t t = vlen_str_type(), sp, a;
  if (n < 0) {
    CHECK_H5(sp = H5Screate(H5S_SCALAR));
  } else {
    hsize_t d = (hsize_t)n;
    CHECK_H5(sp = H5Screate_simple(1, &d, NULL));
  }
  CHECK_H5(a = H5Acreate2(obj, name, t, sp, H5P_DEFAULT, H5P_DEFAULT));
  CHECK_H5(H5Awrite(a, t, values));
  CHECK_H5(H5Aclose(a));
  CHECK_H5(H5Sclose(sp));
  CHECK_H5(H5Tclose(t));
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

void lv_attr_write_u64(hid_t obj, const char *name, uint64_t value) {
  write_scalar(obj, name, H5T_STD_U64LE, H5T_NATIVE_UINT64, &value);
}

/* ---- reading -------------------------------------------------------------------------------- */

/* Opens attribute `name` if it exists: 1 = opened (*a, *t, *npoints set), 0 = absent. */
static int open_attr(hid_t obj, const char *name, hid_t *a, hid_t *t, hssize_t *npoints) {
  htri_t e = H5Aexists(obj, name);
  if (e <= 0) return 0;
  CHECK_H5(*a = H5Aopen(obj, name, H5P_DEFAULT));
  CHECK_H5(*t = H5Aget_type(*a));
  hid_t sp;
  CHECK_H5(sp = H5Aget_space(*a));
  CHECK_H5(*npoints = H5Sget_simple_extent_npoints(sp));
  CHECK_H5(H5Sclose(sp));
  return 1;
}

static void close_attr(hid_t a, hid_t t) {
  CHECK_H5(H5Tclose(t));
  CHECK_H5(H5Aclose(a));
}

int lv_attr_read_strv(hid_t obj, const char *name, int64_t *n, char ***out) {
  hid_t a, t;
  hssize_t np;
  if (!open_attr(obj, name, &a, &t, &np)) return 0;
  int rc = -1;
  if (H5Tget_class(t) == H5T_STRING && np >= 1) {
    char **v = calloc((size_t)np, sizeof *v);
    CHECK_ALLOC(v);
    htri_t is_var = H5Tis_variable_str(t);
    CHECK_H5(is_var);
    if (is_var) {
      hid_t mt = vlen_str_type();
      char **raw = calloc((size_t)np, sizeof *raw);
      CHECK_ALLOC(raw);
      CHECK_H5(H5Aread(a, mt, raw));
      for (hssize_t i = 0; i < np; i++) {
        v[i] = strdup(raw[i] ? raw[i] : "");
        CHECK_ALLOC(v[i]);
      }
      hid_t sp;
      CHECK_H5(sp = H5Aget_space(a));
      CHECK_H5(H5Dvlen_reclaim(mt, sp, H5P_DEFAULT, raw));
      CHECK_H5(H5Sclose(sp));
      CHECK_H5(H5Tclose(mt));
      free(raw);
    } else {
      size_t sz = H5Tget_size(t);
      char *raw = calloc((size_t)np, sz);
      CHECK_ALLOC(raw);
      CHECK_H5(H5Aread(a, t, raw));
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
  close_attr(a, t);
  return rc;
}

int lv_attr_read_str(hid_t obj, const char *name, char **out) {
  int64_t n = 0;
  char **v = NULL;
  int rc = lv_attr_read_strv(obj, name, &n, &v);
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

static int read_int(hid_t obj, const char *name, hid_t mem_type, void *out) {
  hid_t a, t;
  hssize_t np;
  if (!open_attr(obj, name, &a, &t, &np)) return 0;
  int rc = -1;
  if (H5Tget_class(t) == H5T_INTEGER && np == 1) {
    CHECK_H5(H5Aread(a, mem_type, out));
    rc = 1;
  }
  close_attr(a, t);
  return rc;
}

int lv_attr_read_i64(hid_t obj, const char *name, int64_t *out) {
  return read_int(obj, name, H5T_NATIVE_INT64, out);
}

int lv_attr_read_u64(hid_t obj, const char *name, uint64_t *out) {
  return read_int(obj, name, H5T_NATIVE_UINT64, out);
}
