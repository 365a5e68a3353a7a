/* Multi-query associative recall as language modelling (docs/dataset-format.md "mqar",
 * docs/long-range.md): the long-range check of the far (codebook) attention in decoder mode.
 *
 * A split is a stream of blocks of L tokens (then one <end> token), so that LM window i (tokens
 * [iL, iL+L]) is block i. A block is L/2 pairs "key value": every block draws its own binding
 * f: key -> value, and key k is always followed by f(k) inside the block. At each pair the key is
 *   near  (a key whose previous occurrence is in the same or the previous chunk: the decoder's near
 *          window, so exact attention sees it),
 *   far   (a key whose previous occurrence is >= M chunks back: only the codebook sees it), or
 *   fresh (a key not yet used in this block: its value cannot be known),
 * chosen with weights (near, far, fresh) among the categories that have a key; keys whose previous
 * occurrence is 2..M-1 chunks back are never chosen, so every recall is clearly near or clearly far.
 * Training counts every target (the spec's LM loss); val and test carry an eval_mask marking the
 * value tokens of FAR recalls, so their loss and accuracy measure recall across >= M chunks only;
 * test_near marks the NEAR recalls (a control that both ablation arms should solve).
 *
 * Token ids: 0 = <end> (closes the stream), 1..K keys, K+1..K+V values.
 *
 * Block b of split s (0 train, 1 val, 2 test, 3 test_near) comes from the Philox stream
 * (seed, "mqar", b, s), 32-bit words w = rng_u32(stream, j) taken in order j = 0, 1, ...; a uniform
 * integer in [0, n) is floor(w * n / 2^32):
 *   1. the binding: f(k) = below(V) for k = 0..K-1
 *   2. for each pair j = 0..L/2-1 (key at position p = 2j): the eligible keys of each category in
 *      increasing key order; u = w * 2^-32 * (sum of the weights of the non-empty categories) picks
 *      the category (near, far, fresh in that order, the first whose running sum exceeds u); then
 *      below(n_category) picks the key.
 * The first pair can only be fresh, and after it the near category always has a key (the previous
 * pair's key), so with positive near and fresh weights every draw succeeds. A split does not depend on the sizes of the others. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "io/data_convert.h"
#include "trainer/base/check.h"
#include "trainer/base/log.h"
#include "trainer/base/rng.h"

enum { CAT_NEAR = 0, CAT_FAR = 1, CAT_FRESH = 2 };

typedef struct {
  int64_t L, C, K, V, M;
  double w[3];      /* near, far, fresh weights */
  uint64_t seed;
} mqar_opts;

typedef struct {
  int64_t n[3];     /* value targets per category */
  double bits_key;  /* oracle bits of the key targets (the generator's own probabilities) */
} mqar_stats;

/* Category of a key last seen at position `last` (-1: never) for a pair in chunk cp; -1 = not
 * eligible (2..M-1 chunks back). */
static int category(const mqar_opts *o, int64_t last, int64_t cp) {
  if (last < 0) return CAT_FRESH;
  const int64_t back = cp - last / o->C;
  return back <= 1 ? CAT_NEAR : back >= o->M ? CAT_FAR : -1;
}

/* Block b of split s into tok[0..L); cat[j] = category of pair j. scratch: 4K int64. */
static void gen_block(const mqar_opts *o, int split, int64_t b, int32_t *tok, uint8_t *cat, int64_t *scratch,
                      mqar_stats *st) {
  rng_stream rs = rng_make(o->seed, "mqar", (uint32_t)b, (uint32_t)split);
  uint64_t w = 0;
  int64_t *f = scratch, *last = f + o->K, *kc = last + o->K, *set = kc + o->K;
  for (int64_t k = 0; k < o->K; k++) {
    f[k] = (int64_t)(((uint64_t)rng_u32(&rs, w++) * (uint64_t)o->V) >> 32);
    last[k] = -1;
  }
  for (int64_t j = 0; j < o->L / 2; j++) {
    const int64_t p = 2 * j, cp = p / o->C;
    int64_t cnt[3] = {0, 0, 0};
    for (int64_t k = 0; k < o->K; k++) {
      kc[k] = category(o, last[k], cp);
      if (kc[k] >= 0) cnt[kc[k]]++;
    }
    double total = 0;
    for (int c = 0; c < 3; c++) total += cnt[c] ? o->w[c] : 0;
    if (!(total > 0))
      DIE("data mqar: block %lld pair %lld: no eligible key has a positive weight", (long long)b, (long long)j);
    /* u < total strictly (a factor <= 1 - 2^-32 in double), and the running sum reaches total exactly
     * at the last category with a positive weight: one is always picked */
    double u = rng_u32(&rs, w++) * 0x1p-32 * total, run = 0;
    int c = -1;
    for (int q = 0; q < 3 && c < 0; q++) {
      run += cnt[q] ? o->w[q] : 0;
      if (cnt[q] && u < run) c = q;
    }
    int64_t m = 0;
    for (int64_t k = 0; k < o->K; k++)
      if (kc[k] == c) set[m++] = k;
    const int64_t k = set[((uint64_t)rng_u32(&rs, w++) * (uint64_t)m) >> 32];
    tok[p] = (int32_t)(1 + k);
    tok[p + 1] = (int32_t)(1 + o->K + f[k]);
    cat[j] = (uint8_t)c;
    last[k] = p;
    st->n[c]++;
    st->bits_key += -log2(o->w[c] / total / (double)m);
  }
}

/* "<end>", "k0".., "v0".. */
static char **make_names(const mqar_opts *o, int64_t V_total) {
  char **names = malloc((size_t)V_total * sizeof *names);
  CHECK_ALLOC(names);
  for (int64_t t = 0; t < V_total; t++) {
    char buf[32];
    if (t == 0) snprintf(buf, sizeof buf, "<end>");
    else if (t <= o->K) snprintf(buf, sizeof buf, "k%lld", (long long)(t - 1));
    else snprintf(buf, sizeof buf, "v%lld", (long long)(t - 1 - o->K));
    names[t] = strdup(buf);
    CHECK_ALLOC(names[t]);
  }
  return names;
}

int lv_data_mqar(int argc, char **argv) {
  lv_data_common c = {.shards = 1};
  int64_t n[3] = {4000, 100, 100};
  mqar_opts o = {.L = 256, .C = 8, .K = 32, .V = 32, .M = 8, .w = {0.4, 0.4, 0.2}};
  const lv_opt opts[] = {
      LV_DATA_COMMON_OPTS(c),
      {"--train", LV_OPT_I64, &n[0], "training blocks (LM windows) (default 4000)", 1},
      {"--val", LV_OPT_I64, &n[1], "validation blocks (default 100)", 1},
      {"--test", LV_OPT_I64, &n[2], "test blocks, also the size of test_near (default 100)", 1},
      {"--seq-len", LV_OPT_I64, &o.L, "L, tokens per block = the model's data.seq_len, a multiple of --chunk (default 256)", 1},
      {"--chunk", LV_OPT_I64, &o.C, "C, the model's chunk size, even (default 8)", 1},
      {"--keys", LV_OPT_I64, &o.K, "K, key vocabulary (default 32)", 1},
      {"--values", LV_OPT_I64, &o.V, "V, value vocabulary (default 32)", 1},
      {"--far-chunks", LV_OPT_I64, &o.M, "M: a far recall's previous occurrence is >= M chunks back (default 8)", 1},
      {"--near-weight", LV_OPT_F64, &o.w[0], "weight of near recalls (default 0.4; must be > 0)", 1},
      {"--far-weight", LV_OPT_F64, &o.w[1], "weight of far recalls (default 0.4)", 1},
      {"--fresh-weight", LV_OPT_F64, &o.w[2], "weight of first occurrences (default 0.2; must be > 0)", 1},
      {NULL, 0, NULL, NULL, 0},
  };
  char prov[1024];
  if (lv_opts_parse("mqar", "--out FILE.h5 [options]", argc, argv, opts, NULL, NULL, prov, sizeof prov)) return 0;
  lv_data_check_common("mqar", &c);
  lv_data_check_generated("mqar", n, o.L, o.C);
  if (o.M < 2) DIE_INPUT("data mqar: --far-chunks %lld: must be >= 2 (chunks 0 and 1 back are near)", (long long)o.M);
  if (o.M >= o.L / o.C)
    DIE_INPUT("data mqar: --far-chunks %lld: a block has only %lld chunks, so no recall can be that far (lengthen --seq-len)",
              (long long)o.M, (long long)(o.L / o.C));
  if (o.K < 2 || o.V < 2) DIE_INPUT("data mqar: need --keys >= 2 and --values >= 2");
  if (1 + o.K + o.V > 65536) DIE_INPUT("data mqar: vocabulary 1 + K + V = %lld exceeds 65536", (long long)(1 + o.K + o.V));
  if (!(o.w[0] > 0) || !(o.w[1] >= 0) || !(o.w[2] > 0) || !isfinite(o.w[0] + o.w[1] + o.w[2]))
    DIE_INPUT("data mqar: --near-weight and --fresh-weight must be > 0, --far-weight >= 0 (all finite)");
  o.seed = c.seed;

  const int64_t V_total = 1 + o.K + o.V, L = o.L;
  static const char *split_names[4] = {"train", "val", "test", "test_near"};
  const int64_t nb[4] = {n[0], n[1], n[2], n[2]};
  int64_t *scratch = malloc((size_t)(4 * o.K) * sizeof *scratch);
  int32_t *row = malloc((size_t)L * sizeof *row);
  uint8_t *cat = malloc((size_t)(L / 2));
  CHECK_ALLOC(scratch);
  CHECK_ALLOC(row);
  CHECK_ALLOC(cat);
  const lv_dtype dt = V_total <= 256 ? LV_DTYPE_U8 : LV_DTYPE_U16;
  const size_t tsz = dt == LV_DTYPE_U8 ? 1 : 2;
  lv_split_data sp[4];
  void *toks[4] = {NULL, NULL, NULL, NULL};
  uint8_t *masks[4] = {NULL, NULL, NULL, NULL};
  int ns = 0;
  for (int s = 0; s < 4; s++) {
    if (nb[s] == 0) continue;
    const int64_t T = nb[s] * L + 1;
    const int want = s == 0 ? -1 : s == 3 ? CAT_NEAR : CAT_FAR; /* the recalls the eval_mask counts */
    toks[s] = calloc((size_t)T, tsz); /* the last token stays 0 = <end> */
    if (want >= 0) masks[s] = calloc((size_t)T, 1);
    CHECK_ALLOC(toks[s]);
    if (want >= 0) CHECK_ALLOC(masks[s]);
    mqar_stats st = {{0, 0, 0}, 0};
    for (int64_t b = 0; b < nb[s]; b++) {
      gen_block(&o, s, b, row, cat, scratch, &st);
      for (int64_t t = 0; t < L; t++) {
        if (dt == LV_DTYPE_U8) ((uint8_t *)toks[s])[b * L + t] = (uint8_t)row[t];
        else ((uint16_t *)toks[s])[b * L + t] = (uint16_t)row[t];
      }
      for (int64_t j = 0; want >= 0 && j < L / 2; j++) masks[s][b * L + 2 * j + 1] = cat[j] == want;
    }
    /* What a predictor that knows the generator achieves per target (all T - 1 targets; the value of
     * a recall costs 0 bits if recalled, log2 V if not; a fresh value always log2 V). */
    const double pairs = (double)(nb[s] * L / 2), lv = log2((double)o.V);
    const double full = (st.bits_key + (double)st.n[CAT_FRESH] * lv) / (2 * pairs);
    const double no_far = full + (double)st.n[CAT_FAR] * lv / (2 * pairs);
    log_info("mqar %s: %lld blocks, recalls near %.1f%% far %.1f%% fresh %.1f%%; oracle bits/token %.3f "
             "(%.3f without the far recalls)", split_names[s], (long long)nb[s], 100.0 * (double)st.n[0] / pairs,
             100.0 * (double)st.n[1] / pairs, 100.0 * (double)st.n[2] / pairs, full, no_far);
    sp[ns++] = (lv_split_data){split_names[s], 0, T, toks[s], dt, NULL, NULL, masks[s]};
  }
  char **names = make_names(&o, V_total);
  lv_dataset_meta m = {LV_TASK_LM, V_total, 0, "longvq data mqar", prov, c.seed, "", (const char *const *)names, NULL};
  lv_dataset_write(c.out, (int)c.shards, c.force, &m, ns, sp);
  for (int s = 0; s < 4; s++) {
    free(toks[s]);
    free(masks[s]);
  }
  for (int64_t t = 0; t < V_total; t++) free(names[t]);
  free(names);
  free(scratch);
  free(row);
  free(cat);
  return 0;
}
