/* The training step as a skeleton for SimGrid's SMPI (built with smpicc, run under smpirun by
 * launch/project.py; docs/scaling.md#projections). No maths: each rank replays a step profile
 * (`longvq profile`, turned into a plan file by launch/project.py) as simulated compute, and issues
 * the trainer's reductions with the trainer's bucket layout (trainer/reducer_layout.c, compiled in).
 *
 * The communication thread. Our reducer reduces each bucket with BLOCKING reduce-scatter +
 * all-gather on a second thread while backward goes on. SMPI ranks are single-threaded, and SMPI's
 * nonblocking collectives are schedules of point-to-point messages whose algorithm is not the blocking
 * one, so instead every trainer rank is a PAIR of SMPI ranks on the same simulated host:
 *   even world rank 2i: the compute actor (forward, backward with its grad-ready events, optimizer);
 *   odd world rank 2i+1: the communication actor (the thread: buckets in order, blocking collectives
 *   on a communicator of the W communication actors, the collective algorithms Open MPI would pick).
 * The compute actor hands "statistics ready", "gradients [lo, end) final" and "finish" to its partner
 * as small messages over the host's loopback, exactly where the trainer calls reducer_stats_ready,
 * reducer_grads_ready (the model's grad hook) and reducer_finish; the partner answers "done" and the
 * time the compute actor waited for it is the exposed communication. The communication actor
 * consumes no simulated CPU (the real thread's reduction arithmetic and copies are not modelled).
 *
 * Usage: smpirun -np 2W ... skeleton PLAN   (PLAN: `key value` lines, see read_plan)
 * Output (compute rank 0): one JSON line per step, like the trainer's metrics. */
#include <mpi.h>
#include <simgrid/actor.h>
#include <smpi/smpi.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "trainer/reducer_layout.h"

#define MAX_EVENTS 300
enum { MSG_STATS = 0, MSG_GRADS = 1, MSG_FINISH = 2 };
enum { TAG_READY = 11, TAG_DONE = 12 };

typedef struct {
  int steps, n_micro, zero, comm_thread, n_events, ring_sample;
  char collectives[8];       /* "ring" (default) or "mpi" */
  double forward_s, backward_s, data_s, grad_norm_s, adamw_s, codebook_s;
  double ev_t[MAX_EVENTS];   /* seconds since backward began when [ev_lo, end) is final */
  long long ev_lo[MAX_EVENTS];
  long long n_grad, n_stat_base, n_stat_per_rank, bucket_floats;
} plan;

static void die(const char *msg, const char *what) {
  fprintf(stderr, "skeleton: error: %s%s%s\n", msg, what ? ": " : "", what ? what : "");
  MPI_Abort(MPI_COMM_WORLD, 2);
}

static void read_plan(const char *path, plan *p) {
  FILE *f = fopen(path, "r");
  if (!f) die("cannot open the plan", path);
  memset(p, 0, sizeof *p);
  p->comm_thread = 1;
  strcpy(p->collectives, "ring");
  char key[64];
  while (fscanf(f, "%63s", key) == 1) {
    int ok = 1;
    if (!strcmp(key, "collectives")) {
      ok = fscanf(f, "%7s", p->collectives) == 1 && (!strcmp(p->collectives, "ring") || !strcmp(p->collectives, "mpi"));
    } else if (!strcmp(key, "event")) {
      if (p->n_events == MAX_EVENTS) die("too many backward events in", path);
      ok = fscanf(f, "%lf %lld", &p->ev_t[p->n_events], &p->ev_lo[p->n_events]) == 2;
      p->n_events++;
    }
#define I(name) else if (!strcmp(key, #name)) ok = fscanf(f, "%d", &p->name) == 1;
#define L(name) else if (!strcmp(key, #name)) ok = fscanf(f, "%lld", &p->name) == 1;
#define D(name) else if (!strcmp(key, #name)) ok = fscanf(f, "%lf", &p->name) == 1;
    I(steps) I(ring_sample) I(n_micro) I(zero) I(comm_thread) D(forward_s) D(backward_s) D(data_s) D(grad_norm_s) D(adamw_s)
    D(codebook_s) L(n_grad) L(n_stat_base) L(n_stat_per_rank) L(bucket_floats)
#undef I
#undef L
#undef D
    else die("unknown key in the plan", key);
    if (!ok) die("bad value in the plan for", key);
  }
  fclose(f);
  if (p->steps < 1 || p->n_micro < 1 || p->n_grad < 1 || !p->n_events) die("incomplete plan", path);
}

/* Simulated compute of `s` seconds (the platform's hosts run 1 Gflop/s per core). */
static void compute(double s) {
  if (s > 0) smpi_execute_flops(s * 1e9);
}

/* The reduction carries sizes, not values: no arithmetic, and the buffers are shared (SMPI_SHARED_MALLOC). */
static void noop(void *in, void *inout, int *len, MPI_Datatype *t) { (void)in, (void)inout, (void)len, (void)t; }

typedef struct {
  reducer_span *b;
  int nb, W;
  char *buf, *seg;
  MPI_Comm comm; /* the W actors of this role */
  MPI_Op op;
  int sample;    /* simulate the first `sample` steps of each ring (0: all) */
  int mpi_colls; /* 1: MPI_Reduce_scatter_block + MPI_Allgather; 0: the ring written out (ring()) */
} reduction;

/* Ring reduce-scatter then ring all-gather of one bucket (W-1 steps each, `seg` elements to the right
 * neighbour, from the left one): the algorithm Open MPI's tuned component uses for large buckets and
 * the one of the alpha-beta cost. Written out with MPI_Sendrecv on the shared buffer because SMPI's
 * own collectives allocate and copy real temporary buffers (W x bucket bytes per rank: 6 GB and
 * minutes at 64 ranks), which would limit the projections to a few dozen nodes. The plan's
 * `collectives mpi` uses MPI_Reduce_scatter_block + MPI_Allgather instead (SMPI's `ompi` selection,
 * the trainer's own calls): fine at small W, and a cross-check of the ring. */
static void ring(reduction *r, int seg, MPI_Datatype t) {
  int me, right, left;
  MPI_Comm_rank(r->comm, &me);
  right = (me + 1) % r->W;
  left = (me + r->W - 1) % r->W;
  int n = r->W - 1, k = r->sample > 0 && r->sample < n ? r->sample : n;
  double t1 = 0;
  for (int s = 0; s < k; s++) {
    MPI_Sendrecv(r->buf, seg, t, right, 0, r->seg, seg, t, left, 0, r->comm, MPI_STATUS_IGNORE);
    if (s == 0) t1 = MPI_Wtime(); /* the first step also absorbs the ranks' skew: not sampled */
  }
  /* Sampled ring (plan `ring_sample K`): every step of a ring sends the same pattern (each rank to
   * its right neighbour), so the steps after the first K last as long as simulated steps 2..K (the
   * slowest rank's mean); the
   * actor waits that long without using its host's CPU. Checked against the full ring in
   * tests/sim.sh and docs/scaling.md. */
  if (k < n) { /* the ring goes at its slowest rank's pace; one figure agreed by all (each rank's own
               * would feed the skew back into the next bucket, growing) */
    double t2 = MPI_Wtime(), dt = (t2 - t1) / (k - 1);
    MPI_Allreduce(MPI_IN_PLACE, &dt, 1, MPI_DOUBLE, MPI_MAX, r->comm);
    double rest = dt * (n - k) - (MPI_Wtime() - t2); /* the agreement's own time counts */
    if (rest > 0) sg_actor_sleep_for(rest);
  }
}

static double reduce_bucket(reduction *r, const reducer_span *b) {
  if (r->W == 1) return 0; /* one rank communicates nothing (as the reducer) */
  int seg = (int)((b->hi - b->lo) / (size_t)r->W);
  MPI_Datatype t = b->f64 ? MPI_DOUBLE : MPI_FLOAT;
  if (r->mpi_colls) {
    MPI_Reduce_scatter_block(r->buf, r->seg, seg, t, r->op, r->comm);
    if (!b->scatter_only) MPI_Allgather(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, r->buf, seg, t, r->comm);
  } else {
    ring(r, seg, t);
    if (!b->scatter_only) ring(r, seg, t);
  }
  return (b->f64 ? 8.0 : 4.0) * (double)(b->hi - b->lo);
}

/* The ZeRO-1 all-gather of one bucket's parameters (reducer_allgather_params). */
static void allgather_params(reduction *r, const reducer_span *b) {
  int seg = (int)((b->hi - b->lo) / (size_t)r->W);
  if (r->mpi_colls)
    MPI_Allgather(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, r->buf, seg, MPI_FLOAT, r->comm);
  else
    ring(r, seg, MPI_FLOAT);
}

/* The communication thread: buckets strictly in order, each as soon as it is queued. */
static void comm_actor(const plan *p, reduction *r, int partner) {
  for (int s = 0; s < p->steps; s++) {
    int next = 0, queued = 0, finished = 0;
    double out[2] = {0, 0}; /* seconds in MPI, bytes */
    while (!finished || next < r->nb) {
      if (next >= queued) { /* nothing queued to reduce: wait for the trainer */
        long long msg[2];
        MPI_Recv(msg, 2, MPI_LONG_LONG, partner, TAG_READY, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
        int k = 1;
        if (msg[0] == MSG_STATS) k = 1;
        else if (msg[0] == MSG_FINISH || msg[1] == 0) k = r->nb;
        else while (k < r->nb && (long long)r->b[k].lo >= msg[1]) k++; /* as reducer_grads_ready */
        if (msg[0] == MSG_FINISH) finished = 1;
        if (k > queued) queued = k;
        continue;
      }
      double t0 = MPI_Wtime();
      out[1] += reduce_bucket(r, &r->b[next]);
      if (r->W > 1) out[0] += MPI_Wtime() - t0;
      next++;
    }
    MPI_Send(out, 2, MPI_DOUBLE, partner, TAG_DONE, MPI_COMM_WORLD);
  }
}

static void ready(int partner, long long kind, long long lo) {
  long long msg[2] = {kind, lo};
  MPI_Send(msg, 2, MPI_LONG_LONG, partner, TAG_READY, MPI_COMM_WORLD);
}

static void compute_actor(const plan *p, reduction *r, int partner, int rank) {
  for (int s = 1; s <= p->steps; s++) {
    if (r->W > 1) MPI_Barrier(r->comm); /* (SMPI 3.32 aborts on some collectives over a communicator of one) */
    double t0 = MPI_Wtime();
    for (int k = 0; k < p->n_micro; k++) {
      compute(p->data_s / p->n_micro);
      compute(p->forward_s);
      if (k < p->n_micro - 1) {
        compute(p->backward_s);
        continue;
      }
      if (p->comm_thread) ready(partner, MSG_STATS, 0);
      double done = 0;
      for (int e = 0; e < p->n_events; e++) { /* the grad hook's events, at their measured times */
        compute(p->ev_t[e] - done);
        done = p->ev_t[e];
        if (p->comm_thread) ready(partner, MSG_GRADS, p->ev_lo[e]);
      }
      compute(p->backward_s - done);
    }
    double t1 = MPI_Wtime();
    ready(partner, MSG_FINISH, 0); /* reducer_finish: queue the rest, wait */
    double got[2];
    MPI_Recv(got, 2, MPI_DOUBLE, partner, TAG_DONE, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
    double t2 = MPI_Wtime();
    /* optimizer: gradient norm (summed over ranks under ZeRO-1), AdamW on the shard, all-gather, codebooks */
    double shard = p->zero ? 1.0 / r->W : 1.0;
    compute(p->grad_norm_s * shard);
    if (p->zero && r->W > 1) {
      double sq = 0;
      MPI_Allreduce(MPI_IN_PLACE, &sq, 1, MPI_DOUBLE, MPI_SUM, r->comm);
    }
    compute(p->adamw_s * shard);
    for (int k = 1; p->zero && r->W > 1 && k < r->nb; k++) allgather_params(r, &r->b[k]);
    compute(p->codebook_s);
    double t3 = MPI_Wtime();
    double step = t3 - t0, slowest = step;
    if (r->W > 1) MPI_Reduce(&step, &slowest, 1, MPI_DOUBLE, MPI_MAX, 0, r->comm);
    if (rank == 0)
      printf("{\"step\": %d, \"ranks\": %d, \"step_s\": %.9f, \"slowest_step_s\": %.9f, \"compute_s\": %.9f, "
             "\"comm_s\": %.9f, \"exposed_comm_s\": %.9f, \"data_s\": %.9f, \"optimizer_s\": %.9f, "
             "\"comm_bytes\": %.0f, \"buckets\": %d}\n",
             s, r->W, step, slowest, t1 - t0 - p->data_s, got[0], t2 - t1, p->data_s, t3 - t2, got[1], r->nb);
  }
}

int main(int argc, char **argv) {
  MPI_Init(&argc, &argv);
  int rank, size;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  if (argc != 2) die("usage: smpirun -np 2W ... skeleton PLAN", NULL);
  if (size % 2) die("the world must be even (a compute and a communication actor per trainer rank)", NULL);
  plan p;
  read_plan(argv[1], &p);
  reduction r = {0};
  r.W = size / 2;
  r.mpi_colls = !strcmp(p.collectives, "mpi");
  r.sample = p.ring_sample;
  if (r.sample == 1) die("ring_sample must be 0 (every step) or at least 2", NULL);
  MPI_Comm_split(MPI_COMM_WORLD, rank % 2, rank, &r.comm);
  size_t n_stat = (size_t)p.n_stat_base + (size_t)p.n_stat_per_rank * (size_t)r.W;
  r.nb = reducer_layout((size_t)p.n_grad, n_stat, (size_t)p.bucket_floats, r.W, p.zero, NULL, 0);
  r.b = calloc((size_t)r.nb, sizeof *r.b);
  if (!r.b) die("out of memory", NULL);
  reducer_layout((size_t)p.n_grad, n_stat, (size_t)p.bucket_floats, r.W, p.zero, r.b, r.nb);
  size_t max_bytes = 0;
  for (int k = 0; k < r.nb; k++) {
    size_t bytes = (r.b[k].f64 ? 8 : 4) * (r.b[k].hi - r.b[k].lo);
    if (bytes > max_bytes) max_bytes = bytes;
  }
  r.buf = SMPI_SHARED_MALLOC(max_bytes);
  r.seg = SMPI_SHARED_MALLOC(max_bytes / (size_t)r.W + 8);
  MPI_Op_create(noop, 1, &r.op);
  if (rank % 2)
    comm_actor(&p, &r, rank - 1);
  else
    compute_actor(&p, &r, rank + 1, rank);
  MPI_Op_free(&r.op);
  SMPI_SHARED_FREE(r.buf);
  SMPI_SHARED_FREE(r.seg);
  free(r.b);
  MPI_Comm_free(&r.comm);
  MPI_Finalize();
  return 0;
}
