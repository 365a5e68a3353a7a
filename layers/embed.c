/* Embedding gather / deterministic scatter (see embed.h). */
#include "layers/embed.h"

#include <string.h>

#include "trainer/base/check.h"

#define PAR_MIN 32768
#define CB 64

void embed_forward(float *x, const int32_t *tokens, const float *m, const float *W, int64_t BT, int64_t V,
                   int64_t D) {
  for (int64_t r = 0; r < BT; r++)
    if (tokens[r] < 0 || tokens[r] >= V)
      DIE("embed_forward: token id %d at row %lld is outside the vocabulary [0, %lld)", (int)tokens[r],
          (long long)r, (long long)V);
#pragma omp parallel for schedule(static) if (BT * D >= PAR_MIN)
  for (int64_t r = 0; r < BT; r++) {
    const float *src = W + (int64_t)tokens[r] * D;
    float *dst = x + r * D;
    if (!m) {
      memcpy(dst, src, sizeof(float) * (size_t)D);
    } else {
      float mr = m[r];
#pragma omp simd
      for (int64_t j = 0; j < D; j++) dst[j] = src[j] * mr;
    }
  }
}

void embed_backward(float *dW, const float *dx, const int32_t *tokens, const float *m, int64_t BT, int64_t V,
                    int64_t D) {
  (void)V; /* ids were checked by the forward */
  int64_t nb = (D + CB - 1) / CB;
#pragma omp parallel for schedule(static) if (BT * D >= PAR_MIN && nb > 1)
  for (int64_t blk = 0; blk < nb; blk++) {
    int64_t c0 = blk * CB, nc = D - c0 < CB ? D - c0 : CB;
    for (int64_t r = 0; r < BT; r++) {
      float mr = m ? m[r] : 1.0f;
      float *dst = dW + (int64_t)tokens[r] * D + c0;
      const float *src = dx + r * D + c0;
#pragma omp simd
      for (int64_t j = 0; j < nc; j++) dst[j] += src[j] * mr;
    }
  }
}
