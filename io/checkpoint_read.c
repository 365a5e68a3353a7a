/* lv_ckpt_read: every rank opens the file with its own (serial) HDF5 handle, so that a corrupt
 * file can fail on one rank without leaving the others inside an HDF5 collective. Replicated data
 * (params, codebooks, moments without ZeRO) is read once, each tensor by one rank, and broadcast;
 * under ZeRO each rank reads its own ranges of the moments. A rank that meets a problem keeps
 * taking part in the broadcasts; at the end the ranks agree on the first error (the lowest failing
 * rank's message). Nothing here aborts on a bad file: every problem becomes a message. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "io/checkpoint_internal.h"
#include "io/dataset_internal.h"
#include "io/model_io.h"
#include "trainer/base/check.h"
#include "trainer/base/dist.h"
#include "trainer/base/dist_io.h"

hid_t lv_ckpt_open_quiet(const char *path, char *err, size_t cap) {
  if (access(path, F_OK) != 0) {
    snprintf(err, cap, "%s: no such file", path);
    return -1;
  }
  hid_t file = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
  if (file < 0) snprintf(err, cap, "%s: cannot open as HDF5 (%s)", path, lv_h5_errstr());
  return file;
}

/* Integer attribute: 1 read, 0 absent, -1 present but not a readable integer. */
static int attr_int(hid_t obj, const char *name, hid_t mem_type, void *out) {
  htri_t e = H5Aexists(obj, name);
  if (e == 0) return 0;
  hid_t a = e > 0 ? H5Aopen(obj, name, H5P_DEFAULT) : -1, t = a >= 0 ? H5Aget_type(a) : -1;
  int ok = t >= 0 && H5Tget_class(t) == H5T_INTEGER && H5Aread(a, mem_type, out) >= 0;
  if (t >= 0) H5Tclose(t);
  if (a >= 0) H5Aclose(a);
  return ok ? 1 : -1;
}

/* String attribute (fixed or variable length) into out: 1, 0 absent, -1 unreadable. */
static int attr_str(hid_t obj, const char *name, char *out, size_t cap) {
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

int lv_ckpt_check_attrs(hid_t file, const char *path, lv_ckpt_meta *meta, char *err, size_t cap) {
  char fmt[256] = "";
  int rc = attr_str(file, "format", fmt, sizeof fmt);
  if (rc <= 0) {
    snprintf(err, cap, "%s: not a longvq checkpoint (%s root attribute 'format')", path, rc ? "unreadable" : "no");
    return 1;
  }
  if (strcmp(fmt, LV_CKPT_FORMAT) != 0) {
    snprintf(err, cap, "%s: not a longvq checkpoint (format '%s', expected '%s')", path, fmt, LV_CKPT_FORMAT);
    return 1;
  }
  int64_t ver = 0, world = 0, zero = 0;
  if (attr_int(file, "format_version", H5T_NATIVE_INT64, &ver) <= 0 || ver < 1) {
    snprintf(err, cap, "%s: missing or bad root attribute 'format_version'", path);
    return 1;
  }
  if (ver > LV_CKPT_VERSION) {
    snprintf(err, cap, "%s: checkpoint format_version %lld is newer than this build reads (%d): use a newer longvq",
             path, (long long)ver, LV_CKPT_VERSION);
    return 1;
  }
  const struct {
    const char *name;
    void *dst;
    hid_t type;
    int64_t min, max;
  } want[] = {
      {"step", &meta->step, H5T_NATIVE_INT64, 0, INT64_MAX},
      {"samples_seen", &meta->samples_seen, H5T_NATIVE_INT64, 0, INT64_MAX},
      {"seed", &meta->seed, H5T_NATIVE_UINT64, 0, 0},
      {"world_size", &world, H5T_NATIVE_INT64, 1, 1 << 24},
      {"zero", &zero, H5T_NATIVE_INT64, 0, 1},
      {"restart_count", &meta->restart_count, H5T_NATIVE_INT64, 0, INT64_MAX},
  };
  for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
    rc = attr_int(file, want[i].name, want[i].type, want[i].dst);
    if (rc <= 0) {
      snprintf(err, cap, "%s: %s root attribute '%s'", path, rc ? "unreadable" : "missing", want[i].name);
      return 1;
    }
    int64_t val = want[i].type == H5T_NATIVE_INT64 ? *(int64_t *)want[i].dst : 0;
    if (want[i].type == H5T_NATIVE_INT64 && (val < want[i].min || val > want[i].max)) {
      snprintf(err, cap, "%s: root attribute '%s' is %lld, outside [%lld, %lld]", path, want[i].name, (long long)val,
               (long long)want[i].min, (long long)want[i].max);
      return 1;
    }
  }
  meta->world_size = (int)world;
  meta->zero = (int)zero;
  return 0;
}

int lv_ckpt_read_config(hid_t file, const char *path, char **out, char *err, size_t cap) {
  hid_t ds = lv_h5_open_quiet(file, "/config"), t = ds >= 0 ? H5Dget_type(ds) : -1;
  int ok = t >= 0 && H5Tget_class(t) == H5T_STRING && H5Tis_variable_str(t) == 0;
  if (!ok) {
    snprintf(err, cap, "%s: %s /config (the YAML text)", path, ds < 0 ? "missing" : "unreadable");
  } else {
    hid_t sp = H5Dget_space(ds);
    hssize_t np = sp >= 0 ? H5Sget_simple_extent_npoints(sp) : -1;
    size_t n = H5Tget_size(t);
    *out = calloc(n * (np > 0 ? (size_t)np : 1) + 1, 1);
    CHECK_ALLOC(*out);
    ok = np == 1 && H5Dread(ds, t, H5S_ALL, H5S_ALL, H5P_DEFAULT, *out) >= 0;
    if (!ok) snprintf(err, cap, "%s: /config cannot be read (checksum mismatch or truncated file: %s)", path,
                      lv_h5_errstr());
    if (sp >= 0) H5Sclose(sp);
  }
  if (t >= 0) H5Tclose(t);
  if (ds >= 0) H5Dclose(ds);
  return ok ? 0 : 1;
}

/* This rank's ranges of one moment tensor into the compact buffer dst (directly, or via *stage). */
static int read_part(hid_t file, const char *path, const char *which, const lv_tensor *t, float *dst,
                     const lv_range *ranges, const size_t *range_off, int n_ranges, lv_ckpt_piece *pc, float **stage,
                     size_t *stage_cap, char *err, size_t cap) {
  char h5[3 * LV_NAME_MAX], what[64], prefix[64];
  snprintf(prefix, sizeof prefix, "/optimizer/%s", which);
  snprintf(what, sizeof what, "optimizer tensor %s of ", which);
  lv_h5_tensor_path(prefix, t->name, h5, sizeof h5);
  hid_t ds = lv_h5_open_quiet(file, h5);
  if (ds < 0) {
    snprintf(err, cap, "%s: missing %s%s (%s)", path, what, t->name, h5);
    return 1;
  }
  int bad = lv_h5_check_shape(ds, t, path, what, err, cap);
  int np = lv_ckpt_pieces(t, ranges, range_off, n_ranges, pc);
  if (!bad && np > 0) { /* the rows the pieces touch, in tensor layout (fast chunk mapping) */
    hid_t fspace, mspace;
    hsize_t md[2];
    int64_t shift = lv_ckpt_span(t, pc, np, md), base;
    CHECK_H5(fspace = H5Dget_space(ds));
    CHECK_H5(mspace = H5Screate_simple(t->ndim, md, NULL));
    lv_ckpt_select(fspace, t, pc, np, 0);
    lv_ckpt_select(mspace, t, pc, np, shift);
    if (lv_ckpt_contiguous(pc, np, &base) && base + shift >= 0) {
      bad = lv_h5_read_quiet(ds, mspace, fspace, dst + base + shift, t, path, what, err, cap);
    } else {
      size_t need = (size_t)(md[0] * (t->ndim == 2 ? md[1] : 1));
      if (need > *stage_cap) {
        free(*stage);
        *stage = malloc(sizeof(float) * need);
        CHECK_ALLOC(*stage);
        *stage_cap = need;
      }
      bad = lv_h5_read_quiet(ds, mspace, fspace, *stage, t, path, what, err, cap);
      for (int i = 0; i < np && !bad; i++)
        memcpy(dst + pc[i].mem, *stage + (pc[i].a - shift), sizeof(float) * (size_t)(pc[i].b - pc[i].a));
    }
    H5Sclose(mspace);
    H5Sclose(fspace);
  }
  H5Dclose(ds);
  return bad;
}

typedef struct {
  const lv_layout *lay;
  char extra[3 * LV_NAME_MAX];
} extras_ctx;

static herr_t find_extra(hid_t obj, const char *name, const H5O_info_t *info, void *data) {
  (void)obj;
  extras_ctx *x = data;
  if (info->type != H5O_TYPE_DATASET) return 0;
  char nm[3 * LV_NAME_MAX];
  snprintf(nm, sizeof nm, "%s", name);
  for (char *c = nm; *c; c++)
    if (*c == '/') *c = '.';
  if (lv_layout_find(x->lay, nm, NULL)) return 0;
  snprintf(x->extra, sizeof x->extra, "%s", nm);
  return 1;
}

/* Phase 1, local: attributes, /config, no tensor the layout lacks. */
static int read_meta(hid_t file, const char *path, const lv_layout *lay, lv_ckpt_meta *meta, char **cfg, char *err,
                     size_t cap) {
  if (lv_ckpt_check_attrs(file, path, meta, err, cap) || lv_ckpt_read_config(file, path, cfg, err, cap)) return 1;
  extras_ctx x = {lay, ""};
  hid_t g = H5Gopen2(file, "/model", H5P_DEFAULT);
  herr_t r = g >= 0 ? H5Ovisit2(g, H5_INDEX_NAME, H5_ITER_INC, find_extra, &x, H5O_INFO_BASIC) : -1;
  if (g >= 0) H5Gclose(g);
  if (r == 0) return 0;
  if (x.extra[0])
    snprintf(err, cap, "%s: has tensor %s, which the configured model does not have", path, x.extra);
  else
    snprintf(err, cap, "%s: cannot list /model (%s)", path, lv_h5_errstr());
  return 1;
}

/* Replicated data (params, state; moments without ZeRO) is read once, tensor by tensor, by the
 * rank whose byte share holds it, and broadcast. */
typedef struct {
  int rank, world;
  int64_t total, done;
} shares;

static int next_owner(shares *s, int64_t numel) {
  int owner = (int)(s->done * s->world / (s->total > 0 ? s->total : 1));
  s->done += numel;
  return owner;
}

/* Phase 2, collective (the same broadcasts on every rank whatever fails): the tensor data. */
static int read_data(hid_t file, const char *path, const lv_layout *lay, float *params, float *state, float *m, float *v,
                     const lv_range *ranges, const size_t *range_off, int n_ranges, int rep, char *err, size_t cap) {
  shares sh = {dist_rank(), dist_size(), 0, 0};
  for (int i = 0; i < lay->n_params; i++) sh.total += lay->params[i].numel * (m && v && rep ? 3 : 1);
  for (int i = 0; i < lay->n_state; i++) sh.total += lay->state[i].numel;
  int bad = 0;
  for (int s = 0; s < 2; s++)
    for (int i = 0; i < (s ? lay->n_state : lay->n_params); i++) {
      const lv_tensor *t = s ? &lay->state[i] : &lay->params[i];
      float *dst = (s ? state : params) + t->offset;
      int owner = next_owner(&sh, t->numel);
      if (owner == sh.rank && !bad) bad = lv_model_read_tensor(file, path, t, dst, err, cap);
      if (sh.world > 1) dist_bcast_from(dst, sizeof(float) * (size_t)t->numel, owner);
    }
  if (!m || !v) return bad;
  for (int k = 0; k < n_ranges; k++) { /* padding floats between tensors keep zero moments */
    memset(m + range_off[k], 0, sizeof(float) * (ranges[k].hi - ranges[k].lo));
    memset(v + range_off[k], 0, sizeof(float) * (ranges[k].hi - ranges[k].lo));
  }
  float *stage = NULL; /* pieces from several ranges of the compact buffer: gathered here first */
  size_t stage_cap = 0;
  lv_ckpt_piece *pc = malloc(sizeof(lv_ckpt_piece) * (size_t)(n_ranges + 1));
  CHECK_ALLOC(pc);
  for (int i = 0; i < lay->n_params; i++)
    for (int k = 0; k < 2; k++) {
      const lv_tensor *t = &lay->params[i];
      float *dst = k ? v : m;
      int owner = rep ? next_owner(&sh, t->numel) : sh.rank;
      if (owner == sh.rank && !bad)
        bad = read_part(file, path, k ? "exp_avg_sq" : "exp_avg", t, dst, ranges, range_off, n_ranges, pc, &stage,
                        &stage_cap, err, cap);
      if (!rep || sh.world == 1) continue;
      int np = lv_ckpt_pieces(t, ranges, range_off, n_ranges, pc); /* the same on every rank */
      for (int j = 0; j < np; j++) dist_bcast_from(dst + pc[j].mem, sizeof(float) * (size_t)(pc[j].b - pc[j].a), owner);
    }
  free(stage);
  free(pc);
  return bad;
}

int lv_ckpt_read(const char *path, const lv_layout *lay, float *params, float *state, float *m, float *v,
                 const lv_range *ranges, const size_t *range_off, int n_ranges, lv_ckpt_meta *meta, char *err,
                 size_t cap) {
  H5E_auto2_t fn;
  void *cd;
  H5Eget_auto2(H5E_DEFAULT, &fn, &cd);
  H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
  char *cfg = NULL;
  lv_ckpt_meta got = {0};
  hid_t file = lv_ckpt_open_quiet(path, err, cap);
  int bad = dist_first_error(file < 0 || read_meta(file, path, lay, &got, &cfg, err, cap), err, cap, NULL) >= 0;
  if (!bad) {
    int rep = lv_ckpt_ranges_replicated(ranges, n_ranges);
    bad = read_data(file, path, lay, params, state, m, v, ranges, range_off, n_ranges, rep, err, cap);
    bad = dist_first_error(bad, err, cap, NULL) >= 0;
  }
  if (file >= 0) H5Fclose(file);
  H5Eset_auto2(H5E_DEFAULT, fn, cd);
  if (bad) {
    free(cfg);
    return 1;
  }
  got.config_yaml = cfg;
  *meta = got;
  return 0;
}

int lv_ckpt_attr_str(const char *path, const char *name, char *out, size_t cap) {
  H5E_auto2_t fn;
  void *cd;
  H5Eget_auto2(H5E_DEFAULT, &fn, &cd);
  H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
  char err[64];
  hid_t file = lv_ckpt_open_quiet(path, err, sizeof err);
  int rc = file >= 0 ? attr_str(file, name, out, cap) : -1;
  if (file >= 0) H5Fclose(file);
  H5Eset_auto2(H5E_DEFAULT, fn, cd);
  return rc == 1 ? 0 : 1;
}
