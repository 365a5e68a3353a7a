/* ListOps generator: every label equals an independent evaluation of its expression (a
 * recursive-descent parser written here, MED as int(numpy.median)); lengths, depth and argument
 * counts obey the options; no duplicates; same seed -> same set at 1 and 2 threads; other seed ->
 * other set; and candidate k is the documented tree of Philox stream (seed, "listops", k, 0),
 * rebuilt here by a naive recursive generator without early abandonment. */
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "io/data_convert.h"
#include "tests/test_util.h"
#include "trainer/base/rng.h"

typedef struct {
  const uint8_t *t;
  int64_t n, pos;
  int max_depth, max_args, deepest, bad;
} parser;

static int cmp_int(const void *a, const void *b) { return *(const int *)a - *(const int *)b; }

static int eval(parser *p, int depth) {
  if (p->pos >= p->n) {
    p->bad = 1;
    return -1;
  }
  int tok = p->t[p->pos++];
  if (depth > p->deepest) p->deepest = depth;
  if (tok >= 1 && tok <= 10) return tok - 1;
  if (tok < 11 || tok > 14) {
    p->bad = 1;
    return -1;
  }
  int v[1024], n = 0;
  while (p->pos < p->n && p->t[p->pos] != 15 && !p->bad && n < 1024) v[n++] = eval(p, depth + 1);
  if (p->pos >= p->n || n < 2 || n > p->max_args) {
    p->bad = 1;
    return -1;
  }
  p->pos++; /* "]" */
  qsort(v, (size_t)n, sizeof *v, cmp_int);
  int sum = 0;
  for (int i = 0; i < n; i++) sum += v[i];
  switch (tok) {
    case 11: return v[0];
    case 12: return v[n - 1];
    case 14: return sum % 10;
    default: return n % 2 ? v[n / 2] : (int)((v[n / 2 - 1] + v[n / 2]) / 2.0); /* int(np.median) */
  }
}

/* The definition, recursively, with rng_u32 word by word; stops writing past cap. */
static void naive(const rng_stream *s, uint64_t *w, int depth, const lv_listops_opts *o, uint8_t *buf, int64_t cap,
                  int64_t *len) {
  if (*len > cap) return; /* hopeless: the real generator abandoned it long ago */
  double r = depth < o->max_depth ? rng_u32(s, (*w)++) * 0x1p-32 : 1.0;
  if (r > 0.25) {
    uint32_t d = (uint32_t)(((uint64_t)rng_u32(s, (*w)++) * 10) >> 32);
    if (*len < cap) buf[*len] = (uint8_t)(1 + d);
    (*len)++;
    return;
  }
  int nargs = 2 + (int)(((uint64_t)rng_u32(s, (*w)++) * (uint64_t)(o->max_args - 1)) >> 32);
  int op = 11 + (int)(((uint64_t)rng_u32(s, (*w)++) * 4) >> 32);
  if (*len < cap) buf[*len] = (uint8_t)op;
  (*len)++;
  for (int a = 0; a < nargs; a++) naive(s, w, depth + 1, o, buf, cap, len);
  if (*len < cap) buf[*len] = 15;
  (*len)++;
}

static void check_set(const lv_listops_opts *o, const lv_listops_set *s) {
  EXPECT(s->n == o->n_samples, "n %lld", (long long)s->n);
  int bad_len = 0, bad_val = 0, bad_parse = 0;
  int64_t counts[10] = {0};
  for (int64_t i = 0; i < s->n; i++) {
    int64_t len = s->offsets[i + 1] - s->offsets[i];
    if (!(len > o->min_len && len < o->max_len)) bad_len++;
    parser p = {s->tokens + s->offsets[i], len, 0, o->max_depth, o->max_args, 0, 0};
    int v = eval(&p, 1);
    if (p.bad || p.pos != len || p.deepest > o->max_depth) bad_parse++;
    if (v != s->labels[i]) bad_val++;
    if (s->labels[i] >= 0 && s->labels[i] < 10) counts[s->labels[i]]++;
  }
  EXPECT(bad_len == 0, "%d lengths outside (%lld, %lld)", bad_len, (long long)o->min_len, (long long)o->max_len);
  EXPECT(bad_parse == 0, "%d malformed expressions (or deeper than %d)", bad_parse, o->max_depth);
  EXPECT(bad_val == 0, "%d labels differ from the independent evaluation", bad_val);
  int64_t total = 0;
  for (int c = 0; c < 10; c++) total += counts[c];
  EXPECT(total == s->n, "labels outside 0..9");
}

static const lv_listops_set *g_set;
static int cmp_sample(const void *a, const void *b) {
  int64_t i = *(const int64_t *)a, j = *(const int64_t *)b;
  int64_t li = g_set->offsets[i + 1] - g_set->offsets[i], lj = g_set->offsets[j + 1] - g_set->offsets[j];
  if (li != lj) return li < lj ? -1 : 1;
  return memcmp(g_set->tokens + g_set->offsets[i], g_set->tokens + g_set->offsets[j], (size_t)li);
}

static void check_unique(const lv_listops_set *s) {
  int64_t *ord = malloc((size_t)s->n * sizeof *ord);
  for (int64_t i = 0; i < s->n; i++) ord[i] = i;
  g_set = s;
  qsort(ord, (size_t)s->n, sizeof *ord, cmp_sample);
  int dup = 0;
  for (int64_t i = 1; i < s->n; i++) dup += cmp_sample(&ord[i - 1], &ord[i]) == 0;
  EXPECT(dup == 0, "%d duplicate expressions", dup);
  free(ord);
}

static int same_set(const lv_listops_set *a, const lv_listops_set *b) {
  return a->n == b->n && a->n_tokens == b->n_tokens && a->candidates == b->candidates &&
         !memcmp(a->offsets, b->offsets, (size_t)(a->n + 1) * sizeof *a->offsets) &&
         !memcmp(a->labels, b->labels, (size_t)a->n * sizeof *a->labels) &&
         !memcmp(a->tokens, b->tokens, (size_t)a->n_tokens);
}

int main(void) {
  /* LRA settings, few samples; and a short-range set where duplicates are likely (digits alone
   * would be 10 distinct trees; lengths 2..8 allow a few thousand). */
  lv_listops_opts lra = {300, 500, 2000, 10, 10, 7}, small = {400, 1, 9, 10, 10, 3};
  lv_listops_set a, b, c, d;
  omp_set_num_threads(1);
  lv_listops_generate(&lra, &a);
  omp_set_num_threads(2);
  lv_listops_generate(&lra, &b);
  EXPECT(same_set(&a, &b), "same seed, 1 vs 2 threads: different sets");
  check_set(&lra, &a);
  check_unique(&a);
  lv_listops_opts other = lra;
  other.seed = 8;
  lv_listops_generate(&other, &c);
  EXPECT(!same_set(&a, &c), "seeds 7 and 8 gave the same set");
  check_set(&other, &c);
  lv_listops_generate(&small, &d);
  check_set(&small, &d);
  check_unique(&d);

  /* Candidate k against the definition, for the first 3000 k (a mix of kept and abandoned trees). */
  uint8_t *fast = malloc(2001), *slow = malloc(1 << 20);
  int mismatch = 0, kept = 0;
  for (uint64_t k = 0; k < 3000; k++) {
    int64_t flen = 0, slen = 0;
    int val = 0;
    int ok = lv_listops_candidate(&lra, k, fast, &flen, &val);
    rng_stream s = rng_make(lra.seed, "listops", (uint32_t)k, 0);
    uint64_t w = 0;
    naive(&s, &w, 1, &lra, slow, 1 << 20, &slen);
    if (ok != (slen < lra.max_len) || (ok && (flen != slen || memcmp(fast, slow, (size_t)flen)))) mismatch++;
    if (ok) {
      parser p = {fast, flen, 0, lra.max_depth, lra.max_args, 0, 0};
      if (eval(&p, 1) != val) mismatch++;
      kept += flen > lra.min_len;
    }
  }
  EXPECT(mismatch == 0, "%d candidates differ from the definition", mismatch);
  EXPECT(kept > 30, "only %d of 3000 candidates in range", kept);

  /* MED of an even count is the mean of the middle two rounded down: [MED 1 4 ] = 2, [MED 9 8 ] = 8. */
  uint8_t e1[] = {13, 2, 5, 15}, e2[] = {13, 10, 9, 15};
  parser p1 = {e1, 4, 0, 10, 10, 0, 0}, p2 = {e2, 4, 0, 10, 10, 0, 0};
  EXPECT(eval(&p1, 1) == 2 && eval(&p2, 1) == 8, "evaluator MED");
  lv_listops_free(&a); lv_listops_free(&b); lv_listops_free(&c); lv_listops_free(&d);
  free(fast); free(slow);
  return tu_finish("test_dataset_listops");
}
