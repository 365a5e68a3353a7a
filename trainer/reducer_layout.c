/* The reducer's bucket layout (see reducer_layout.h). No MPI: also compiled into the SMPI skeleton. */
#include "trainer/reducer_layout.h"

#include "trainer/base/range.h"

size_t reducer_grad_floats(size_t n_grad, int world) { return lv_round_up(n_grad, (size_t)world * 16); }

size_t reducer_stat_doubles(size_t n_stat, int world) { return lv_round_up(n_stat, (size_t)world * 16); }

int reducer_layout(size_t n_grad, size_t n_stat, size_t bucket_floats, int world, int zero, reducer_span *out,
                   int cap) {
  size_t unit = (size_t)world * 16;
  size_t grad_pad = reducer_grad_floats(n_grad, world);
  size_t bf = lv_round_up(bucket_floats < unit ? unit : bucket_floats, unit);
  int ng = (int)((grad_pad + bf - 1) / bf);
  /* bucket 0: statistics (ready first); then gradients from the end of the buffer down */
  if (cap > 0) out[0] = (reducer_span){0, reducer_stat_doubles(n_stat, world), 1, 0};
  size_t hi = grad_pad;
  for (int k = 1; k <= ng; k++) {
    size_t lo = hi > bf ? hi - bf : 0;
    lo = lo / unit * unit;
    if (k < cap) out[k] = (reducer_span){lo, hi, 0, zero};
    hi = lo;
  }
  return ng + 1;
}
