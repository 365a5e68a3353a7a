/* Reference embedding in double. */
#include "layers/ref/embed_ref.h"

#include "trainer/base/check.h"

void embed_forward_ref(double *x, const int32_t *tokens, const double *m, const double *W, int64_t BT, int64_t V,
                       int64_t D) {
  for (int64_t r = 0; r < BT; r++) {
    if (tokens[r] < 0 || tokens[r] >= V) DIE("embed_forward_ref: token %d out of range", (int)tokens[r]);
    for (int64_t j = 0; j < D; j++) x[r * D + j] = W[tokens[r] * D + j] * (m ? m[r] : 1.0);
  }
}

void embed_backward_ref(double *dW, const double *dx, const int32_t *tokens, const double *m, int64_t BT, int64_t V,
                        int64_t D) {
  (void)V;
  for (int64_t r = 0; r < BT; r++)
    for (int64_t j = 0; j < D; j++) dW[tokens[r] * D + j] += dx[r * D + j] * (m ? m[r] : 1.0);
}
