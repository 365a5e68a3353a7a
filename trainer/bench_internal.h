/* `longvq bench` internals shared by trainer/cmd_bench.c (command line, child processes, tables) and
 * trainer/bench_run.c (what one child measures). Not a public API.
 *
 * Every measurement runs in its own forked child process: the peak RSS of a process is monotone, so
 * a fresh process per sequence length is the only way to read each length's peak; and the parent
 * never touches OpenMP or oneDNN (an OpenMP thread pool does not survive fork), so every child
 * starts from the same small, clean state. A child sends one fixed-size result struct through a
 * pipe and leaves with _exit (no MPI, no atexit handlers). */
#ifndef LONGVQ_BENCH_INTERNAL_H
#define LONGVQ_BENCH_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "io/config.h"
#include "layers/model.h"
#include "layers/params.h"

#define BENCH_MAX_LENGTHS 16
/* V and K come from the dataset in `train`; bench and profile have none: model.vocab_size /
 * model.n_classes when set, else these (a byte-level vocabulary; the classes of Fashion-MNIST and ListOps). */
#define BENCH_VOCAB 256
#define BENCH_CLASSES 10

typedef struct {
  lv_config cfg;              /* CONFIG + key=value: the model (model.*), run.seed, the update's settings */
  lv_dims enc, dec;           /* the config's model as encoder and as decoder (trainer_model_dims) */
  int run_enc, run_dec;
  int64_t tokens;             /* tokens per batch: B = tokens / L */
  int n_lengths;
  int64_t lengths[BENCH_MAX_LENGTHS]; /* ascending */
  int steps, warmup;          /* timed steps after warm-up steps, per length */
  int64_t probe_n;            /* square matmul probe n x n x n (0: skip) */
  int quick;
} bench_opts;

/* The oneDNN f32 and bf16 matmul rates of this machine (child process). */
typedef struct {
  int threads;
  int64_t n;                  /* square probe size */
  double square_best, square_mean; /* GFLOP/s */
  int64_t shape[3];           /* model's largest projection: tokens x in @ in x out */
  double shape_best;          /* GFLOP/s */
  int bf16;                   /* 1: the CPU has native bf16 and the bf16 rates below were measured */
  double square16_best, square16_mean, shape16_best; /* the same products in bf16 (operands rounded
                                                        per call, as model.precision=bf16 runs them) */
} bench_probe;

/* One (mode, L) run (child process). Times are seconds per step (means over the timed steps). */
typedef struct {
  int threads;
  char omp_env[32];           /* OMP_NUM_THREADS or "unset" */
  int64_t B, L;
  double fwd, bwd, upd, step; /* mean seconds per step: forward, backward, zero + clip + AdamW + codebooks */
  double step_min;            /* fastest timed step */
  double mm, round;           /* mean seconds per step inside the matmul products (mm_exec), and of them
                                 rounding operands to bf16 (dnn_ctx_times; 0 in f32) */
  double loss_first, loss_last; /* per-token/sample loss of the first and last step (sanity) */
  lv_model_flops fl;          /* of the measured model (lv_model_count_flops) */
  double rss_start;           /* bytes resident when the child starts (inherited from the parent) */
  double rss_ready;           /* after the model, buffers and params exist, before the first step */
  double rss_end;             /* after the last step */
  double hwm;                 /* peak resident bytes of the child (VmHWM) */
  double ws_bytes;            /* bf16 operand workspace (dnn_ctx_ws_bytes; 0 in f32) */
} bench_result;

/* Bytes of the memory plan's total with 2 AdamW moments (lv_model_plan_total). */
double bench_plan_bytes(const lv_dims *d, int64_t B, int64_t L);

/* A random batch (B, L): tokens uniform in [0, V), no padding; decoder targets are the next tokens of
 * a random stream, encoder labels uniform in [0, K). Also `longvq profile`'s batch. */
typedef struct {
  int32_t *tokens, *targets, *labels;
  uint8_t *mask, *tmask;
} bench_batch;
void bench_make_batch(bench_batch *bb, const lv_dims *d, int64_t B, int64_t L, uint64_t seed);
void bench_free_batch(bench_batch *bb);

/* One model stepped without a trainer, for bench and profile: parameters and codebooks from run.seed,
 * AdamW moments, codebook statistics, a random batch (B, L) (bench_make_batch). A step is what train
 * does on one rank with one micro-batch and nothing to reduce: zero the gradients and statistics,
 * forward, backward, gradient norm, clip and AdamW at the peak train.lr (the schedule does not change
 * the cost), codebook update. Local; allocates at init only. Not movable after init (the model keeps
 * a pointer to ctx). */
typedef struct {
  const lv_config *c;
  const lv_dims *d;
  const lv_layout *lay;
  dnn_ctx ctx;
  lv_model *m;
  bench_batch bb;
  lv_batch b;
  lv_fwd_opts fo;
  float *params, *state, *m1, *m2, *grads;
  double *n_s, *key_sums; /* the step's codebook statistics (counts, then key sums) */
  size_t n_stat;
  double task_scale, commit_scale;
} bench_model;

/* The clock (lv_now_s) at the marks of one step. */
enum { BM_START, BM_ZEROED, BM_FWD, BM_BWD, BM_GNORM, BM_ADAMW, BM_END, BM_MARKS };

void bench_model_init(bench_model *bm, const lv_config *c, const lv_dims *d, const lv_layout *lay, int64_t B,
                      int64_t L, mm_prec prec);
/* Step s (1, 2, ...; the dropout masks' counter): fills t[BM_MARKS], returns the loss per target
 * (decoder) or per sequence (encoder). */
double bench_model_step(bench_model *bm, int s, double t[BM_MARKS]);
void bench_model_free(bench_model *bm);

/* Child-side measurements (each in its own process). */
void bench_run_probe(const bench_opts *o, bench_probe *r);
void bench_run_model(const bench_opts *o, const lv_dims *d, int64_t L, bench_result *r);


#endif
