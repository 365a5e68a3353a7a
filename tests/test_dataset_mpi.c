/* The reader under mpirun: rank 0 writes a 3-shard classification set and a 2-shard LM set whose
 * content is a formula of the global index; every rank opens them itself and reads its own
 * indices (i % size == rank, scrambled, with repeats); each must get exactly those samples.
 * The run-start digest check (lv_dataset_verify_all) splits every array over the ranks and joins the
 * pieces: it must accept the files at any rank count, arrays of several blocks included.
 * Run with 1, 2 or more ranks; the verdict is agreed over ranks (dist_any). */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "io/dataset.h"
#include "tests/test_util.h"
#include "trainer/base/dist.h"

enum { N = 501, VOCAB = 300, K = 7, LM_TOKENS = 5003, SEQ = 50, BIG = 4 * 65536 + 17 };

static int64_t len_of(int64_t i) { return 1 + (i * 37) % 97; }
static int32_t tok_of(int64_t i, int64_t t) { return (int32_t)((i * 13 + t * 7) % VOCAB); }
static int32_t lbl_of(int64_t i) { return (int32_t)((i * 5) % K); }
static int32_t stream_of(int64_t t) { return (int32_t)((t * 2654435761u) % 256); }
static uint8_t emask_of(int64_t t) { return (uint8_t)((t * 7) % 5 < 2); }

static void write_sets(const char *dir) {
  int64_t *off = malloc((N + 1) * sizeof *off);
  int32_t *lbl = malloc(N * sizeof *lbl);
  off[0] = 0;
  for (int64_t i = 0; i < N; i++) {
    off[i + 1] = off[i] + len_of(i);
    lbl[i] = lbl_of(i);
  }
  uint16_t *tok = malloc((size_t)off[N] * sizeof *tok);
  for (int64_t i = 0; i < N; i++)
    for (int64_t t = 0; t < len_of(i); t++) tok[off[i] + t] = (uint16_t)tok_of(i, t);
  lv_split_data sp = {"train", N, off[N], tok, LV_DTYPE_U16, off, lbl, NULL};
  lv_dataset_meta m = {LV_TASK_CLASSIFICATION, VOCAB, K, "test_dataset_mpi", "", 0, "", NULL, NULL};
  char out[300];
  snprintf(out, sizeof out, "%s/cls.h5", dir);
  lv_dataset_write(out, 3, 0, &m, 1, &sp);
  uint8_t *stream = malloc(BIG);
  uint8_t *emask = malloc(BIG);
  for (int64_t t = 0; t < BIG; t++) {
    stream[t] = (uint8_t)stream_of(t);
    emask[t] = emask_of(t);
  }
  /* "val" carries an eval_mask (cut into the same shard ranges as the tokens), "train" none; "big"
   * has arrays of several 64 Ki blocks per shard */
  lv_split_data lp[3] = {{"val", 0, LM_TOKENS, stream, LV_DTYPE_U8, NULL, NULL, emask},
                         {"train", 0, LM_TOKENS, stream, LV_DTYPE_U8, NULL, NULL, NULL},
                         {"big", 0, BIG, stream, LV_DTYPE_U8, NULL, NULL, emask}};
  lv_dataset_meta lm = {LV_TASK_LM, 256, 0, "test_dataset_mpi", "", 0, "", NULL, NULL};
  snprintf(out, sizeof out, "%s/lm.h5", dir);
  lv_dataset_write(out, 2, 0, &lm, 3, lp);
  free(off); free(lbl); free(tok); free(stream); free(emask);
}

int main(int argc, char **argv) {
  dist_init(&argc, &argv);
  int rank = dist_rank(), size = dist_size();
  char dir[64] = "/tmp/test_dataset_mpi.XXXXXX";
  if (rank == 0 && !mkdtemp(dir)) return 2;
  dist_bcast_from(dir, sizeof dir, 0);
  if (rank == 0) write_sets(dir);
  dist_barrier();

  char spec[300];
  snprintf(spec, sizeof spec, "%s/cls-*-of-00003.h5", dir);
  lv_dataset_opts o = {"train", 0, 1 << 20};
  lv_dataset *ds = lv_dataset_open(spec, &o);
  EXPECT(lv_dataset_num_samples(ds) == N, "n");
  int64_t mine = 0, idx[2 * N];
  for (int64_t i = N - 1; i >= 0; i--)
    if (i % size == rank) idx[mine++] = i;
  for (int64_t k = 0; k < mine / 3; k++) idx[mine + k] = idx[(k * 7) % mine]; /* repeats */
  int64_t n = mine + mine / 3, L = 97;
  int32_t *tok = malloc((size_t)(n * L) * sizeof *tok), *len = malloc((size_t)n * sizeof *len);
  int32_t *lbl = malloc((size_t)n * sizeof *lbl);
  uint8_t *mask = malloc((size_t)(n * L));
  lv_dataset_read(ds, n, idx, tok, mask, len, lbl, L, 0);
  int bad = 0;
  for (int64_t k = 0; k < n; k++) {
    int64_t i = idx[k];
    if (len[k] != len_of(i) || lbl[k] != lbl_of(i)) bad++;
    for (int64_t t = 0; t < L; t++)
      if (tok[k * L + t] != (t < len_of(i) ? tok_of(i, t) : 0) || mask[k * L + t] != (t < len_of(i))) bad++;
  }
  EXPECT(bad == 0, "rank %d: %d mismatches over %lld samples", rank, bad, (long long)n);
  lv_dataset_close(ds);

  snprintf(spec, sizeof spec, "%s/lm-00000-of-00002.h5,%s/lm-00001-of-00002.h5", dir, dir);
  lv_dataset_opts lo = {"val", SEQ, 0};
  lv_dataset *lm = lv_dataset_open(spec, &lo);
  int64_t nw = lv_dataset_num_samples(lm), W = SEQ + 1, cnt = 0;
  EXPECT(nw == (LM_TOKENS - 1) / SEQ, "windows %lld", (long long)nw);
  int32_t *win = malloc((size_t)(nw * W) * sizeof *win);
  uint8_t *wmask = malloc((size_t)(nw * W));
  for (int64_t i = rank; i < nw; i += size) idx[cnt++] = i;
  EXPECT(lv_dataset_has_eval_mask(lm), "val has an eval_mask");
  lv_dataset_read(lm, cnt, idx, win, wmask, NULL, NULL, W, 0);
  bad = 0;
  int64_t ones = 0;
  for (int64_t k = 0; k < cnt; k++)
    for (int64_t t = 0; t < W; t++) { /* windows cross the shard boundary: both streams stitched */
      bad += win[k * W + t] != stream_of(idx[k] * SEQ + t);
      bad += wmask[k * W + t] != emask_of(idx[k] * SEQ + t);
      ones += wmask[k * W + t];
    }
  EXPECT(bad == 0, "rank %d: %d LM token or eval_mask mismatches", rank, bad);
  EXPECT(ones > 0 && ones < cnt * W, "eval_mask has both values (%lld ones)", (long long)ones);
  lv_dataset_close(lm);
  lo.split = "train"; /* no eval_mask: the mask output is all ones */
  lm = lv_dataset_open(spec, &lo);
  EXPECT(!lv_dataset_has_eval_mask(lm), "train has no eval_mask");
  lv_dataset_read(lm, cnt, idx, win, wmask, NULL, NULL, W, 0);
  bad = 0;
  for (int64_t k = 0; k < cnt * W; k++) bad += wmask[k] != 1;
  EXPECT(bad == 0, "rank %d: %d mask entries not 1 without an eval_mask", rank, bad);
  lv_dataset_close(lm);
  /* Collective digest checks: a mismatch would end the job with exit 2. */
  lo.split = "big";
  lm = lv_dataset_open(spec, &lo);
  lv_dataset_verify_all(lm, "big", 1);
  lv_dataset_close(lm);
  snprintf(spec, sizeof spec, "%s/cls-*-of-00003.h5", dir);
  ds = lv_dataset_open(spec, &o);
  lv_dataset_verify_all(ds, "cls", 1);
  lv_dataset_close(ds);

  printf("[rank %d of %d] ", rank, size);
  int failed = tu_finish("test_dataset_mpi");
  int any = dist_any(failed);
  dist_barrier();
  if (rank == 0) {
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
  }
  free(tok); free(len); free(lbl); free(mask); free(win); free(wmask);
  dist_finalize();
  return any ? 1 : 0;
}
