/* Long-range associative recall, generated (docs/dataset-format.md "recall", docs/long-range.md).
 *
 * A sample is L tokens, all of one length, in chunks of C: P key-value pairs (a key token followed
 * by its value token) at random 2-token slots of the "pair region" (the first R chunks), the query
 * key repeated over the last Q positions, filler tokens everywhere else. The P keys are distinct,
 * the values independent and uniform (so a key means a different value in every sample); the
 * query is one of the P keys, uniform; the label is the value paired with it (class = value index).
 * Every pair token lies at least M chunks before the chunk of the first query position, so the
 * answer is never in the near (same / previous chunk) window of any query position.
 * Curriculum (--train-near-fraction X, default 0): a training sample is "near" with probability X:
 * its pair region is then the query's own chunk (the positions before the first query position)
 * instead of the first R chunks, so the lookup can be learned with exact attention, whose keys get
 * gradients; validation and test samples are always far.
 *
 * Token ids: 0 = <pad> (never stored), 1..F fillers, F+1..F+K keys, F+K+1..F+K+V values.
 *
 * Sample i of split s (0 train, 1 val, 2 test) is drawn from the Philox stream
 * (seed, "recall", i, s), 32-bit words taken in order; a uniform integer in [0, n) is
 * floor(word * n / 2^32):
 *   0. the near coin u = word * 2^-32 (always drawn); near iff s is train and u < X
 *   1. P slots out of n = R*C/2 (far) or n = floor((L - Q - cq*C) / 2) (near; cq = chunk of the
 *      first query position, slot positions counted from cq*C): partial Fisher-Yates over slots
 *      0..n-1, for j = 0..P-1: r = j + below(n - j), swap(slot[j], slot[r]); pair j goes to slot[j]
 *      (tokens base + 2*slot, base + 2*slot + 1 with base = 0 far, cq*C near)
 *   2. P keys out of K: the same partial Fisher-Yates over keys 0..K-1; pair j has key[j]
 *   3. P values: value[j] = below(V)
 *   4. the query pair: below(P)
 *   5. fillers (only if F > 1): one below(F) per filler position, in position order.
 * So a split does not depend on the sizes of the other splits, and the output not on the machine. */
#include <stdlib.h>
#include <string.h>

#include "io/data_convert.h"
#include "trainer/base/check.h"
#include "trainer/base/log.h"
#include "trainer/base/rng.h"

typedef struct {
  int64_t L, C, P, K, V, F, M, Q, R;
  double near;      /* --train-near-fraction */
  uint64_t seed;
} recall_opts;

typedef struct {
  uint32_t key[2], ctr[4], blk[4];
  uint64_t idx;
} cursor; /* word idx of the stream == rng_u32(&stream, idx), four words per Philox block */

static cursor cursor_make(uint64_t seed, uint32_t a, uint32_t b) {
  rng_stream s = rng_make(seed, "recall", a, b);
  cursor c = {{s.key[0], s.key[1]}, {0, s.c1, s.c2, s.c3}, {0, 0, 0, 0}, 0};
  return c;
}

static uint32_t next_word(cursor *c) {
  if ((c->idx & 3) == 0) {
    c->ctr[0] = (uint32_t)(c->idx >> 2);
    philox4x32_10(c->blk, c->ctr, c->key);
  }
  return c->blk[c->idx++ & 3];
}

static int64_t below(cursor *c, int64_t n) { return (int64_t)(((uint64_t)next_word(c) * (uint64_t)n) >> 32); }

/* First P entries of a partial Fisher-Yates shuffle of 0..n-1 into out[0..P); perm is scratch (n). */
static void draw_distinct(cursor *c, int64_t n, int64_t P, int64_t *perm, int64_t *out) {
  for (int64_t j = 0; j < n; j++) perm[j] = j;
  for (int64_t j = 0; j < P; j++) {
    int64_t r = j + below(c, n - j), t = perm[j];
    perm[j] = perm[r];
    perm[r] = t;
    out[j] = perm[j];
  }
}

/* Sample i of split s into tok[0..L) (token ids), returns its label. scratch: >= max(R*C/2, K) + 3P. */
static int32_t gen_sample(const recall_opts *o, int split, int64_t i, int32_t *tok, int64_t *scratch) {
  cursor c = cursor_make(o->seed, (uint32_t)i, (uint32_t)split);
  const int near = next_word(&c) * 0x1p-32 < o->near && split == 0;
  const int64_t cq = (o->L - o->Q) / o->C, base = near ? cq * o->C : 0;
  const int64_t n_slots = near ? (o->L - o->Q - base) / 2 : o->R * o->C / 2, P = o->P;
  int64_t *slot = scratch, *key = slot + P, *val = key + P, *perm = val + P;
  draw_distinct(&c, n_slots, P, perm, slot);
  draw_distinct(&c, o->K, P, perm, key);
  for (int64_t j = 0; j < P; j++) val[j] = below(&c, o->V);
  const int64_t q = below(&c, P);
  const int32_t key0 = (int32_t)(1 + o->F), val0 = (int32_t)(1 + o->F + o->K);
  for (int64_t t = 0; t < o->L; t++) tok[t] = 0;
  for (int64_t j = 0; j < P; j++) {
    tok[base + 2 * slot[j]] = key0 + (int32_t)key[j];
    tok[base + 2 * slot[j] + 1] = val0 + (int32_t)val[j];
  }
  for (int64_t t = o->L - o->Q; t < o->L; t++) tok[t] = key0 + (int32_t)key[q];
  for (int64_t t = 0; t < o->L; t++)
    if (tok[t] == 0) tok[t] = 1 + (o->F > 1 ? (int32_t)below(&c, o->F) : 0);
  return (int32_t)val[q];
}

/* "<pad>", "_0".."_{F-1}" (fillers), "k0".., "v0".. */
static char **make_names(const recall_opts *o, int64_t V_total) {
  char **names = malloc((size_t)V_total * sizeof *names);
  CHECK_ALLOC(names);
  for (int64_t t = 0; t < V_total; t++) {
    char buf[32];
    if (t == 0) snprintf(buf, sizeof buf, "<pad>");
    else if (t <= o->F) snprintf(buf, sizeof buf, "_%lld", (long long)(t - 1));
    else if (t <= o->F + o->K) snprintf(buf, sizeof buf, "k%lld", (long long)(t - 1 - o->F));
    else snprintf(buf, sizeof buf, "v%lld", (long long)(t - 1 - o->F - o->K));
    names[t] = strdup(buf);
    CHECK_ALLOC(names[t]);
  }
  return names;
}

int lv_data_recall(int argc, char **argv) {
  lv_data_common c = {.shards = 1};
  int64_t n[3] = {50000, 1000, 1000};
  recall_opts o = {.L = 256, .C = 16, .P = 8, .K = 16, .V = 16, .F = 1, .M = 8, .Q = 0, .R = 0, .near = 0};
  const lv_opt opts[] = {
      LV_DATA_COMMON_OPTS(c),
      {"--train", LV_OPT_I64, &n[0], "training samples (default 50000)", 1},
      {"--val", LV_OPT_I64, &n[1], "validation samples (default 1000)", 1},
      {"--test", LV_OPT_I64, &n[2], "test samples (default 1000)", 1},
      {"--seq-len", LV_OPT_I64, &o.L, "L, tokens per sample, a multiple of --chunk (default 256)", 1},
      {"--chunk", LV_OPT_I64, &o.C, "C, the model's chunk size, even (default 16)", 1},
      {"--pairs", LV_OPT_I64, &o.P, "P, key-value pairs per sample (default 8)", 1},
      {"--keys", LV_OPT_I64, &o.K, "K, key vocabulary; the P keys of a sample are distinct (default 16)", 1},
      {"--values", LV_OPT_I64, &o.V, "V, value vocabulary = the classes (default 16)", 1},
      {"--fillers", LV_OPT_I64, &o.F, "F, filler vocabulary, drawn uniformly (default 1)", 1},
      {"--min-distance-chunks", LV_OPT_I64, &o.M, "M: pairs lie >= M chunks before the first query chunk (default 8)", 1},
      {"--query-len", LV_OPT_I64, &o.Q, "Q, copies of the query key at the end (default 0 = --chunk)", 1},
      {"--pair-chunks", LV_OPT_I64, &o.R, "R: pairs lie in the first R chunks (default 0 = all the distance allows)", 1},
      {"--train-near-fraction", LV_OPT_F64, &o.near, "X: a train sample has its pairs in the query's chunk with probability X (default 0)", 1},
      {NULL, 0, NULL, NULL, 0},
  };
  char prov[1024];
  if (lv_opts_parse("recall", "--out FILE.h5 [options]", argc, argv, opts, NULL, NULL, prov, sizeof prov)) return 0;
  lv_data_check_common("recall", &c);
  lv_data_check_generated("recall", n, o.L, o.C);
  if (o.Q == 0) o.Q = o.C;
  if (o.Q < 1 || o.Q >= o.L) DIE_INPUT("data recall: --query-len %lld: must be in [1, seq-len)", (long long)o.Q);
  if (o.M < 1) DIE_INPUT("data recall: --min-distance-chunks must be >= 1");
  if (o.K < 1 || o.V < 2 || o.F < 1) DIE_INPUT("data recall: need --keys >= 1, --values >= 2, --fillers >= 1");
  if (o.P < 1 || o.P > o.K) DIE_INPUT("data recall: --pairs %lld: must be in [1, --keys %lld] (keys are distinct)", (long long)o.P, (long long)o.K);
  const int64_t V_total = 1 + o.F + o.K + o.V;
  if (V_total > 65536) DIE_INPUT("data recall: vocabulary 1 + F + K + V = %lld exceeds 65536", (long long)V_total);
  /* The first query position is in chunk cq; pairs must end in chunk cq - M or before. */
  const int64_t cq = (o.L - o.Q) / o.C, r_max = cq - o.M + 1;
  if (r_max < 1)
    DIE_INPUT("data recall: no room for pairs: the query starts in chunk %lld of %lld, so --min-distance-chunks %lld "
              "leaves no chunk before it (lengthen --seq-len or lower --min-distance-chunks / --query-len)",
              (long long)cq, (long long)(o.L / o.C), (long long)o.M);
  if (o.R == 0) o.R = r_max;
  if (o.R < 1 || o.R > r_max)
    DIE_INPUT("data recall: --pair-chunks %lld: must be in [1, %lld] (chunk of the query %lld minus --min-distance-chunks %lld, plus 1)",
              (long long)o.R, (long long)r_max, (long long)cq, (long long)o.M);
  if (o.P > o.R * o.C / 2)
    DIE_INPUT("data recall: --pairs %lld do not fit in %lld pair slots (--pair-chunks %lld x --chunk %lld / 2)",
              (long long)o.P, (long long)(o.R * o.C / 2), (long long)o.R, (long long)o.C);
  const int64_t near_slots = (o.L - o.Q - cq * o.C) / 2;
  if (!(o.near >= 0 && o.near <= 1)) DIE_INPUT("data recall: --train-near-fraction must be in [0, 1]");
  if (o.near > 0 && o.P > near_slots)
    DIE_INPUT("data recall: --train-near-fraction: --pairs %lld do not fit in the %lld pair slots of the query's chunk "
              "before the query (lower --pairs or --query-len)", (long long)o.P, (long long)near_slots);
  /* The provenance was built before the defaults that depend on other options were resolved. */
  snprintf(prov, sizeof prov,
           "--seed %llu --train %lld --val %lld --test %lld --seq-len %lld --chunk %lld --pairs %lld --keys %lld "
           "--values %lld --fillers %lld --min-distance-chunks %lld --query-len %lld --pair-chunks %lld "
           "--train-near-fraction %.17g",
           (unsigned long long)c.seed, (long long)n[0], (long long)n[1], (long long)n[2], (long long)o.L,
           (long long)o.C, (long long)o.P, (long long)o.K, (long long)o.V, (long long)o.F, (long long)o.M,
           (long long)o.Q, (long long)o.R, o.near);
  o.seed = c.seed;

  const lv_dtype dt = V_total <= 256 ? LV_DTYPE_U8 : LV_DTYPE_U16;
  const size_t tsz = dt == LV_DTYPE_U8 ? 1 : 2;
  int64_t scratch_n = (o.R * o.C / 2 > o.K ? o.R * o.C / 2 : o.K) + 3 * o.P;
  int64_t *scratch = malloc((size_t)scratch_n * sizeof *scratch);
  int32_t *row = malloc((size_t)o.L * sizeof *row);
  CHECK_ALLOC(scratch);
  CHECK_ALLOC(row);
  static const char *split_names[3] = {"train", "val", "test"};
  lv_split_data sp[3];
  void *toks[3] = {NULL, NULL, NULL};
  int64_t *offs[3] = {NULL, NULL, NULL};
  int32_t *lbls[3] = {NULL, NULL, NULL};
  int ns = 0;
  for (int s = 0; s < 3; s++) {
    if (n[s] == 0) continue;
    toks[s] = malloc((size_t)(n[s] * o.L) * tsz);
    offs[s] = malloc((size_t)(n[s] + 1) * sizeof *offs[s]);
    lbls[s] = malloc((size_t)n[s] * sizeof *lbls[s]);
    CHECK_ALLOC(toks[s]);
    CHECK_ALLOC(offs[s]);
    CHECK_ALLOC(lbls[s]);
    for (int64_t i = 0; i < n[s]; i++) {
      lbls[s][i] = gen_sample(&o, s, i, row, scratch);
      for (int64_t t = 0; t < o.L; t++) {
        if (dt == LV_DTYPE_U8) ((uint8_t *)toks[s])[i * o.L + t] = (uint8_t)row[t];
        else ((uint16_t *)toks[s])[i * o.L + t] = (uint16_t)row[t];
      }
      offs[s][i] = i * o.L;
    }
    offs[s][n[s]] = n[s] * o.L;
    sp[ns++] = (lv_split_data){split_names[s], n[s], n[s] * o.L, toks[s], dt, offs[s], lbls[s], NULL};
  }
  char **names = make_names(&o, V_total);
  char **classes = malloc((size_t)o.V * sizeof *classes);
  CHECK_ALLOC(classes);
  for (int64_t v = 0; v < o.V; v++) classes[v] = names[1 + o.F + o.K + v];
  lv_dataset_meta m = {LV_TASK_CLASSIFICATION, V_total, o.V, "longvq data recall", prov, c.seed, "",
                       (const char *const *)names, (const char *const *)classes};
  lv_dataset_write(c.out, (int)c.shards, c.force, &m, ns, sp);
  log_info("recall: %lld / %lld / %lld samples of %lld tokens; %lld pairs in chunks 0..%lld, query in chunks %lld..%lld",
           (long long)n[0], (long long)n[1], (long long)n[2], (long long)o.L, (long long)o.P, (long long)(o.R - 1),
           (long long)cq, (long long)(o.L / o.C - 1));
  for (int s = 0; s < 3; s++) {
    free(toks[s]);
    free(offs[s]);
    free(lbls[s]);
  }
  for (int64_t t = 0; t < V_total; t++) free(names[t]);
  free(names);
  free(classes);
  free(scratch);
  free(row);
  return 0;
}
