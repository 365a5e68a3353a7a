/* The training run: setup from a config, the step loop, evaluation, model files. */
#ifndef LONGVQ_TRAIN_H
#define LONGVQ_TRAIN_H

#include <stdint.h>
#include <stdio.h>

#include "io/config.h"
#include "io/dataset.h"
#include "layers/dnn.h"
#include "layers/model.h"
#include "layers/params.h"
#include "trainer/eval_pos.h"
#include "trainer/reducer.h"
#include "trainer/stats.h"

/* One split read in the model's batch layout, for this rank's micro-batches. */
typedef struct {
  lv_dataset *ds;
  int64_t n;                 /* samples in the split */
  int lm;                    /* task is language modelling */
  int32_t *raw;              /* (mb, L+1) LM windows */
  uint8_t *rawmask;          /* (mb, L+1) LM: the windows' eval_mask (all 1 if the split has none) */
  int32_t *tokens, *targets, *labels;
  uint8_t *mask, *tmask;
} lv_split;

/* Data order (checkpointed as samples_seen): sample g of the run is perm_e[g mod n], e = g div n. */
typedef struct {
  int64_t samples_seen;      /* global samples consumed so far: the data-order state */
  int64_t *perm, perm_epoch; /* (n) data order of epoch perm_epoch */
  int64_t *gidx;             /* (Bg) this step's global batch, in global-batch order */
} lv_data_order;

/* This step's dead-code re-seeding plan (spec: "Vector quantization of keys"). */
typedef struct {
  int64_t *at;               /* (n_layers, S): row (in this rank's share) whose key re-seeds, or -1 */
  int64_t *pos;              /* (n_layers, S): position in that row */
  uint8_t *maybe;            /* (S) re-seed candidates of one layer */
} lv_reseed_plan;

/* This rank's optimizer state (checkpointed): AdamW moments over the ranges it updates. */
typedef struct {
  float *m, *v;              /* (n_moments) each */
  lv_range shard[4096];     /* ranges this rank updates (ZeRO-1 segments, or all buckets) */
  size_t shard_off[4096];    /* offset of each range in m and v */
  int n_shard;
  size_t n_moments;
} lv_optim_state;

/* The step's reduction: what travels, and the communication thread that moves it. */
typedef struct {
  float *grads;              /* (grad_pad) gradients in the parameter layout, padded for the reducer */
  double *stats;             /* (n_stat_pad) the step's statistics region, layout `sl` (trainer/stats.h) */
  lv_stat_layout sl;
  size_t grad_pad, n_stat_pad;
  reducer *rd;
  int last_micro;            /* backward of the step's last micro-batch: gradients may be reduced */
  double prev_compute_s;     /* this rank's compute time of the previous step (straggler hint) */
} lv_reduction;

/* The run's log (rank 0): metrics file and timers. */
typedef struct {
  FILE *metrics;             /* rank 0 in training; NULL otherwise */
  char path[LV_PATH_MAX];
  double t_start, steps_timed, time_timed;
  double flops_per_token;
} lv_run_log;

/* The trainer: the model and its sizes for the whole run, plus one part per owner above. */
typedef struct {
  lv_config cfg;
  char *config_yaml;
  lv_dims dims;
  lv_layout lay;
  dnn_ctx ctx;
  int rank, world;
  int64_t L, Bg, b_rank, mb, n_micro;
  lv_split train;            /* training only */
  lv_split eval;             /* the split evaluations run on: data.val in training, the chosen one in eval */
  float *params, *state;     /* (grad_pad) parameters, padded like the gradients; codebook state */
  lv_model *model;
  lv_reduction red;
  lv_optim_state opt;
  lv_data_order order;
  lv_reseed_plan reseed;
  lv_run_log log;
  int64_t restart_count;     /* times this run was resumed */
  int stop_requested;        /* after the step: every rank voted through the statistics reduction */
  char nonfinite_where[128]; /* where this step's first NaN/Inf appeared */
} lv_trainer;

/* The model sizes the config's model.* keys describe, with vocabulary V and classes K given (train:
 * from the dataset, checked against model.vocab_size / model.n_classes; bench: those keys or its
 * defaults). F is model.ffn_dim, or 2 * d_model when that is 0. */
lv_dims trainer_model_dims(const lv_config *c, int64_t V, int64_t K);

/* Local. 0 if this CPU runs bf16 matmuls natively (model.precision: bf16 can be used); else 1 and
 * why[0..cap) says what is missing and what to do, for `train`'s, `eval`'s and `bench`'s refusal. */
int trainer_bf16_missing(char *why, size_t cap);

/* Collective. Builds everything from cfg (datasets, layout, model, arenas); bad input: a clear
 * error on rank 0 and every rank exits with LV_EXIT_USAGE. need_train = 1: the training split
 * (data.train) sizes the model and data.val, if set, is the eval split; need_train = 0 (`longvq
 * eval`): only the split to evaluate is opened, split_val of data.val (or of data.train if no
 * data.val), into t->eval, and sizes the model. */
void trainer_setup(lv_trainer *t, const lv_config *cfg, int need_train);
/* Collective. Initializes the parameters (seed) or loads them from a model file; a bad file is an
 * error naming `from` (the option or key that named it) and the problem, exit code 2. `from` is
 * unused (may be NULL) when model_file is NULL. */
void trainer_init_params(lv_trainer *t, const char *model_file, const char *from);
/* Collective. Runs train.steps optimizer steps, logging and evaluating. Returns an exit code. */
int trainer_run(lv_trainer *t);
/* Collective. Mean loss / accuracy (or bits per token) over a split (max_batches 0 = all). pb (may be
 * NULL; used only for an LM split): its buckets (lv_pos_buckets_default/parse, sums zero) get the
 * loss sums and counts by position, reduced over the ranks with the other sums. */
void trainer_evaluate(lv_trainer *t, lv_split *sp, int64_t max_batches, double *loss, double *acc, double *tokens,
                      lv_pos_buckets *pb);
void trainer_free(lv_trainer *t);
/* Collective (trainer/ckpt_run.c). checkpoint.resume: "" -> 0 (fresh); "auto" -> the newest valid
 * checkpoint of run.dir, or 0 if none; a path -> that file. Loads parameters, codebooks, AdamW
 * moments (this rank's ranges) and the data-order state; refuses shape-changing config changes,
 * and a run.dir entry that is not a regular file where a later checkpoint will be written.
 * Returns the number of steps already done. */
int64_t trainer_resume(lv_trainer *t);
/* Collective. Writes <run.dir>/ckpt_<step>.h5 atomically and rotates old ones. */
void trainer_checkpoint(lv_trainer *t, int64_t step);

#endif
