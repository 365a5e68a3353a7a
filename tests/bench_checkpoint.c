/* Checkpoint throughput (a benchmark, not a test): writes and reads a checkpoint of a large model
 * (default d_model 1024, 8 layers: ~75 M parameters, a ~0.9 GB file with both AdamW moments) and, for
 * comparison, the same number of bytes with plain POSIX write() + fsync() from one process into
 * the same directory. Reads are timed after posix_fadvise(DONTNEED) drops the file from the page
 * cache (clean pages), for both. Each write starts after sync() with the earlier files deleted, so
 * that no writeback of a previous file is timed. Prints MB/s (1 MB = 10^6 bytes).
 *
 *   mpirun -np 2 build/tests/bench_checkpoint [--dir D] [--d-model 1024] [--layers 8] [--vocab 256]
 *                                              [--zero 0|1] [--deflate L] [--reps 3]
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "io/checkpoint.h"
#include "layers/params.h"
#include "trainer/base/check.h"
#include "trainer/base/clock.h"
#include "trainer/base/dist.h"
#include "trainer/reducer.h"

static void drop_cache(const char *path) {
  int fd = open(path, O_RDONLY);
  if (fd < 0) return;
  fdatasync(fd);
  posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
  close(fd);
}

static int by_value(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

static double file_mb(const char *path) {
  struct stat st;
  return stat(path, &st) == 0 ? (double)st.st_size / 1e6 : 0.0;
}

/* One process: write `bytes` in 8 MiB blocks + fsync, then read them back. Seconds in t[0], t[1]. */
static void plain(const char *path, size_t bytes, double *t) {
  const size_t block = (size_t)8 << 20, cycle = (size_t)64 << 20;
  char *src = malloc(cycle + block);
  CHECK_ALLOC(src);
  for (size_t i = 0; i < cycle + block; i++) src[i] = (char)(i * 2654435761u >> 13);
  double t0 = lv_now_s();
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (fd < 0) DIE("%s: cannot create", path);
  for (size_t done = 0; done < bytes;) {
    size_t n = bytes - done < block ? bytes - done : block;
    ssize_t w = write(fd, src + done % cycle, n);
    if (w <= 0) DIE("%s: write failed", path);
    done += (size_t)w;
  }
  if (fsync(fd) != 0 || close(fd) != 0) DIE("%s: fsync failed", path);
  t[0] = lv_now_s() - t0;
  drop_cache(path);
  char *buf = malloc(block);
  CHECK_ALLOC(buf);
  t0 = lv_now_s();
  fd = open(path, O_RDONLY);
  while (read(fd, buf, block) > 0) {
  }
  close(fd);
  t[1] = lv_now_s() - t0;
  free(buf);
  free(src);
}

int main(int argc, char **argv) {
  dist_init(&argc, &argv);
  const char *dir = ".";
  int64_t D = 1024, layers = 8, V = 256, zero = 0, deflate = 0, reps = 3;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!strcmp(argv[i], "--dir")) dir = argv[i + 1];
    else if (!strcmp(argv[i], "--d-model")) D = atoll(argv[i + 1]);
    else if (!strcmp(argv[i], "--layers")) layers = atoll(argv[i + 1]);
    else if (!strcmp(argv[i], "--vocab")) V = atoll(argv[i + 1]);
    else if (!strcmp(argv[i], "--zero")) zero = atoll(argv[i + 1]);
    else if (!strcmp(argv[i], "--deflate")) deflate = atoll(argv[i + 1]);
    else if (!strcmp(argv[i], "--reps")) reps = atoll(argv[i + 1]);
    else DIE_INPUT("bench_checkpoint: unknown option %s", argv[i]);
  }
  lv_dims d = {0};
  d.prenorm = 1, d.far_attention = 1, d.V = V, d.K = 10, d.D = D, d.Z = 128, d.E = D, d.N = 16, d.S = 64, d.C = 128;
  d.F = 2 * D, d.n_layers = layers;
  lv_layout lay;
  char err[1024];
  if (lv_layout_build(&lay, &d, err, sizeof err)) DIE_INPUT("%s", err);
  int W = dist_size();
  size_t pad = reducer_grad_floats(lay.n_param_floats, W);
  float *params = malloc(sizeof(float) * pad), *state = malloc(sizeof(float) * lay.n_state_floats);
  float *red = calloc(pad, sizeof(float));
  double *stats = calloc(reducer_stat_doubles(16, W), sizeof(double));
  CHECK_ALLOC(params);
  CHECK_ALLOC(state);
  CHECK_ALLOC(red);
  CHECK_ALLOC(stats);
  static lv_range ranges[65536];
  static size_t off[65536];
  reducer *rd = reducer_create(red, lay.n_param_floats, stats, 16, (size_t)4 << 20, (int)zero, 0);
  int n = reducer_shard(rd, ranges, 65536);
  reducer_free(rd);
  free(red);
  free(stats);
  size_t nm = 0;
  for (int k = 0; k < n; k++) off[k] = nm, nm += ranges[k].hi - ranges[k].lo;
  float *m = malloc(sizeof(float) * nm), *v = malloc(sizeof(float) * nm);
  CHECK_ALLOC(m);
  CHECK_ALLOC(v);
  uint64_t x = 88172645463325252ull; /* xorshift: incompressible-ish floats, like trained weights */
  lv_layout_init(&lay, 1, params, state);
  for (size_t i = 0; i < nm; i++) {
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    m[i] = (float)((double)(x >> 11) / 9007199254740992.0 - 0.5) * 1e-3f;
    v[i] = m[i] * m[i];
  }
  lv_ckpt_set_deflate((int)deflate);
  char path[4200], pplain[4200];
  lv_ckpt_path(path, sizeof path, dir, 1);
  snprintf(pplain, sizeof pplain, "%s/plain.bin", dir);
  size_t np = 0;
  for (int i = 0; i < lay.n_params; i++) np += (size_t)lay.params[i].numel;
  double all[4][64], mb = 0;
  if (reps < 1 || reps > 64) DIE_INPUT("bench_checkpoint: --reps must be in [1, 64]");
  for (int64_t r = 0; r < reps; r++) {
    lv_ckpt_meta meta = {1, 8, 1, W, (int)zero, 0, "bench: true\n", ""};
    if (dist_is_root()) unlink(path), unlink(pplain), sync(); /* start clean: no writeback of earlier files */
    dist_barrier();
    double t0 = lv_now_s();
    lv_ckpt_write(path, &lay, params, state, m, v, ranges, off, n, &meta);
    double tw = lv_now_s() - t0;
    mb = file_mb(path);
    if (dist_is_root()) drop_cache(path);
    dist_barrier();
    t0 = lv_now_s();
    int bad = lv_ckpt_read(path, &lay, params, state, m, v, ranges, off, n, &meta, err, sizeof err);
    dist_barrier();
    double tr = lv_now_s() - t0;
    if (bad) DIE("%s", err);
    free((void *)meta.config_yaml);
    double tp[2] = {0, 0};
    if (dist_is_root()) unlink(path), sync(), plain(pplain, (size_t)(mb * 1e6), tp);
    dist_barrier();
    if (dist_is_root())
      printf("rep %lld: longvq write %.2f s read %.2f s | plain write %.2f s read %.2f s\n", (long long)r, tw, tr,
             tp[0], tp[1]);
    all[0][r] = tw, all[1][r] = tr, all[2][r] = tp[0], all[3][r] = tp[1];
  }
  double best[4], med[4];
  for (int k = 0; k < 4; k++) {
    qsort(all[k], (size_t)reps, sizeof(double), by_value);
    best[k] = all[k][0];
    med[k] = reps % 2 ? all[k][reps / 2] : 0.5 * (all[k][reps / 2 - 1] + all[k][reps / 2]);
  }
  if (dist_is_root()) {
    printf("checkpoint: d_model %lld, %lld layers: %.1f M parameters, file %.1f MB; %d rank(s), ZeRO %s, deflate %lld\n",
           (long long)D, (long long)layers, (double)np / 1e6, mb, W, zero ? "on" : "off", (long long)deflate);
    printf("%-26s %18s %18s\n", "MB/s (best / median)", "write", "read");
    printf("%-26s %8.0f / %7.0f %8.0f / %7.0f\n", "longvq checkpoint", mb / best[0], mb / med[0], mb / best[1],
           mb / med[1]);
    printf("%-26s %8.0f / %7.0f %8.0f / %7.0f\n", "plain POSIX (1 process)", mb / best[2], mb / med[2], mb / best[3],
           mb / med[3]);
    printf("%-26s %7.0f%% / %6.0f%% %7.0f%% / %6.0f%%\n", "ours / plain", 100.0 * best[2] / best[0],
           100.0 * med[2] / med[0], 100.0 * best[3] / best[1], 100.0 * med[3] / med[1]);
  }
  if (dist_is_root()) {
    char latest[4200];
    snprintf(latest, sizeof latest, "%s/latest", dir);
    unlink(pplain), unlink(path), unlink(latest);
  }
  free(params), free(state), free(m), free(v);
  lv_layout_free(&lay);
  dist_finalize();
  return 0;
}
