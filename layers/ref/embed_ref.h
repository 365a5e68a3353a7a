/* Double-precision reference twin of layers/embed.h. */
#ifndef LONGVQ_EMBED_REF_H
#define LONGVQ_EMBED_REF_H

#include <stdint.h>

void embed_forward_ref(double *x /* (BT, D) */, const int32_t *tokens /* (BT) */, const double *m /* (BT) or NULL */,
                       const double *W /* (V, D) */, int64_t BT, int64_t V, int64_t D);
void embed_backward_ref(double *dW /* (V, D) += */, const double *dx /* (BT, D) */, const int32_t *tokens /* (BT) */,
                        const double *m /* (BT) or NULL */, int64_t BT, int64_t V, int64_t D);

#endif
