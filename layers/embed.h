/* Token embedding: x_t = embed.weight[token_t] * m_t (gather), backward scatters into dW.
 *
 * The mask is applied here (m may be NULL: all valid). The spec's `x = dropout(x) * m` equals
 * dropout(x * m) (the mask is a per-row 0/1 factor), so the model runs dropout on the result.
 * Token ids are checked against [0, V) (a bad id dies naming the row and id).
 * Backward is deterministic and race-free: threads own disjoint 64-column blocks of dW and walk
 * the tokens in order, so repeated tokens add in the same order on every run and thread count. */
#ifndef LONGVQ_EMBED_H
#define LONGVQ_EMBED_H

#include <stdint.h>

void embed_forward(float *x /* (BT, D) */, const int32_t *tokens /* (BT) in [0, V) */,
                   const float *m /* (BT) 0/1 mask, or NULL */, const float *W /* (V, D) embed.weight */,
                   int64_t BT, int64_t V, int64_t D);
void embed_backward(float *dW /* (V, D) += */, const float *dx /* (BT, D) */, const int32_t *tokens /* (BT) */,
                    const float *m /* (BT) or NULL */, int64_t BT, int64_t V, int64_t D);

#endif
