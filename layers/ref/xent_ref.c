/* Reference softmax cross-entropy in double. */
#include "layers/ref/xent_ref.h"

#include <math.h>

static int counted(const int32_t *targets, const double *mask, int64_t r) {
  return (!mask || mask[r] != 0.0) && targets[r] >= 0;
}

void xent_forward_ref(xent_stats *stats, const double *logits, const int32_t *targets, const double *mask,
                      double *saved, int64_t R, int64_t K) {
  xent_stats st = {0, 0, 0};
  for (int64_t r = 0; r < R; r++) {
    const double *l = logits + r * K;
    double m = l[0];
    int64_t am = 0;
    for (int64_t j = 1; j < K; j++)
      if (l[j] > m) { m = l[j]; am = j; }
    double s = 0;
    for (int64_t j = 0; j < K; j++) s += exp(l[j] - m);
    saved[r] = m;
    saved[R + r] = log(s);
    if (!counted(targets, mask, r)) continue;
    st.loss_sum += m + log(s) - l[targets[r]];
    st.count++;
    st.correct += am == targets[r];
  }
  *stats = st;
}

void xent_backward_ref(double *dlogits, double scale, const double *logits, const int32_t *targets,
                       const double *mask, const double *saved, int64_t R, int64_t K) {
  for (int64_t r = 0; r < R; r++) {
    if (!counted(targets, mask, r)) continue;
    for (int64_t j = 0; j < K; j++) {
      double p = exp(logits[r * K + j] - saved[r] - saved[R + r]);
      dlogits[r * K + j] += scale * (p - (j == targets[r] ? 1.0 : 0.0));
    }
  }
}
