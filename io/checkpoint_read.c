/* lv_ckpt_read: every rank opens the file with its own (serial) HDF5 handle, so that a corrupt
 * file can fail on one rank without leaving the others inside an HDF5 collective. Replicated data
 * (params, codebooks, moments without ZeRO) is read once, each tensor by one rank, and broadcast;
 * under ZeRO each rank reads its own ranges of the moments. A rank that meets a problem keeps
 * taking part in the broadcasts; at the end the ranks agree on the first error (the lowest failing
 * rank's message). Nothing here aborts on a bad file: every problem becomes a message.
 * Digests: a /model tensor is read whole by one rank, which checks its crc32; a moment tensor may be
 * read in pieces by several ranks (ZeRO-1): each rank hashes its pieces and rank 0 combines them into
 * the tensor's crc32 (io/digest.h), so any decomposition verifies every digest. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "io/checkpoint_internal.h"
#include "io/dataset_internal.h"
#include "io/digest.h"
#include "io/model_io.h"
#include "trainer/base/check.h"
#include "trainer/base/dist.h"
#include "trainer/base/dist_io.h"

int lv_ckpt_check_attrs(hid_t file, const char *path, lv_ckpt_meta *meta, int *digests, char *err, size_t cap) {
  char fmt[256] = "";
  int rc = lv_h5_attr_str_quiet(file, "format", fmt, sizeof fmt);
  if (rc <= 0) {
    snprintf(err, cap, "%s: not a longvq checkpoint (%s root attribute 'format')", path, rc ? "unreadable" : "no");
    return 1;
  }
  if (strcmp(fmt, LV_CKPT_FORMAT) != 0) {
    snprintf(err, cap, "%s: not a longvq checkpoint (format '%s', expected '%s')", path, fmt, LV_CKPT_FORMAT);
    return 1;
  }
  int64_t ver = 0, world = 0, zero = 0;
  if (lv_h5_attr_int_quiet(file, "format_version", H5T_NATIVE_INT64, &ver) <= 0 || ver < 1) {
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
    rc = lv_h5_attr_int_quiet(file, want[i].name, want[i].type, want[i].dst);
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
  meta->data_identity[0] = 0; /* optional: checkpoints before it have none */
  if (lv_h5_attr_str_quiet(file, "data_identity", meta->data_identity, sizeof meta->data_identity) <= 0)
    meta->data_identity[0] = 0;
  *digests = lv_digest_declared(file, path, err, cap);
  return *digests < 0;
}

/* Reading the moments: this rank's ranges, a staging buffer, and the crc32 of every piece read. */
typedef struct {
  hid_t file;
  const char *path;
  const lv_range *ranges;
  const size_t *range_off;
  int n_ranges;
  lv_ckpt_piece *pc;
  float *stage; /* pieces from several ranges of the compact buffer: gathered here first */
  size_t stage_cap;
  lv_digest_piece *dp; /* dp[i].ds: index of the moment dataset (2 * param + k) */
  int n_dp, dp_cap;
  char *err;
  size_t cap;
} moments_ctx;

static void hash_pieces(moments_ctx *c, int64_t ds, const float *dst, int np) {
  for (int i = 0; i < np; i++) {
    if (c->n_dp == c->dp_cap) {
      c->dp_cap = c->dp_cap ? 2 * c->dp_cap : 256;
      c->dp = realloc(c->dp, sizeof(lv_digest_piece) * (size_t)c->dp_cap);
      CHECK_ALLOC(c->dp);
    }
    size_t n = sizeof(float) * (size_t)(c->pc[i].b - c->pc[i].a);
    c->dp[c->n_dp++] = (lv_digest_piece){ds, (int64_t)sizeof(float) * c->pc[i].a, (int64_t)n,
                                         lv_crc32(0, dst + c->pc[i].mem, n), 0};
  }
}

/* This rank's ranges of moment tensor t (dataset index ds) into the compact buffer dst, hashed. */
static int read_part(moments_ctx *c, const char *which, int64_t ds_index, const lv_tensor *t, float *dst) {
  char h5[3 * LV_NAME_MAX], what[64], prefix[64];
  snprintf(prefix, sizeof prefix, "/optimizer/%s", which);
  snprintf(what, sizeof what, "optimizer tensor %s of ", which);
  lv_h5_tensor_path(prefix, t->name, h5, sizeof h5);
  hid_t ds = lv_h5_open_quiet(c->file, h5);
  if (ds < 0) {
    snprintf(c->err, c->cap, "%s: missing %s%s (%s)", c->path, what, t->name, h5);
    return 1;
  }
  lv_ckpt_piece *pc = c->pc;
  int bad = lv_h5_check_shape(ds, t, c->path, what, c->err, c->cap);
  int np = lv_ckpt_pieces(t, c->ranges, c->range_off, c->n_ranges, pc);
  if (!bad && np > 0) { /* the rows the pieces touch, in tensor layout (fast chunk mapping) */
    hid_t fspace, mspace;
    hsize_t md[2];
    int64_t shift = lv_ckpt_span(t, pc, np, md), base;
    CHECK_H5(fspace = H5Dget_space(ds));
    CHECK_H5(mspace = H5Screate_simple(t->ndim, md, NULL));
    lv_ckpt_select(fspace, t, pc, np, 0);
    lv_ckpt_select(mspace, t, pc, np, shift);
    if (lv_ckpt_contiguous(pc, np, &base) && base + shift >= 0) {
      bad = lv_h5_read_quiet(ds, mspace, fspace, dst + base + shift, t, c->path, what, c->err, c->cap);
    } else {
      size_t need = (size_t)(md[0] * (t->ndim == 2 ? md[1] : 1));
      if (need > c->stage_cap) {
        free(c->stage);
        c->stage = malloc(sizeof(float) * need);
        CHECK_ALLOC(c->stage);
        c->stage_cap = need;
      }
      bad = lv_h5_read_quiet(ds, mspace, fspace, c->stage, t, c->path, what, c->err, c->cap);
      for (int i = 0; i < np && !bad; i++)
        memcpy(dst + pc[i].mem, c->stage + (pc[i].a - shift), sizeof(float) * (size_t)(pc[i].b - pc[i].a));
    }
    if (!bad) hash_pieces(c, ds_index, dst, np);
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
static int read_meta(hid_t file, const char *path, const lv_layout *lay, lv_ckpt_meta *meta, int *digests,
                     char **cfg, char *err, size_t cap) {
  if (lv_ckpt_check_attrs(file, path, meta, digests, err, cap) ||
      lv_h5_read_config(file, path, *digests, cfg, err, cap))
    return 1;
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

/* Phase 2, collective (the same broadcasts on every rank whatever fails): the tensor data. The
 * moments' pieces read here and their crc32s are left in c. */
static int read_data(moments_ctx *c, const lv_layout *lay, float *params, float *state, float *m, float *v, int rep,
                     int declared) {
  shares sh = {dist_rank(), dist_size(), 0, 0};
  for (int i = 0; i < lay->n_params; i++) sh.total += lay->params[i].numel * (m && v && rep ? 3 : 1);
  for (int i = 0; i < lay->n_state; i++) sh.total += lay->state[i].numel;
  int bad = 0;
  for (int s = 0; s < 2; s++)
    for (int i = 0; i < (s ? lay->n_state : lay->n_params); i++) {
      const lv_tensor *t = s ? &lay->state[i] : &lay->params[i];
      float *dst = (s ? state : params) + t->offset;
      int owner = next_owner(&sh, t->numel);
      if (owner == sh.rank && !bad) bad = lv_model_read_tensor(c->file, c->path, t, dst, declared, c->err, c->cap);
      if (sh.world > 1) dist_bcast_from(dst, sizeof(float) * (size_t)t->numel, owner);
    }
  if (!m || !v) return bad;
  for (int k = 0; k < c->n_ranges; k++) { /* padding floats between tensors keep zero moments */
    memset(m + c->range_off[k], 0, sizeof(float) * (c->ranges[k].hi - c->ranges[k].lo));
    memset(v + c->range_off[k], 0, sizeof(float) * (c->ranges[k].hi - c->ranges[k].lo));
  }
  for (int i = 0; i < lay->n_params; i++)
    for (int k = 0; k < 2; k++) {
      const lv_tensor *t = &lay->params[i];
      float *dst = k ? v : m;
      int owner = rep ? next_owner(&sh, t->numel) : sh.rank;
      if (owner == sh.rank && !bad) bad = read_part(c, k ? "exp_avg_sq" : "exp_avg", 2 * i + k, t, dst);
      if (!rep || sh.world == 1) continue;
      int np = lv_ckpt_pieces(t, c->ranges, c->range_off, c->n_ranges, c->pc); /* the same on every rank */
      for (int j = 0; j < np; j++)
        dist_bcast_from(dst + c->pc[j].mem, sizeof(float) * (size_t)(c->pc[j].b - c->pc[j].a), owner);
    }
  return bad;
}

/* Phase 3, collective: the moments' pieces, read by whichever ranks, combine into each tensor's
 * crc32; rank 0 compares them with the recorded digests. 0, or 1 + err on rank 0. */
static int verify_moments(moments_ctx *c, const lv_layout *lay) {
  int n = 2 * lay->n_params, bad = 0;
  int64_t *len = malloc(sizeof(int64_t) * (size_t)(n + 1));
  uint32_t *crc = malloc(sizeof(uint32_t) * (size_t)(n + 1));
  CHECK_ALLOC(len);
  CHECK_ALLOC(crc);
  for (int j = 0; j < n; j++) len[j] = (int64_t)sizeof(float) * lay->params[j / 2].numel;
  int untiled = lv_digest_combine(c->dp, c->n_dp, len, n, crc);
  if (untiled >= 0)
    DIE("%s: the ranks' optimizer ranges do not cover %s exactly once: its digest cannot be checked", c->path,
        lay->params[untiled / 2].name);
  for (int j = 0; j < n && !bad && dist_is_root(); j++) {
    const char *which = j % 2 ? "exp_avg_sq" : "exp_avg";
    char h5[3 * LV_NAME_MAX], prefix[64], what[64];
    snprintf(prefix, sizeof prefix, "/optimizer/%s", which);
    snprintf(what, sizeof what, "optimizer tensor %s of ", which);
    lv_h5_tensor_path(prefix, lay->params[j / 2].name, h5, sizeof h5);
    hid_t ds = lv_h5_open_quiet(c->file, h5);
    bad = ds < 0 || lv_digest_verify(ds, 1, crc[j], c->path, what, lay->params[j / 2].name, c->err, c->cap) ==
                        LV_DIGEST_BAD;
    if (ds < 0) snprintf(c->err, c->cap, "%s: cannot reopen %s", c->path, h5);
    if (ds >= 0) H5Dclose(ds);
  }
  free(len);
  free(crc);
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
  int digests = 0; /* the same on every rank when the ranks agree that the attributes are fine */
  hid_t file = lv_h5_open_file_quiet(path, err, cap);
  int bad = file < 0 || read_meta(file, path, lay, &got, &digests, &cfg, err, cap);
  bad = dist_first_error(bad, err, cap, NULL) >= 0;
  digests = dist_any(digests); /* one decision for the collective verification below */
  moments_ctx c = {.file = file, .path = path, .ranges = ranges, .range_off = range_off, .n_ranges = n_ranges,
                   .err = err, .cap = cap};
  c.pc = malloc(sizeof(lv_ckpt_piece) * (size_t)(n_ranges + 1));
  CHECK_ALLOC(c.pc);
  if (!bad) {
    int rep = lv_ckpt_ranges_replicated(ranges, n_ranges);
    bad = read_data(&c, lay, params, state, m, v, rep, digests);
    bad = dist_first_error(bad, err, cap, NULL) >= 0;
  }
  if (!bad && digests && m && v) bad = dist_first_error(verify_moments(&c, lay), err, cap, NULL) >= 0;
  free(c.stage);
  free(c.pc);
  free(c.dp);
  if (file >= 0) H5Fclose(file);
  H5Eset_auto2(H5E_DEFAULT, fn, cd);
  if (bad) {
    free(cfg);
    return 1;
  }
  if (!digests) lv_digest_note_none(path);
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
  hid_t file = lv_h5_open_file_quiet(path, err, sizeof err);
  int rc = file >= 0 ? lv_h5_attr_str_quiet(file, name, out, cap) : -1;
  if (file >= 0) H5Fclose(file);
  H5Eset_auto2(H5E_DEFAULT, fn, cd);
  return rc == 1 ? 0 : 1;
}
