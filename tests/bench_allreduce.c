/* Allreduce bandwidth: our bucketed reduce-scatter + all-gather path (trainer/reducer.c, on its
 * communication thread) against one plain MPI_Allreduce of the same bytes, reused buffers both.
 * Run under mpirun -np W; prints algorithm and bus bandwidth (NCCL-tests convention:
 * busbw = bytes / time * 2 (W-1) / W). Usage: bench_allreduce [MiB ...] [--bucket-mb B] [--iters N] */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "trainer/base/clock.h"
#include "trainer/base/dist.h"
#include "trainer/reducer.h"

int main(int argc, char **argv) {
  dist_init(&argc, &argv);
  double sizes[16] = {1, 4, 16, 64};
  int nsz = 4, iters = 10;
  double bucket_mb = 25;
  int user = 0;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--bucket-mb") && i + 1 < argc) bucket_mb = atof(argv[++i]);
    else if (!strcmp(argv[i], "--iters") && i + 1 < argc) iters = atoi(argv[++i]);
    else if (nsz < 16 || !user) { if (!user) { nsz = 0; user = 1; } sizes[nsz++] = atof(argv[i]); }
  }
  const int W = dist_size();
  const double bus = W > 1 ? 2.0 * (W - 1) / W : 1.0;
  if (dist_is_root())
    printf("ranks %d, bucket %.1f MiB, %d iterations\n%10s | %-30s | %-30s | %s\n", W, bucket_mb, iters, "MiB",
           "MPI_Allreduce  algbw / busbw GB/s", "bucketed path  algbw / busbw GB/s", "bucketed us");
  for (int si = 0; si < nsz; si++) {
    size_t n = (size_t)(sizes[si] * 1048576.0 / 4.0);
    size_t nbuf = reducer_grad_floats(n, W);
    float *buf = calloc(nbuf, sizeof(float));
    double *stats = calloc(reducer_stat_doubles(16, W), sizeof(double));
    for (size_t i = 0; i < nbuf; i++) buf[i] = 1.0f;
    /* plain */
    MPI_Allreduce(MPI_IN_PLACE, buf, (int)n, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
    dist_barrier();
    double t0 = lv_now_s();
    for (int it = 0; it < iters; it++) MPI_Allreduce(MPI_IN_PLACE, buf, (int)n, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
    double tp = (lv_now_s() - t0) / iters;
    /* bucketed */
    reducer *r = reducer_create(buf, n, stats, 16, (size_t)(bucket_mb * 1048576.0 / 4.0), 0, 1);
    reducer_begin(r);
    reducer_stats_ready(r);
    reducer_grads_ready(r, 0);
    reducer_finish(r);
    dist_barrier();
    t0 = lv_now_s();
    for (int it = 0; it < iters; it++) {
      reducer_begin(r);
      reducer_stats_ready(r);
      reducer_grads_ready(r, 0);
      reducer_finish(r);
    }
    double tb = (lv_now_s() - t0) / iters;
    reducer_free(r);
    free(stats);
    double bytes = 4.0 * (double)n;
    double worst[2] = {tp, tb};
    dist_max_f64(worst, 2);
    if (dist_is_root())
      printf("%10.4f | %12.2f / %-15.2f | %12.2f / %-15.2f | %.1f\n", sizes[si], bytes / worst[0] * 1e-9,
             bytes / worst[0] * 1e-9 * bus, bytes / worst[1] * 1e-9, bytes / worst[1] * 1e-9 * bus, worst[1] * 1e6);
    free(buf);
  }
  dist_finalize();
  return 0;
}
