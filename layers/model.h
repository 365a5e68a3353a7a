/* The whole LongVQ model (spec: "Forward pass"), fast float32 path: embedding, n_layers of
 * (mixer, feed-forward), final norm, head, loss. One lv_model serves one micro-batch shape (B, L);
 * its activations and scratch live in arenas sized by lv_model_plan (a pure function that can print
 * the memory plan), allocated once by lv_model_init. Nothing is allocated in forward/backward.
 *
 * Loss normalization is global (spec: Optimization): forward returns partial SUMS over this
 * micro-batch; the trainer knows the global denominators and passes the scales to backward:
 *   loss = task_sum * task_scale + commit_weight * sum_i commit_sum_i * commit_scale
 *   task_scale = 1 / (global samples) [encoder] or 1 / (global counted targets) [decoder]
 *   commit_scale = 1 / (global valid tokens)
 */
#ifndef LONGVQ_MODEL_H
#define LONGVQ_MODEL_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "layers/dnn.h"
#include "layers/linear.h"
#include "layers/params.h"

/* One micro-batch, B sequences of L positions (row-major (B, L)). */
typedef struct {
  const int32_t *tokens;      /* (B, L) inputs; decoder: t_0..t_{L-1} */
  const uint8_t *mask;        /* (B, L) m_t of the inputs */
  const int32_t *targets;     /* decoder: (B, L) t_1..t_L; encoder: NULL */
  const uint8_t *target_mask; /* decoder: (B, L) m_1..m_L; encoder: NULL */
  const int32_t *labels;      /* encoder: (B); decoder: NULL */
  int64_t sample0;            /* index of sample 0 in the step's global batch (dropout keys) */
} lv_batch;

/* Randomness and mode of one forward. */
typedef struct {
  int training;     /* 0: dropout off (evaluation) */
  uint64_t seed;    /* run seed */
  uint32_t step;    /* optimizer step from 1 (dropout keys) */
  float dropout, hidden_dropout;
} lv_fwd_opts;

/* Partial sums of one forward over its micro-batch. */
typedef struct {
  double task_sum;                    /* sum of per-sample (encoder) / per-target (decoder) losses */
  double task_count;                  /* samples / counted targets */
  double correct;                     /* argmax == target */
  double valid;                       /* valid input tokens (commitment denominator) */
  double commit_sum[LV_MAX_LAYERS];   /* sum_t m_t ||k_t - Cb[code_t]||^2 per layer */
} lv_fwd_stats;

/* Memory plan of one model instance, in floats. */
typedef struct {
  size_t per_layer_act;   /* activations kept per layer for backward */
  size_t act;             /* all kept activations (layers + embedding + head) */
  size_t grad_scratch;    /* activation gradients of one layer at a time + layer scratch */
  size_t scratch;         /* forward/backward scratch shared by the layers */
} lv_model_mem;

typedef struct lv_model lv_model;

/* Pure: the memory plan for micro-batch (B, L). */
lv_model_mem lv_model_plan(const lv_dims *d, int64_t B, int64_t L);
/* The plan's total in floats: parameters, gradients, `optimizer_copies` optimizer moments (AdamW: 2),
 * codebook state, activations, activation gradients and scratch. The total lv_model_print_plan
 * prints and `longvq bench` compares the peak RSS with. */
size_t lv_model_plan_total(const lv_model_mem *mem, size_t param_floats, size_t state_floats, int optimizer_copies);
/* Prints the plan (and the given param/optimizer sizes) as a table. */
void lv_model_print_plan(FILE *f, const lv_dims *d, int64_t B, int64_t L, size_t param_floats, size_t state_floats,
                         int optimizer_copies);

/* The five projections of every layer (spec: v_proj, mx_proj, h_proj, fc1, fc2) over `rows` tokens:
 *   v_proj D -> E, mx_proj D -> M = 2D+Z+E, h_proj E -> D, fc1 D -> F, fc2 F -> D (all with bias).
 * lv_model_create builds its plans from these descriptors. */
enum { LV_PROJ_V, LV_PROJ_MX, LV_PROJ_H, LV_PROJ_FC1, LV_PROJ_FC2, LV_N_PROJ };
void lv_model_proj_descs(linear_desc out[LV_N_PROJ], const lv_dims *d, int64_t rows);

/* Builds the plans and allocates the arenas. `ctx` must outlive the model. */
lv_model *lv_model_create(const lv_layout *lay, int64_t B, int64_t L, const dnn_ctx *ctx);
void lv_model_free(lv_model *m);

/* Cb for every layer from the state buffer: once per step (the codebooks change only at the update). */
void lv_model_set_codebooks(lv_model *m, const float *state);

/* Forward over one micro-batch. Adds the step's codebook statistics into n_s (n_layers, S) and
 * key_sums (n_layers, S, Z), in double (both may be NULL in evaluation), and returns the partial sums.
 * logits_out (may be NULL): encoder (B, K), decoder (B*L, V) view of the model's logits. */
void lv_model_forward(lv_model *m, const float *params, const lv_batch *b, const lv_fwd_opts *o,
                      lv_fwd_stats *st, double *n_s, double *key_sums);
/* Called during backward as gradients become final: floats [lo, end) of the parameter layout hold
 * their complete gradient for this backward (lo decreases: head, layer n-1, ..., layer 0, embedding).
 * The trainer starts reducing those buckets while backward goes on. NULL = no hook. */
typedef void (*lv_grad_ready_fn)(void *ctx, size_t lo);
void lv_model_set_grad_hook(lv_model *m, lv_grad_ready_fn fn, void *ctx);
/* Backward of the last forward: grads (param layout) += d loss / d params with the scales above. */
void lv_model_backward(lv_model *m, const float *params, float *grads, const lv_batch *b, const lv_fwd_opts *o,
                       double task_scale, double commit_scale, double commit_weight);
/* After a forward: the codes (B*L) and keys (B*L, Z) of layer i (for re-seeding), and the logits. */
const int32_t *lv_model_codes(const lv_model *m, int layer);
const float *lv_model_keys(const lv_model *m, int layer);
const float *lv_model_logits(const lv_model *m);
/* After a decoder forward: each target's loss nll (B*L, row-major (B, L): row b*L+p predicts token p+1
 * of sample b), the very doubles summed into task_sum, 0 where the target does not count; NULL for
 * an encoder. */
const double *lv_model_target_nll(const lv_model *m);
/* After a forward: the first activation (in forward order) holding a NaN or Inf, as "layer i <site>"
 * or "embedding" / "final norm" / "logits" in where[cap]; returns 1 if one was found, else 0. */
int lv_model_find_nonfinite(const lv_model *m, char *where, size_t cap);
/* Matmul FLOPs of one forward + backward of this model instance (its micro-batch B x L), counted
 * from the shapes of the plans it executes: 2 m n k per product; a Linear's backward is dx and dW
 * (2x its forward). The VQ distances k Cb^T have no backward product and the far logits q Cb^T only
 * dq (the codebook is a constant). `model` is what MFU and `train`'s gflops are measured by: every
 * product once, without the logits the attention backward recomputes (`attn_recompute`, executed
 * work on top). Non-matmul work (EMA, norms, activations, softmax rows) is not counted. */
typedef struct {
  double proj;           /* the five projections of every layer, forward + backward */
  double vq;             /* VQ distances k Cb^T of every layer (forward only) */
  double attn;           /* VQ attention of every layer, forward + backward, without the recompute */
  double attn_recompute; /* logits recomputed by the attention backward (executed, not model FLOPs) */
  double head;           /* encoder head (per sample) or LM head, forward + backward */
  double model;          /* proj + vq + attn + head */
} lv_model_flops;
lv_model_flops lv_model_count_flops(const lv_model *m);

#endif
