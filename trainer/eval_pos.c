/* Evaluation by position (see eval_pos.h). */
#include "trainer/eval_pos.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static void zero(lv_pos_buckets *b, int64_t L) {
  memset(b, 0, sizeof *b);
  b->L = L;
}

static int64_t bucket_end(const lv_pos_buckets *b, int i) { return i + 1 < b->n ? b->from[i + 1] : b->L; }

void lv_pos_buckets_default(lv_pos_buckets *b, int64_t L) {
  zero(b, L);
  b->from[b->n++] = 0;
  for (int64_t edge = 64; edge < L && b->n < LV_MAX_POS_BUCKETS; edge *= 4) b->from[b->n++] = edge;
}

int lv_pos_buckets_parse(lv_pos_buckets *b, const char *list, int64_t L, char *why, size_t cap) {
  zero(b, L);
  b->from[b->n++] = 0;
  const char *s = list;
  while (*s) {
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (end == s || errno || (*end && *end != ',')) {
      snprintf(why, cap, "'%s': expected positions separated by commas, e.g. 64,256,1024", list);
      return -1;
    }
    if (v <= b->from[b->n - 1] || v >= L) {
      snprintf(why, cap, "'%s': boundary %lld must be above the previous one (%lld) and below seq_len %lld", list,
               v, (long long)b->from[b->n - 1], (long long)L);
      return -1;
    }
    if (b->n == LV_MAX_POS_BUCKETS) {
      snprintf(why, cap, "'%s': more than %d buckets", list, LV_MAX_POS_BUCKETS);
      return -1;
    }
    b->from[b->n++] = v;
    s = *end ? end + 1 : end;
    if (*end && !*s) {
      snprintf(why, cap, "'%s': ends with a comma", list);
      return -1;
    }
  }
  return 0;
}

void lv_pos_buckets_add(lv_pos_buckets *b, const double *nll, const int32_t *targets, const uint8_t *tmask,
                        int64_t rows) {
  for (int64_t r = 0; r < rows; r++)
    for (int i = 0; i < b->n; i++)
      for (int64_t p = b->from[i]; p < bucket_end(b, i); p++) {
        int64_t k = r * b->L + p;
        if (!tmask[k] || targets[k] < 0) continue;
        b->loss_sum[i] += nll[k];
        b->count[i] += 1;
      }
}

void lv_pos_buckets_print(FILE *f, const lv_pos_buckets *b) {
  fprintf(f, "by position in the %lld-token window (position p predicts token p+1 after seeing p+1 tokens):\n",
          (long long)b->L);
  fprintf(f, "  %-13s %12s %16s\n", "positions", "targets", "bits per token");
  for (int i = 0; i < b->n; i++) {
    char range[48];
    snprintf(range, sizeof range, "%lld-%lld", (long long)b->from[i], (long long)bucket_end(b, i) - 1);
    fprintf(f, "  %-13s %12.0f %16.9f\n", range, b->count[i],
            b->count[i] > 0 ? b->loss_sum[i] / b->count[i] / log(2.0) : NAN);
  }
}

void lv_pos_buckets_json(lv_jsonl *j, const lv_pos_buckets *b) {
  double from[LV_MAX_POS_BUCKETS], to[LV_MAX_POS_BUCKETS], bpt[LV_MAX_POS_BUCKETS];
  for (int i = 0; i < b->n; i++) {
    from[i] = (double)b->from[i];
    to[i] = (double)bucket_end(b, i);
    bpt[i] = b->count[i] > 0 ? b->loss_sum[i] / b->count[i] / log(2.0) : NAN;
  }
  jsonl_num_array(j, "position_from", "%.0f", from, b->n);
  jsonl_num_array(j, "position_to", "%.0f", to, b->n);
  jsonl_num_array(j, "position_targets", "%.0f", b->count, b->n);
  jsonl_num_array(j, "position_loss_sum", "%.17g", b->loss_sum, b->n);
  jsonl_num_array(j, "position_bits_per_token", "%.10g", bpt, b->n);
}
