/* The model's parameter and state layout: every tensor of the spec's table, by its state_dict
 * name, as a slice of one flat float32 buffer (params; grads and AdamW moments mirror it).
 * Codebooks (`codebook.c_sum`, `codebook.c_count`) are model state, not trained: they live in a
 * separate flat buffer with its own table, so the optimizer, weight decay and clipping never see them.
 */
#ifndef LONGVQ_PARAMS_H
#define LONGVQ_PARAMS_H

#include <stddef.h>
#include <stdint.h>

#include "layers/norm.h"

/* Encoder (bidirectional EMA, classification) or decoder (causal LM): the config's model.mode, the
 * attention's mask. */
typedef enum { LV_MODE_ENCODER = 0, LV_MODE_DECODER = 1 } lv_mode;

/* Sizes of the model, fixed at build time of the layout (from config + dataset). */
typedef struct {
  int decoder;          /* 0 = encoder (bidirectional EMA, classification), 1 = decoder (causal LM) */
  int prenorm;          /* 1 = norm before each block (+ final_norm), 0 = after */
  norm_kind norm;
  int tie_embeddings;   /* decoder: LM head is embed.weight */
  int far_attention;
  int64_t V, K;         /* vocab size, classes (encoder) */
  int64_t D, Z, E, N, S, C, F, n_layers;
} lv_dims;

typedef enum {
  INIT_ZERO,
  INIT_ONE,
  INIT_NORMAL,          /* N(0, std) */
  INIT_ONE_PLUS_NORMAL, /* 1 + N(0, std) */
  INIT_ALT_SIGN_NORMAL, /* +1,-1,+1,... along the last dim, plus N(0, std) */
  INIT_UNIT_ROWS,       /* rows: independent random unit vectors times std (std = Z^(1/4)) */
} lv_init;

#define LV_NAME_MAX 80
typedef struct {
  char name[LV_NAME_MAX]; /* state_dict name, e.g. "layers.3.mixer.ema.delta" */
  int ndim;
  int64_t shape[2];
  int64_t numel;
  size_t offset;          /* in floats, into the flat buffer */
  lv_init init;
  double std;
  int decay;              /* AdamW weight decay applies (Linear weights, embed, lm_head) */
} lv_tensor;

/* Offsets (floats) of one layer's tensors in the flat param buffer; norms have weight/bias/scale as
 * the norm kind has them (SIZE_MAX when absent). */
typedef struct {
  size_t mnorm_w, mnorm_b, delta, alpha, beta, gamma, omega;
  size_t v_w, v_b, mx_w, mx_b, h_w, h_b, qk_gamma, q_beta, rel_pos;
  size_t fnorm_w, fnorm_b, fc1_w, fc1_b, fc2_w, fc2_b;
  size_t c_sum, c_count; /* into the state buffer */
} lv_layer_offsets;

#define LV_MAX_LAYERS 64
/* Largest model sizes (the config table's maxima, the dataset reader's vocab and class limits, and
 * lv_layout_build's checks). Far above any model that fits in memory, and small enough that no
 * size product of the layout or the memory plan comes near 2^63: the largest tensor, embed or
 * lm_head (V x D), is 2^40 floats, and a whole layout below 2^46. */
#define LV_MAX_WIDTH ((int64_t)1 << 16)    /* d_model D, z_dim Z, v_dim E, chunk_size C */
#define LV_MAX_FFN ((int64_t)1 << 20)      /* ffn_dim F */
#define LV_MAX_EMA_DIM ((int64_t)1 << 12)  /* ema_dim N */
#define LV_MAX_CODEBOOK ((int64_t)1 << 20) /* codebook_size S */
#define LV_MAX_VOCAB ((int64_t)1 << 24)    /* vocab_size V */
#define LV_MAX_CLASSES ((int64_t)1 << 24)  /* n_classes K */
typedef struct {
  lv_dims dims;
  lv_tensor *params;   /* trained tensors, spec order */
  int n_params;
  size_t n_param_floats;
  lv_tensor *state;    /* codebooks */
  int n_state;
  size_t n_state_floats;
  size_t embed, final_norm_w, final_norm_b, head_dense_w, head_dense_b, head_out_w, head_out_b, lm_head;
  lv_layer_offsets layer[LV_MAX_LAYERS];
} lv_layout;

/* Builds the layout (allocates the two tensor tables: call lv_layout_free). Returns 0, or 1 with a
 * message in err if the dims are invalid. */
int lv_layout_build(lv_layout *lay, const lv_dims *dims, char *err, size_t cap);
void lv_layout_free(lv_layout *lay);
/* Initializes params and state per the spec, keyed by (seed, "init/<name>", element): the same
 * model at any rank count. */
void lv_layout_init(const lv_layout *lay, uint64_t seed, float *params, float *state);
/* Looks a tensor up by name in either table; NULL if absent. */
const lv_tensor *lv_layout_find(const lv_layout *lay, const char *name, int *is_state);
/* D' of the EMA: 2D (encoder) or D (decoder). */
static inline int64_t lv_dims_dprime(const lv_dims *d) { return d->decoder ? d->D : 2 * d->D; }

#endif
