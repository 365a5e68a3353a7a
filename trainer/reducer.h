/* Bucketed, overlapped gradient reduction (part of the MPI boundary, with trainer/dist.h).
 *
 * Two buffers: the gradients (float, n_grad) and the step's statistics (double, n_stat; its layout is
 * trainer/stats.h: codebook counts, key sums, re-seed keys, loss counters, votes), each padded to a
 * multiple of world*16 elements. The gradient buffer is cut into buckets of about `bucket_floats`
 * (multiples of world*16), numbered from the END of the buffer because backward finishes the last
 * tensors first; the statistics are one more bucket (bucket 0), reduced in double so that counts stay
 * exact integers and sums double at any global batch. A communication thread reduces each bucket as
 * soon as the trainer marks it ready, while backward goes on (MPI nonblocking collectives would not
 * progress on their own here).
 *
 * Each bucket is reduced as reduce-scatter + all-gather: every segment is summed once, by one rank,
 * and broadcast, so all ranks hold bitwise identical results. With ZeRO-1 (`zero = 1`) gradient
 * buckets stop after the reduce-scatter: rank r owns segment r of every gradient bucket (its shard);
 * after the optimizer updated its shard, reducer_allgather_params spreads the parameters.
 */
#ifndef LONGVQ_REDUCER_H
#define LONGVQ_REDUCER_H

#include <stddef.h>
#include <stdint.h>

#include "trainer/base/range.h"
#include "trainer/reducer_layout.h" /* the bucket layout, pure (also reducer_grad_floats, reducer_stat_doubles) */

typedef struct reducer reducer;


/* Local (the thread starts here; call on every rank). n_grad/n_stat are the real element counts;
 * grads has reducer_grad_floats(n_grad, world) floats, stats reducer_stat_doubles(n_stat, world).
 * threaded = 0 (dist.comm_thread: false): no thread; reducer_finish reduces every bucket in order on
 * the calling thread, after backward (nothing overlaps: all communication is exposed). */
reducer *reducer_create(float *grads, size_t n_grad, double *stats, size_t n_stat, size_t bucket_floats, int zero,
                        int threaded);
void reducer_free(reducer *r);

/* Local. Starts a step's reduction: nothing is ready yet. */
void reducer_begin(reducer *r);
/* Local. The statistics part is final: queue it. */
void reducer_stats_ready(reducer *r);
/* Local. Gradients [lo, n_grad) are final: queue every bucket that lies within. */
void reducer_grads_ready(reducer *r, size_t lo);
/* Collective (through the thread). Queues what is left, waits until every bucket is reduced and
 * returns the seconds this thread waited (the exposed, not hidden, communication). */
double reducer_finish(reducer *r);

/* This rank's shard (ZeRO-1): its segment of each gradient bucket. Returns the count; fills out[]. */
int reducer_shard(const reducer *r, lv_range *out, int cap);
/* Collective. ZeRO-1: every rank's updated segments of `params` (same layout as the gradient part)
 * to every rank. */
void reducer_allgather_params(reducer *r, float *params);

/* Figures of the last finished step. */
typedef struct {
  double comm_s;      /* time the thread spent in MPI for this step */
  double wait_s;      /* time the trainer waited in reducer_finish (exposed) */
  double bytes;       /* payload bytes reduced this step (sum of bucket sizes) */
  double busbw_gbs;   /* bus bandwidth, NCCL-tests convention: bytes * 2(W-1)/W / comm_s */
  int buckets;
} reducer_stats;
reducer_stats reducer_last(const reducer *r);
int reducer_num_buckets(const reducer *r);

#endif
