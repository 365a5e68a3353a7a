/* ListOps (Long Range Arena, Tay et al. 2021) re-implemented from its definition:
 *
 *   node(depth): if depth < max_depth draw r ~ U[0,1), else r = 1.
 *                r > 0.25: a leaf, a digit uniform in 0..9 (1 token);
 *                else: an operator uniform in {MIN, MAX, MED, SM} with a uniform number of
 *                arguments in [2, max_args], each a node(depth + 1); tokens "[OP" args... "]".
 *   root = node(1); kept iff min_len < tokens < max_len (LRA: 500 < length < 2000); duplicates
 *   (same token sequence) dropped. MED is int(numpy.median): for an even count, the mean of the
 *   two middle values rounded down (not the lower median). SM is the sum mod 10.
 *
 * Candidate k is drawn from the Philox stream (seed, "listops", k & 0xffffffff, k >> 32), words
 * taken in order: r (only below max_depth), then the digit, or the argument count and the
 * operator. Uniform integers are floor(word * n / 2^32). A tree is abandoned as soon as its
 * tokens so far plus the tokens it must still emit (one per argument not yet complete, one "]" per
 * open operator) reach max_len: it could only be rejected. Candidates are drawn in parallel batches
 * and accepted strictly in order of k, so the output does not depend on the thread count.
 */
#include <stdlib.h>
#include <string.h>

#include "io/data_convert.h"
#include "trainer/base/check.h"
#include "trainer/base/log.h"
#include "trainer/base/rng.h"

const char *const lv_listops_vocab[LV_LISTOPS_VOCAB] = {
    "<pad>", "0", "1", "2", "3", "4", "5", "6", "7", "8", "9", "[MIN", "[MAX", "[MED", "[SM", "]"};

#define MAX_DEPTH_LIMIT 64

typedef struct {
  uint32_t key[2], ctr[4], blk[4];
  uint64_t idx;
} cursor; /* word idx of the stream == rng_u32(&stream, idx), four words per Philox block */

static uint32_t next_word(cursor *c) {
  if ((c->idx & 3) == 0) {
    c->ctr[0] = (uint32_t)(c->idx >> 2);
    philox4x32_10(c->blk, c->ctr, c->key);
  }
  return c->blk[c->idx++ & 3];
}

static uint32_t below(cursor *c, uint32_t n) { return (uint32_t)(((uint64_t)next_word(c) * n) >> 32); }

typedef struct {
  int op, remaining, n, sum, lo, hi;
  int count[10];
} frame;

static int frame_value(const frame *f) {
  switch (f->op) {
    case LV_LISTOPS_MIN: return f->lo;
    case LV_LISTOPS_MAX: return f->hi;
    case LV_LISTOPS_SM: return f->sum % 10;
    default: { /* MED: k-th smallest via the digit histogram */
      int k1 = (f->n - 1) / 2, k2 = f->n / 2, v1 = -1, v2 = -1, seen = 0;
      for (int d = 0; d < 10; d++) {
        if (v1 < 0 && seen + f->count[d] > k1) v1 = d;
        if (v2 < 0 && seen + f->count[d] > k2) v2 = d;
        seen += f->count[d];
      }
      return (v1 + v2) / 2;
    }
  }
}

int lv_listops_candidate(const lv_listops_opts *o, uint64_t k, uint8_t *buf, int64_t *len_out, int *value_out) {
  rng_stream s = rng_make(o->seed, "listops", (uint32_t)k, (uint32_t)(k >> 32));
  cursor c = {{s.key[0], s.key[1]}, {0, s.c1, s.c2, s.c3}, {0}, 0};
  frame st[MAX_DEPTH_LIMIT + 1];
  int sp = 0;
  int64_t len = 0, pending = 0; /* pending: arguments not started yet, over all open operators */
  for (;;) {
    int depth = sp + 1;
    double r = depth < o->max_depth ? next_word(&c) * 0x1p-32 : 1.0;
    if (r > 0.25) {
      int value = (int)below(&c, 10);
      buf[len++] = (uint8_t)(LV_LISTOPS_DIGIT0 + value);
      for (;;) { /* hand the value up, closing every operator that got its last argument */
        if (sp == 0) {
          *len_out = len;
          *value_out = value;
          return 1;
        }
        frame *f = &st[sp - 1];
        f->n++;
        f->sum += value;
        f->count[value]++;
        if (value < f->lo) f->lo = value;
        if (value > f->hi) f->hi = value;
        if (--f->remaining > 0) break;
        if (len >= o->max_len) return 0;
        buf[len++] = LV_LISTOPS_END;
        value = frame_value(f);
        sp--;
      }
      pending--; /* the next argument of st[sp-1] starts now */
    } else {
      frame *f = &st[sp++];
      memset(f, 0, sizeof *f);
      f->remaining = 2 + (int)below(&c, (uint32_t)(o->max_args - 1));
      f->op = LV_LISTOPS_MIN + (int)below(&c, 4);
      f->lo = 9;
      buf[len++] = (uint8_t)f->op;
      pending += f->remaining - 1; /* the first argument starts now */
    }
    /* Another node starts now: it, the pending arguments and the open "]" are still to come. */
    if (len + 1 + pending + sp >= o->max_len) return 0;
  }
}

static uint64_t hash_tokens(const uint8_t *p, int64_t n) {
  uint64_t h = 0x9E3779B97F4A7C15ull ^ (uint64_t)n;
  for (int64_t i = 0; i < n; i++) h = (h ^ p[i]) * 0x100000001B3ull;
  return h ^ (h >> 29);
}

void lv_listops_free(lv_listops_set *s) {
  free(s->tokens);
  free(s->offsets);
  free(s->labels);
  memset(s, 0, sizeof *s);
}

void lv_listops_generate(const lv_listops_opts *o, lv_listops_set *out) {
  if (o->max_depth < 1 || o->max_depth > MAX_DEPTH_LIMIT) DIE_INPUT("listops: --max-depth must be in [1, %d]", MAX_DEPTH_LIMIT);
  if (o->max_args < 2 || o->max_args > 1000) DIE_INPUT("listops: --max-args must be in [2, 1000]");
  if (o->min_len < 0 || o->max_len < o->min_len + 2 || o->max_len > (1 << 24))
    DIE_INPUT("listops: need 0 <= --min-len, --min-len + 2 <= --max-len <= %d", 1 << 24);
  if (o->n_samples < 1) DIE_INPUT("listops: need at least one sample");
  const int64_t batch = 4096, width = o->max_len + 1, want = o->n_samples;
  uint8_t *buf = malloc((size_t)(batch * width));
  int64_t *lens = malloc((size_t)batch * sizeof *lens);
  int *vals = malloc((size_t)batch * sizeof *vals), *ok = malloc((size_t)batch * sizeof *ok);
  int64_t cap = 1;
  while (cap < 2 * want) cap *= 2;
  int64_t *table = calloc((size_t)cap, sizeof *table); /* open addressing: sample id + 1, 0 = empty */
  uint64_t *hashes = malloc((size_t)want * sizeof *hashes);
  lv_u8vec toks = {0};
  memset(out, 0, sizeof *out);
  out->offsets = malloc((size_t)(want + 1) * sizeof *out->offsets);
  out->labels = malloc((size_t)want * sizeof *out->labels);
  CHECK_ALLOC(buf); CHECK_ALLOC(lens); CHECK_ALLOC(vals); CHECK_ALLOC(ok); CHECK_ALLOC(table);
  CHECK_ALLOC(hashes); CHECK_ALLOC(out->offsets); CHECK_ALLOC(out->labels);
  out->offsets[0] = 0;
  /* Impossible settings would never finish: give up after many draws without enough samples. */
  const int64_t give_up = 2000000 + 2000 * want;
  int64_t k0 = 0, n = 0, dup = 0, next_report = 0;
  while (n < want) {
    if (k0 >= give_up)
      DIE_INPUT("listops: only %lld distinct expressions with %lld < length < %lld after %lld draws (max depth %d, "
                "max args %d): widen the length range or ask for fewer samples", (long long)n, (long long)o->min_len,
                (long long)o->max_len, (long long)k0, o->max_depth, o->max_args);
#pragma omp parallel for schedule(dynamic, 16)
    for (int64_t b = 0; b < batch; b++)
      ok[b] = lv_listops_candidate(o, (uint64_t)(k0 + b), buf + b * width, &lens[b], &vals[b]) && lens[b] > o->min_len;
    for (int64_t b = 0; b < batch && n < want; b++) {
      out->candidates = k0 + b + 1;
      if (!ok[b]) continue;
      const uint8_t *t = buf + b * width;
      uint64_t h = hash_tokens(t, lens[b]);
      int64_t slot = (int64_t)(h & (uint64_t)(cap - 1)), found = 0;
      for (; table[slot]; slot = (slot + 1) & (cap - 1)) {
        int64_t id = table[slot] - 1, l = out->offsets[id + 1] - out->offsets[id];
        if (hashes[id] == h && l == lens[b] && !memcmp(toks.p + out->offsets[id], t, (size_t)l)) {
          found = 1;
          break;
        }
      }
      if (found) {
        dup++;
        continue;
      }
      table[slot] = n + 1;
      hashes[n] = h;
      lv_u8_push(&toks, t, lens[b]);
      out->labels[n] = vals[b];
      out->offsets[++n] = toks.n;
    }
    k0 += batch;
    if (n >= next_report) {
      log_progress("listops: %lld / %lld expressions (%lld trees drawn, %lld duplicates)", (long long)n,
                   (long long)want, (long long)k0, (long long)dup);
      next_report = n + want / 20 + 1;
    }
  }
  log_progress_done();
  out->tokens = toks.p;
  out->n = n;
  out->n_tokens = toks.n;
  free(buf); free(lens); free(vals); free(ok); free(table); free(hashes);
}

int lv_data_listops(int argc, char **argv) {
  lv_data_common c = {.shards = 1};
  int64_t n[3] = {96000, 2000, 2000}, min_len = 500, max_len = 2000, depth = 10, args = 10;
  const lv_opt opts[] = {
      LV_DATA_COMMON_OPTS(c),
      {"--train", LV_OPT_I64, &n[0], "training expressions (default 96000)", 1},
      {"--val", LV_OPT_I64, &n[1], "validation expressions (default 2000)", 1},
      {"--test", LV_OPT_I64, &n[2], "test expressions (default 2000)", 1},
      {"--min-len", LV_OPT_I64, &min_len, "keep only length > N tokens (default 500)", 1},
      {"--max-len", LV_OPT_I64, &max_len, "keep only length < N tokens (default 2000)", 1},
      {"--max-depth", LV_OPT_I64, &depth, "maximum tree depth, root = 1 (default 10)", 1},
      {"--max-args", LV_OPT_I64, &args, "maximum arguments per operator (default 10)", 1},
      {NULL, 0, NULL, NULL, 0},
  };
  char prov[1024];
  if (lv_opts_parse("listops", "--out FILE.h5 [options]", argc, argv, opts, NULL, NULL, prov, sizeof prov)) return 0;
  lv_data_check_common("listops", &c);
  for (int s = 0; s < 3; s++)
    if (n[s] < 0) DIE_INPUT("data listops: split sizes must be >= 0");
  if (n[0] < 1) DIE_INPUT("data listops: --train must be >= 1");
  if (depth < 1 || depth > MAX_DEPTH_LIMIT || args < 2 || args > 1000)
    DIE_INPUT("data listops: --max-depth in [1, %d] and --max-args in [2, 1000]", MAX_DEPTH_LIMIT);
  lv_listops_opts o = {n[0] + n[1] + n[2], min_len, max_len, (int)depth, (int)args, c.seed};
  lv_listops_set set;
  lv_listops_generate(&o, &set);
  log_info("listops: %lld expressions from %lld trees drawn", (long long)set.n, (long long)set.candidates);

  /* Accepted expressions in order: the first --train go to train, then val, then test. */
  static const char *names[3] = {"train", "val", "test"};
  lv_split_data sp[3];
  int64_t *offs[3] = {NULL, NULL, NULL}, first = 0;
  int n_splits = 0;
  for (int s = 0; s < 3; s++) {
    if (n[s] == 0) continue;
    int64_t t0 = set.offsets[first];
    offs[s] = malloc((size_t)(n[s] + 1) * sizeof *offs[s]);
    CHECK_ALLOC(offs[s]);
    for (int64_t i = 0; i <= n[s]; i++) offs[s][i] = set.offsets[first + i] - t0;
    sp[n_splits++] = (lv_split_data){names[s], n[s], offs[s][n[s]], set.tokens + t0, LV_DTYPE_U8, offs[s],
                                     set.labels + first, NULL};
    first += n[s];
  }
  static const char *const classes[10] = {"0", "1", "2", "3", "4", "5", "6", "7", "8", "9"};
  lv_dataset_meta m = {LV_TASK_CLASSIFICATION, LV_LISTOPS_VOCAB, 10, "longvq data listops", prov, c.seed, "",
                       lv_listops_vocab, classes};
  lv_dataset_write(c.out, (int)c.shards, c.force, &m, n_splits, sp);
  for (int s = 0; s < 3; s++) free(offs[s]);
  lv_listops_free(&set);
  return 0;
}
