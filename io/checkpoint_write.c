/* lv_ckpt_write: one checkpoint file, written collectively with parallel HDF5 (see checkpoint.h).
 * Two passes over the tensors: first each rank hashes the pieces it will write and the ranks combine
 * them into every dataset's crc32 (io/digest.h); then every dataset is created with its digest
 * attribute and written. */
#include <errno.h>
#include <libgen.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "io/config.h" /* LV_PATH_MAX */
#include "io/checkpoint_internal.h"
#include "io/dataset_internal.h"
#include "io/digest.h"
#include "io/model_io.h"
#include "trainer/base/check.h"
#include "trainer/base/dist.h"
#include "trainer/base/dist_io.h"
#include "trainer/base/watchdog.h"
#include "trainer/base/hash.h"

typedef struct {
  hid_t file, gcpl, dxpl;
  int deflate, rank, world;
  float *stage;           /* pieces of m or v at their places in the rows they touch */
  size_t stage_cap;
  lv_ckpt_piece *pc, *own; /* scratch: pieces from the ranges, pieces this rank writes */
  int64_t stream, pos;    /* replicated data: total floats, position of the current tensor */
  double t_create, t_write, t_hash; /* seconds in H5Dcreate2 / H5Dwrite / crc32 (LONGVQ_CKPT_TIMING) */
} wctx;

static int g_deflate = 0;
void lv_ckpt_set_deflate(int level) { g_deflate = level < 0 ? 0 : level > 9 ? 9 : level; }

/* Testing only: LONGVQ_TEST_CKPT_WRITE_S=SECONDS makes every checkpoint write last that much longer,
 * spread as sleeps after each dataset (the .tmp file open and half written, as on a slow file
 * system), so that the stop-signal tests (tests/signal_stop.sh, tests/slurm_signals.sh) can check that
 * a launcher leaves the ranks time to finish a write of seconds. Unset or 0: no delay. */
static void test_write_delay(int n_datasets) {
  const char *v = getenv("LONGVQ_TEST_CKPT_WRITE_S");
  double s = v ? atof(v) : 0.0;
  if (!(s > 0.0) || n_datasets <= 0) return;
  double each = s / n_datasets;
  struct timespec ts = {(time_t)each, (long)((each - (double)(time_t)each) * 1e9)};
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {} /* a signal (the stop request) must not shorten it */
}

/* Replicated data: chunk c of this tensor goes to the rank whose share of the whole stream of
 * replicated floats holds the chunk's first float (contiguous, balanced shares). */
static int own_chunks(wctx *w, const lv_tensor *t, const lv_ckpt_piece *src, int ns, lv_ckpt_piece *out) {
  hsize_t cd[2];
  int64_t cf = lv_ckpt_chunk_dims(t, cd), lo = -1, hi = -1;
  for (int64_t s = 0; s < t->numel; s += cf) {
    int64_t owner = (w->pos + s) / ((w->stream + w->world - 1) / w->world);
    if (owner != w->rank) continue;
    if (lo < 0) lo = s;
    hi = s + cf < t->numel ? s + cf : t->numel;
  }
  w->pos += t->numel;
  int n = 0;
  for (int i = 0; i < ns && lo >= 0; i++) { /* intersect the owned span [lo, hi) with the pieces */
    int64_t a = src[i].a > lo ? src[i].a : lo, b = src[i].b < hi ? src[i].b : hi;
    if (a < b) out[n++] = (lv_ckpt_piece){a, b, src[i].mem + (size_t)(a - src[i].a)};
  }
  return n;
}

/* One dataset to write: prefix/<t's sub-path>, from buf, this rank's part given by the ranges. */
typedef struct {
  const char *prefix;
  const lv_tensor *t;
  const float *buf;
  const lv_range *ranges;
  const size_t *range_off;
  int n_ranges, replicated;
} wjob;

/* The pieces of job j this rank writes (in w->pc or w->own: valid until the next call). Replicated
 * data advances w->pos: call once per job, in order, per pass. */
static int my_pieces(wctx *w, const wjob *j, lv_ckpt_piece **p) {
  int np = lv_ckpt_pieces(j->t, j->ranges, j->range_off, j->n_ranges, w->pc);
  *p = w->pc;
  if (!j->replicated) return np;
  *p = w->own;
  return own_chunks(w, j->t, w->pc, np, w->own);
}

/* Creates job j's dataset with its digest and writes this rank's part of it (collective). */
static void write_tensor(wctx *w, const wjob *j, uint32_t digest) {
  const lv_tensor *t = j->t;
  char path[3 * LV_NAME_MAX];
  lv_h5_tensor_path(j->prefix, t->name, path, sizeof path);
  lv_h5_make_parents(w->file, path, w->gcpl);
  hsize_t dims[2] = {(hsize_t)t->shape[0], (hsize_t)t->shape[1]}, cd[2];
  lv_ckpt_chunk_dims(t, cd);
  hid_t dcpl, fspace, mspace, ds;
  CHECK_H5(dcpl = H5Pcreate(H5P_DATASET_CREATE));
  CHECK_H5(H5Pset_chunk(dcpl, t->ndim, cd));
  if (w->deflate > 0) CHECK_H5(H5Pset_deflate(dcpl, (unsigned)w->deflate));
  CHECK_H5(H5Pset_fletcher32(dcpl)); /* last: the checksum covers the stored (compressed) bytes */
  /* (parallel HDF5 1.10 writes filtered fill chunks at creation all the same: docs/checkpoints.md) */
  CHECK_H5(H5Pset_fill_time(dcpl, H5D_FILL_TIME_NEVER));
  CHECK_H5(fspace = H5Screate_simple(t->ndim, dims, NULL));
  double t0 = MPI_Wtime();
  CHECK_H5(ds = H5Dcreate2(w->file, path, H5T_IEEE_F32LE, fspace, H5P_DEFAULT, dcpl, H5P_DEFAULT));
  lv_digest_write(ds, digest);
  w->t_create += MPI_Wtime() - t0;
  lv_ckpt_piece *p;
  int np = my_pieces(w, j, &p);
  /* Memory: the rows the pieces touch, in tensor layout, with the file's selection (fast path). */
  hsize_t md[2];
  int64_t shift = lv_ckpt_span(t, p, np, md), base;
  lv_ckpt_select(fspace, t, p, np, 0);
  CHECK_H5(mspace = H5Screate_simple(t->ndim, md, NULL));
  lv_ckpt_select(mspace, t, p, np, shift);
  const float *src;
  if (lv_ckpt_contiguous(p, np, &base) && base + shift >= 0) { /* params, state, most moment tensors */
    src = j->buf + base + shift;
  } else {
    size_t need = (size_t)(md[0] * (t->ndim == 2 ? md[1] : 1));
    if (need > w->stage_cap) {
      free(w->stage);
      w->stage = malloc(sizeof(float) * need);
      CHECK_ALLOC(w->stage);
      w->stage_cap = need;
    }
    for (int i = 0; i < np; i++)
      memcpy(w->stage + (p[i].a - shift), j->buf + p[i].mem, sizeof(float) * (size_t)(p[i].b - p[i].a));
    src = w->stage;
  }
  t0 = MPI_Wtime();
  CHECK_H5(H5Dwrite(ds, H5T_NATIVE_FLOAT, mspace, fspace, w->dxpl, src));
  w->t_write += MPI_Wtime() - t0;
  CHECK_H5(H5Sclose(mspace));
  CHECK_H5(H5Sclose(fspace));
  CHECK_H5(H5Dclose(ds));
  CHECK_H5(H5Pclose(dcpl));
}

/* Pass 1 (collective): the crc32 of every job's dataset from the pieces each rank writes. */
static uint32_t *job_digests(wctx *w, const wjob *jobs, int n, const char *path) {
  size_t cap = 256, np_all = 0;
  lv_digest_piece *dp = malloc(sizeof *dp * cap);
  int64_t *len = malloc(sizeof(int64_t) * (size_t)n);
  uint32_t *out = malloc(sizeof(uint32_t) * (size_t)n);
  CHECK_ALLOC(dp);
  CHECK_ALLOC(len);
  CHECK_ALLOC(out);
  double t0 = MPI_Wtime();
  w->pos = 0;
  for (int j = 0; j < n; j++) {
    lv_ckpt_piece *p;
    int np = my_pieces(w, &jobs[j], &p);
    len[j] = (int64_t)sizeof(float) * jobs[j].t->numel;
    for (int i = 0; i < np; i++) {
      if (np_all == cap) {
        dp = realloc(dp, sizeof *dp * (cap *= 2));
        CHECK_ALLOC(dp);
      }
      size_t bytes = sizeof(float) * (size_t)(p[i].b - p[i].a);
      dp[np_all++] = (lv_digest_piece){j, (int64_t)sizeof(float) * p[i].a, (int64_t)bytes,
                                       lv_crc32(0, jobs[j].buf + p[i].mem, bytes), 0};
    }
  }
  w->pos = 0; /* pass 2 walks the replicated stream again */
  w->t_hash = MPI_Wtime() - t0;
  int untiled = lv_digest_combine(dp, (int)np_all, len, n, out);
  if (untiled >= 0)
    DIE("%s: the ranks' pieces of %s%s do not cover it exactly once", path, jobs[untiled].prefix,
        jobs[untiled].t->name);
  free(dp);
  free(len);
  return out;
}

/* /config: one fixed-length string in a chunked, checksummed 1-element dataset; rank 0 writes it. */
static void write_config(wctx *w, const char *yaml) {
  hid_t type, space, dcpl, ds;
  hsize_t one = 1;
  CHECK_H5(type = H5Tcopy(H5T_C_S1));
  CHECK_H5(H5Tset_size(type, strlen(yaml) + 1));
  CHECK_H5(space = H5Screate_simple(1, &one, NULL));
  CHECK_H5(dcpl = H5Pcreate(H5P_DATASET_CREATE));
  CHECK_H5(H5Pset_chunk(dcpl, 1, &one));
  CHECK_H5(H5Pset_fletcher32(dcpl));
  CHECK_H5(ds = H5Dcreate2(w->file, "/config", type, space, H5P_DEFAULT, dcpl, H5P_DEFAULT));
  lv_digest_write(ds, lv_crc32(0, yaml, strlen(yaml)));
  if (w->rank != 0) CHECK_H5(H5Sselect_none(space));
  CHECK_H5(H5Dwrite(ds, type, space, space, w->dxpl, yaml));
  CHECK_H5(H5Dclose(ds));
  CHECK_H5(H5Pclose(dcpl));
  CHECK_H5(H5Sclose(space));
  CHECK_H5(H5Tclose(type));
}

static void write_attrs(hid_t file, const lv_ckpt_meta *meta) {
  char created[64] = "";
  if (dist_is_root()) {
    time_t now = time(NULL);
    struct tm tm;
    strftime(created, sizeof created, "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&now, &tm));
  }
  dist_bcast_from(created, sizeof created, 0); /* attributes must be identical on every rank */
  lv_h5_attr_fixed_str(file, "format", LV_CKPT_FORMAT);
  lv_attr_write_i64(file, "format_version", LV_CKPT_VERSION);
  lv_attr_write_i64(file, "step", meta->step);
  lv_attr_write_i64(file, "samples_seen", meta->samples_seen);
  lv_attr_write_u64(file, "seed", meta->seed);
  lv_attr_write_i64(file, "world_size", dist_size()); /* the truth, whatever meta says */
  lv_attr_write_i64(file, "zero", meta->zero);
  lv_attr_write_i64(file, "restart_count", meta->restart_count);
  if (meta->data_identity[0]) lv_h5_attr_fixed_str(file, "data_identity", meta->data_identity);
  lv_h5_attr_fixed_str(file, "build", LONGVQ_VERSION " (git " LONGVQ_GIT ")");
  lv_h5_attr_fixed_str(file, "created", created);
  lv_digest_declare(file);
}

/* Are the ranges the same on every rank (replicated moments), and do they cover what they must? */
static int check_ranges(const lv_layout *lay, const lv_range *ranges, int n_ranges, lv_ckpt_piece *pc,
                        const size_t *range_off) {
  int replicated = lv_ckpt_ranges_replicated(ranges, n_ranges);
  int64_t have[2] = {0, 0}; /* floats of trained tensors covered here; their total */
  for (int i = 0; i < lay->n_params; i++) {
    int np = lv_ckpt_pieces(&lay->params[i], ranges, range_off, n_ranges, pc);
    for (int j = 0; j < np; j++) have[0] += pc[j].b - pc[j].a;
    have[1] += lay->params[i].numel;
  }
  if (replicated && have[0] != have[1])
    DIE("checkpoint: the optimizer ranges cover %lld of the %lld trained floats", (long long)have[0],
        (long long)have[1]);
  if (!replicated) {
    int64_t sum = have[0];
    dist_sum_i64(&sum, 1);
    if (sum != have[1])
      DIE("checkpoint: the ranks' optimizer ranges cover %lld floats, the %lld trained floats need to be covered "
          "exactly once", (long long)sum, (long long)have[1]);
  }
  return replicated;
}

void lv_ckpt_write(const char *path, const lv_layout *lay, const float *params, const float *state,
                   const float *m, const float *v, const lv_range *ranges, const size_t *range_off, int n_ranges,
                   const lv_ckpt_meta *meta) {
  double t_start = MPI_Wtime();
  int64_t mv[7] = {meta->step, meta->samples_seen, (int64_t)meta->seed, meta->world_size, meta->zero,
                   meta->restart_count, g_deflate};
  if (!dist_all_equal_u64(lv_fnv1a(LV_FNV1A_INIT, mv, sizeof mv)))
    DIE("%s: the checkpoint metadata (step, samples_seen, ...) differs between ranks", path);
  wctx w = {.deflate = g_deflate, .rank = dist_rank(), .world = dist_size()};
  size_t max_pieces = (size_t)n_ranges + 1;
  w.pc = malloc(sizeof(lv_ckpt_piece) * max_pieces);
  w.own = malloc(sizeof(lv_ckpt_piece) * max_pieces);
  CHECK_ALLOC(w.pc);
  CHECK_ALLOC(w.own);
  int replicated = check_ranges(lay, ranges, n_ranges, w.pc, range_off);
  char *yaml = dist_io_bcast_str(meta->config_yaml ? meta->config_yaml : "");

  char tmp[LV_PATH_MAX];
  snprintf(tmp, sizeof tmp, "%s.tmp", path);
  hid_t fapl, fcpl;
  /* HDF5's collectives block (and spin) inside the library: the watched collectives just above catch
   * a rank stuck before the write; the mark lets the watchdog catch one stuck inside it. */
  watchdog_wait_begin("HDF5 collective write");
  CHECK_H5(fapl = H5Pcreate(H5P_FILE_ACCESS));
  CHECK_H5(H5Pset_fapl_mpio(fapl, MPI_COMM_WORLD, MPI_INFO_NULL));
  /* collective metadata: one rank reads/writes it for all (no metadata read storm at scale) */
  CHECK_H5(H5Pset_all_coll_metadata_ops(fapl, 1));
  CHECK_H5(H5Pset_coll_metadata_write(fapl, 1));
  lv_h5_format_props(fapl, &fcpl, &w.gcpl); /* the 1.10 format: checksummed metadata too */
  CHECK_H5(w.dxpl = H5Pcreate(H5P_DATASET_XFER));
  CHECK_H5(H5Pset_dxpl_mpio(w.dxpl, H5FD_MPIO_COLLECTIVE)); /* parallel writes of filtered data need it */
  CHECK_H5(w.file = H5Fcreate(tmp, H5F_ACC_TRUNC, fcpl, fapl));
  write_attrs(w.file, meta);
  write_config(&w, yaml);

  /* The stream of replicated floats, split evenly among the ranks in chunk units. */
  size_t np_floats = 0, ns_floats = 0;
  for (int i = 0; i < lay->n_params; i++) np_floats += (size_t)lay->params[i].numel;
  for (int i = 0; i < lay->n_state; i++) ns_floats += (size_t)lay->state[i].numel;
  w.stream = (int64_t)(np_floats + ns_floats + (replicated ? 2 * np_floats : 0));
  lv_range all_p = {0, lay->n_param_floats}, all_s = {0, lay->n_state_floats};
  size_t zero_off = 0;
  int n_jobs = 3 * lay->n_params + lay->n_state, n = 0;
  wjob *jobs = malloc(sizeof(wjob) * (size_t)n_jobs);
  CHECK_ALLOC(jobs);
  for (int i = 0; i < lay->n_params; i++)
    jobs[n++] = (wjob){"/model", &lay->params[i], params, &all_p, &zero_off, 1, 1};
  for (int i = 0; i < lay->n_state; i++)
    jobs[n++] = (wjob){"/model", &lay->state[i], state, &all_s, &zero_off, 1, 1};
  for (int k = 0; k < 2; k++)
    for (int i = 0; i < lay->n_params; i++)
      jobs[n++] = (wjob){k ? "/optimizer/exp_avg_sq" : "/optimizer/exp_avg", &lay->params[i], k ? v : m, ranges,
                         range_off, n_ranges, replicated};
  uint32_t *digest = job_digests(&w, jobs, n_jobs, path);
  for (int j = 0; j < n_jobs; j++) {
    write_tensor(&w, &jobs[j], digest[j]);
    test_write_delay(n_jobs);
  }
  free(digest);
  free(jobs);

  double t1 = MPI_Wtime();
  CHECK_H5(H5Fflush(w.file, H5F_SCOPE_GLOBAL)); /* MPI_File_sync on every rank */
  CHECK_H5(H5Fclose(w.file));
  watchdog_wait_end();
  CHECK_H5(H5Pclose(w.dxpl));
  CHECK_H5(H5Pclose(w.gcpl));
  CHECK_H5(H5Pclose(fcpl));
  CHECK_H5(H5Pclose(fapl));
  free(w.stage);
  free(w.pc);
  free(w.own);
  free(yaml);
  dist_barrier(); /* every rank's data is on disk before the file gets its final name */
  if (dist_is_root()) {
    lv_fsync_path(tmp);
    lv_rename_durable(tmp, path);
    char d[4200], b[4200];
    snprintf(d, sizeof d, "%s", path);
    snprintf(b, sizeof b, "%s", path);
    lv_ckpt_write_latest(dirname(d), basename(b));
  }
  dist_barrier(); /* nobody reports the checkpoint saved before it is durable */
  if (getenv("LONGVQ_CKPT_TIMING"))
    fprintf(stderr,
            "[rank %d] %s: %.2f s = crc32 %.2f + create %.2f + write %.2f + other %.2f + sync/close/rename %.2f\n",
            w.rank, path, MPI_Wtime() - t_start, w.t_hash, w.t_create, w.t_write,
            t1 - t_start - w.t_hash - w.t_create - w.t_write, MPI_Wtime() - t1);
}
