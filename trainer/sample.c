/* Sampling the next token (see sample.h). */
#include "trainer/sample.h"

#include <math.h>
#include <stdlib.h>

#include "trainer/base/check.h"
#include "trainer/base/rng.h"

void lv_sampler_init(lv_sampler *s, int64_t V) {
  s->V = V;
  s->order = malloc(sizeof(int32_t) * (size_t)V);
  s->w = malloc(sizeof(double) * (size_t)V);
  CHECK_ALLOC(s->order);
  CHECK_ALLOC(s->w);
}

void lv_sampler_free(lv_sampler *s) {
  free(s->order);
  free(s->w);
  s->order = NULL;
  s->w = NULL;
}

/* a before b: the higher logit, then the lower id. */
static int better(const float *l, int32_t a, int32_t b) { return l[a] > l[b] || (l[a] == l[b] && a < b); }

/* Sift-down of a min-heap (the worst candidate at the root) of n ids. */
static void sift(int32_t *h, int64_t n, int64_t i, const float *l) {
  for (;;) {
    int64_t c = 2 * i + 1;
    if (c >= n) return;
    if (c + 1 < n && better(l, h[c], h[c + 1])) c++; /* the worse child */
    if (!better(l, h[i], h[c])) return;
    int32_t t = h[i];
    h[i] = h[c];
    h[c] = t;
    i = c;
  }
}

int32_t lv_sample(lv_sampler *s, const float *logits, double temperature, int64_t top_k, uint64_t seed,
                  int64_t position) {
  const int64_t V = s->V, k = top_k < V ? top_k : V;
  for (int64_t i = 0; i < V; i++)
    if (!isfinite(logits[i])) return -1;
  int32_t *h = s->order;
  if (k == V) {
    for (int64_t i = 0; i < V; i++) h[i] = (int32_t)i; /* every token: id order */
  } else {
    /* The k best in a min-heap, then sorted best first (heap sort: O(V log k)). */
    for (int64_t i = 0; i < k; i++) h[i] = (int32_t)i;
    for (int64_t i = k / 2 - 1; i >= 0; i--) sift(h, k, i, logits);
    for (int64_t i = k; i < V; i++)
      if (better(logits, (int32_t)i, h[0])) {
        h[0] = (int32_t)i;
        sift(h, k, 0, logits);
      }
    for (int64_t n = k - 1; n > 0; n--) { /* the root (worst) goes to the end: best first */
      int32_t t = h[0];
      h[0] = h[n];
      h[n] = t;
      sift(h, n, 0, logits);
    }
  }
  float mx = logits[h[0]];
  for (int64_t i = 1; i < k; i++) mx = logits[h[i]] > mx ? logits[h[i]] : mx;
  double sum = 0;
  for (int64_t i = 0; i < k; i++) {
    s->w[i] = exp(((double)logits[h[i]] - mx) / temperature);
    sum += s->w[i];
  }
  rng_stream st = rng_make(seed, "generate", (uint32_t)position, (uint32_t)((uint64_t)position >> 32));
  const double target = rng_uniform(&st, 0) * sum;
  double run = 0;
  for (int64_t i = 0; i < k; i++) {
    run += s->w[i];
    if (run > target) return h[i];
  }
  return h[k - 1]; /* rounding: the running sum fell short of target by an ulp */
}
