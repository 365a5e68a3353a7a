/* Language-model evaluation by position (`longvq eval`, docs/training.md "Loss by position"): the
 * loss of each target summed into buckets by its position in the window, so that a user sees
 * whether predictions with more context before them (the far field the codebook carries) are
 * better. Position p = 0..L-1 is the row that predicts token p+1 of a window of L+1 tokens, after
 * seeing tokens 0..p; bucket i holds positions [from[i], from[i+1]), the last one up to L.
 * The sums are double sums of the very per-target doubles the eval's loss sums (lv_model_target_nll),
 * so the buckets add up to the overall loss up to the rounding of a second summation order. */
#ifndef LONGVQ_EVAL_POS_H
#define LONGVQ_EVAL_POS_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "trainer/jsonl.h"

#define LV_MAX_POS_BUCKETS 32

typedef struct {
  int n;                                 /* buckets */
  int64_t L;                             /* positions per window */
  int64_t from[LV_MAX_POS_BUCKETS];      /* first position of each bucket, increasing, from[0] = 0 */
  double loss_sum[LV_MAX_POS_BUCKETS];   /* sum of the counted targets' nll (nats) */
  double count[LV_MAX_POS_BUCKETS];      /* counted targets */
} lv_pos_buckets;

/* Pure. The default buckets for windows of L positions: boundaries at the powers of 4 from 64
 * (64, 256, 1024, 4096, ...) below L, i.e. 0-63, 64-255, 256-1023, 1K-4K-1, ...; sums zeroed. */
void lv_pos_buckets_default(lv_pos_buckets *b, int64_t L);
/* Pure. Buckets from a list of boundaries "64,256,1024" (increasing, each in [1, L)); sums zeroed.
 * 0, or -1 with why[cap] saying what is wrong (the caller names the option). */
int lv_pos_buckets_parse(lv_pos_buckets *b, const char *list, int64_t L, char *why, size_t cap);
/* Local. Adds one forward's targets: nll (rows, L) as lv_model_target_nll gives it; a target counts
 * where tmask != 0 and targets >= 0 (the rule of layers/xent.h). */
void lv_pos_buckets_add(lv_pos_buckets *b, const double *nll, const int32_t *targets, const uint8_t *tmask,
                        int64_t rows);
/* Local. The table (bits per token per bucket) to f. */
void lv_pos_buckets_print(FILE *f, const lv_pos_buckets *b);
/* Local. The buckets as arrays of a JSON object: position_from, position_to (exclusive),
 * position_targets, position_loss_sum (nats, exact to the double), position_bits_per_token. */
void lv_pos_buckets_json(lv_jsonl *j, const lv_pos_buckets *b);

#endif
