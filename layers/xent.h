/* Softmax cross-entropy over rows of logits (R, K) against integer targets.
 *
 * Row r COUNTS iff (mask == NULL || mask[r] != 0) and targets[r] >= 0 (a negative target is an
 * ignored row, like PyTorch's ignore_index); a counted target >= K dies (bad data). For counted rows
 *   nll_r = logsumexp(logits_r) - logits_r[target_r]
 * and the forward returns partial sums over this call's rows:
 *   loss_sum = sum nll_r,  count = #counted rows,  correct = #counted rows with argmax == target
 * (argmax ties go to the lowest class), and, if nll != NULL, each row's nll_r (the double summed
 * into loss_sum; 0 for a row that does not count). The caller normalizes by a GLOBAL count (all ranks and
 * micro-batches) and passes scale = d loss / d loss_sum (= 1 / global_count) to backward:
 *   dlogits_r += scale * (softmax(logits_r) - onehot(target_r))     (counted rows only)
 * Encoder: one row per sample, target = label. Decoder: row t of a sample predicts token t+1, with
 * mask m_{t+1} (the model passes the shifted targets and mask).
 * saved = [max_r (R) | log sum_j exp(logits_rj - max_r) (R)]; backward recomputes softmax from it.
 * Sums are in double, over 256 fixed row chunks combined in order: identical for any thread count. */
#ifndef LONGVQ_XENT_H
#define LONGVQ_XENT_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
  double loss_sum; /* sum of nll over counted rows */
  int64_t count;   /* counted rows */
  int64_t correct; /* counted rows whose argmax is the target */
} xent_stats;

size_t xent_saved_floats(int64_t R); /* 2 R */

void xent_forward(xent_stats *stats, double *nll /* (R) or NULL */, const float *logits /* (R, K) */,
                  const int32_t *targets /* (R) */, const float *mask /* (R) or NULL */, float *saved /* (2 R) */,
                  int64_t R, int64_t K);
void xent_backward(float *dlogits /* (R, K) += */, double scale /* d loss / d loss_sum */,
                   const float *logits /* (R, K) */, const int32_t *targets /* (R) */,
                   const float *mask /* (R) or NULL */, const float *saved /* (2 R) */, int64_t R, int64_t K);

#endif
