/* The communication thread and its buckets (see reducer.h). */
#include "trainer/reducer.h"

#include <mpi.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "trainer/base/check.h"
#include "trainer/base/clock.h"
#include "trainer/base/watchdog.h"
#include "trainer/placement.h"

typedef struct {
  size_t lo, hi;   /* elements of its buffer; padded: hi - lo is a multiple of world */
  int f64;         /* 1: the statistics (double), 0: gradients (float) */
  int scatter_only;
  int queued, done;
} bucket;

struct reducer {
  float *grads;
  double *stats;
  void *seg_tmp;       /* one segment, for the reduce-scatter's output (bytes of the largest) */
  int world, rank, zero;
  int threaded;        /* 0: no thread, reducer_finish reduces inline */
  bucket *b;
  int nb, n_grad_buckets;
  size_t grad_pad;
  pthread_t thread;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  int next;            /* next bucket the thread handles, in order */
  int queued_upto;     /* buckets [0, queued_upto) are queued (bucket 0 = statistics) */
  int stop;
  double comm_s, wait_s, bytes;
  reducer_stats last;
};

static void reduce_bucket(reducer *r, bucket *bk) {
  if (r->world == 1) return;
  size_t seg = (bk->hi - bk->lo) / (size_t)r->world, esz = bk->f64 ? sizeof(double) : sizeof(float);
  MPI_Datatype type = bk->f64 ? MPI_DOUBLE : MPI_FLOAT;
  char *base = bk->f64 ? (char *)(r->stats + bk->lo) : (char *)(r->grads + bk->lo);
  /* A rank waiting for a slow one sleeps until all have arrived, then the blocking collectives move
   * the data (watchdog.h: dist_arrive). Unmarked: reducer_finish marks the trainer's wait for the
   * whole reduction. */
  dist_arrive(NULL);
  CHECK_MPI(MPI_Reduce_scatter_block(base, r->seg_tmp, (int)seg, type, MPI_SUM, MPI_COMM_WORLD));
  memcpy(base + (size_t)r->rank * seg * esz, r->seg_tmp, esz * seg);
  if (!bk->scatter_only)
    CHECK_MPI(MPI_Allgather(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, base, (int)seg, type, MPI_COMM_WORLD));
}

/* Bucket bk (the next one) was reduced in dt seconds: count it and move on (under mu if threaded). */
static void bucket_done(reducer *r, bucket *bk, double dt) {
  if (r->world > 1) { /* one rank communicates nothing: no time, no bytes */
    r->comm_s += dt;
    r->bytes += (bk->f64 ? 8.0 : 4.0) * (double)(bk->hi - bk->lo);
  }
  bk->done = 1;
  r->next++;
}

/* Buckets are handled strictly in order (same order on every rank: the collectives match). */
static void *comm_main(void *arg) {
  reducer *r = arg;
  pthread_mutex_lock(&r->mu);
  for (;;) {
    while (!r->stop && r->next >= r->queued_upto) pthread_cond_wait(&r->cv, &r->mu);
    if (r->stop) break;
    bucket *bk = &r->b[r->next];
    pthread_mutex_unlock(&r->mu);
    double t0 = lv_now_s();
    reduce_bucket(r, bk);
    double dt = lv_now_s() - t0;
    pthread_mutex_lock(&r->mu);
    bucket_done(r, bk, dt);
    pthread_cond_broadcast(&r->cv);
  }
  pthread_mutex_unlock(&r->mu);
  return NULL;
}

reducer *reducer_create(float *grads, size_t n_grad, double *stats, size_t n_stat, size_t bucket_floats, int zero,
                        int threaded) {
  reducer *r = calloc(1, sizeof *r);
  CHECK_ALLOC(r);
  CHECK_MPI(MPI_Comm_size(MPI_COMM_WORLD, &r->world));
  CHECK_MPI(MPI_Comm_rank(MPI_COMM_WORLD, &r->rank));
  r->grads = grads;
  r->stats = stats;
  r->zero = zero;
  r->threaded = threaded;
  r->grad_pad = reducer_grad_floats(n_grad, r->world);
  r->nb = reducer_layout(n_grad, n_stat, bucket_floats, r->world, zero, NULL, 0);
  r->n_grad_buckets = r->nb - 1;
  reducer_span *sp = calloc((size_t)r->nb, sizeof *sp);
  r->b = calloc((size_t)r->nb, sizeof(bucket));
  CHECK_ALLOC(sp);
  CHECK_ALLOC(r->b);
  reducer_layout(n_grad, n_stat, bucket_floats, r->world, zero, sp, r->nb);
  size_t max_bytes = 0;
  for (int k = 0; k < r->nb; k++) {
    r->b[k] = (bucket){sp[k].lo, sp[k].hi, sp[k].f64, sp[k].scatter_only, 0, 0};
    size_t seg_bytes = (sp[k].f64 ? sizeof(double) : sizeof(float)) * (sp[k].hi - sp[k].lo) / (size_t)r->world;
    if (seg_bytes > max_bytes) max_bytes = seg_bytes;
  }
  free(sp);
  r->seg_tmp = calloc(max_bytes ? max_bytes : 1, 1);
  CHECK_ALLOC(r->seg_tmp);
  pthread_mutex_init(&r->mu, NULL);
  pthread_cond_init(&r->cv, NULL);
  r->next = r->queued_upto = r->nb; /* idle until reducer_begin */
  if (!threaded) return r;
  pthread_attr_t attr; /* on all of the rank's CPUs, not only the first OpenMP place (placement.h) */
  pthread_attr_init(&attr);
  const cpu_set_t *cpus = placement_cpus();
  if (cpus && pthread_attr_setaffinity_np(&attr, sizeof *cpus, cpus) != 0) DIE("cannot set the communication thread's CPUs");
  if (pthread_create(&r->thread, &attr, comm_main, r) != 0) DIE("cannot start the communication thread");
  pthread_setname_np(r->thread, "lv-comm"); /* named: tests and top -H tell it from OpenMP's threads */
  pthread_attr_destroy(&attr);
  return r;
}

void reducer_free(reducer *r) {
  if (!r) return;
  pthread_mutex_lock(&r->mu);
  r->stop = 1;
  pthread_cond_broadcast(&r->cv);
  pthread_mutex_unlock(&r->mu);
  if (r->threaded) pthread_join(r->thread, NULL);
  pthread_mutex_destroy(&r->mu);
  pthread_cond_destroy(&r->cv);
  free(r->seg_tmp);
  free(r->b);
  free(r);
}

void reducer_begin(reducer *r) {
  pthread_mutex_lock(&r->mu);
  for (int k = 0; k < r->nb; k++) r->b[k].queued = r->b[k].done = 0;
  r->next = r->queued_upto = 0;
  r->comm_s = r->wait_s = r->bytes = 0;
  pthread_mutex_unlock(&r->mu);
}

static void queue_upto(reducer *r, int k) {
  pthread_mutex_lock(&r->mu);
  if (k > r->queued_upto) {
    r->queued_upto = k;
    pthread_cond_broadcast(&r->cv);
  }
  pthread_mutex_unlock(&r->mu);
}

void reducer_stats_ready(reducer *r) { queue_upto(r, 1); }

void reducer_grads_ready(reducer *r, size_t lo) {
  int k = 1; /* buckets are in order of decreasing offset: queue the prefix lying within [lo, end) */
  while (k < r->nb && r->b[k].lo >= lo) k++;
  if (lo == 0) k = r->nb;
  if (k > 1) queue_upto(r, k);
}

/* The thread's loop body, inline: every bucket in order on the calling thread. */
static void reduce_inline(reducer *r) {
  while (r->next < r->nb) {
    double t0 = lv_now_s();
    reduce_bucket(r, &r->b[r->next]);
    bucket_done(r, &r->b[r->next], lv_now_s() - t0);
  }
}

double reducer_finish(reducer *r) {
  double t0 = lv_now_s();
  watchdog_wait_begin("gradient reduction");
  if (!r->threaded) {
    reduce_inline(r);
  } else {
    queue_upto(r, r->nb);
    pthread_mutex_lock(&r->mu);
    while (r->next < r->nb) pthread_cond_wait(&r->cv, &r->mu);
    pthread_mutex_unlock(&r->mu);
  }
  watchdog_wait_end();
  r->wait_s = lv_now_s() - t0;
  double W = (double)r->world;
  r->last = (reducer_stats){r->comm_s, r->wait_s, r->bytes,
                            r->comm_s > 0 ? r->bytes * 2.0 * (W - 1.0) / W / r->comm_s * 1e-9 : 0.0, r->nb};
  return r->wait_s;
}

int reducer_shard(const reducer *r, lv_range *out, int cap) {
  int n = 0;
  for (int k = 1; k < r->nb && n < cap; k++) {
    size_t seg = (r->b[k].hi - r->b[k].lo) / (size_t)r->world;
    size_t lo = r->zero ? r->b[k].lo + (size_t)r->rank * seg : r->b[k].lo;
    out[n++] = (lv_range){lo, r->zero ? lo + seg : r->b[k].hi};
  }
  return n;
}

void reducer_allgather_params(reducer *r, float *params) {
  if (!r->zero || r->world == 1) return;
  for (int k = 1; k < r->nb; k++) {
    size_t seg = (r->b[k].hi - r->b[k].lo) / (size_t)r->world;
    dist_arrive("parameter all-gather");
    CHECK_MPI(MPI_Allgather(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, params + r->b[k].lo, (int)seg, MPI_FLOAT,
                            MPI_COMM_WORLD));
    watchdog_wait_end();
  }
}

reducer_stats reducer_last(const reducer *r) { return r->last; }
int reducer_num_buckets(const reducer *r) { return r->nb; }
