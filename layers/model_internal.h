/* Internals shared by layers/model.c (arenas, embedding, heads, loss) and layers/block.c (one layer:
 * mixer + feed-forward). Not a public API. */
#ifndef LONGVQ_MODEL_INTERNAL_H
#define LONGVQ_MODEL_INTERNAL_H

#include "layers/head.h"
#include "layers/linear.h"
#include "layers/model.h"
#include "layers/vq.h"
#include "layers/vq_attn.h"

/* Activations one layer keeps from forward to backward; BT rows each. M = 2D+Z+E. */
typedef struct {
  float *x;          /* (BT, D) layer input (masked) */
  float *mn_saved;   /* (2 BT) mixer norm stats: of x (prenorm) or of s1 (postnorm) */
  float *xn;         /* (BT, D) Norm_mixer(x) (prenorm); == x (postnorm) */
  float *xm;         /* (BT, D) xn * m: the EMA input */
  float *ema_saved;  /* ema_saved_floats */
  float *mx;         /* (BT, D) dropout(EMA(xm)) */
  float *v_pre;      /* (BT, E) v_proj(xn) */
  float *v;          /* (BT, E) hdrop(silu(v_pre)) */
  float *base;       /* (BT, M) mx_proj(mx) */
  float *u;          /* (BT, D) sigmoid(base[:, 0:D]) */
  float *zz;         /* (BT, Z) silu(base[:, D:D+Z]) */
  float *r;          /* (BT, E) silu(base[:, D+Z:D+Z+E]) */
  float *qp, *kp;    /* (BT, Z) z*qk_gamma[0] + q_beta, z*qk_gamma[1] */
  float *q_saved, *k_saved; /* (2 BT) lnz stats */
  float *q, *k;      /* (BT, Z) lnz(.) * Z^-1/4 */
  int32_t *code;     /* (BT) */
  float *khat;       /* (BT, Z) Cb[code] */
  float *attn_saved; /* vq_attn_saved_floats */
  float *O;          /* (BT, E) */
  float *rO;         /* (BT, E) r * O */
  float *h_pre;      /* (BT, D) hx + h_proj(rO) */
  float *h;          /* (BT, D) dropout(silu(h_pre)) */
  float *s1;         /* (BT, D) x + u (h - x) */
  float *y;          /* (BT, D) s1 (prenorm) or Norm_mixer(s1) (postnorm) */
  float *fn_saved;   /* (2 BT) ffn norm stats: of y (prenorm) or of s2 (postnorm) */
  float *yn;         /* (BT, D) Norm_ffn(y) (prenorm); == y (postnorm) */
  float *f1_pre;     /* (BT, F) fc1(yn) */
  float *f1;         /* (BT, F) hdrop(silu(f1_pre)) */
  float *s2;         /* (BT, D) y + dropout(fc2(f1)) */
} lv_layer_act;

/* Gradients of one layer's activations (reused by every layer in backward). */
typedef struct {
  float *dxn, *dxm, *dmx, *dema, *dv, *dv_pre, *dbase, *du, *dzz, *dr, *dqp, *dkp, *dq, *dk;
  float *dO, *drO, *dh, *dh_pre, *ds1, *dy, *dyn, *df, *df2, *df1, *df1_pre, *ds2;
} lv_layer_grad;

struct lv_model {
  lv_dims d;
  const lv_layout *lay;
  const dnn_ctx *ctx;
  int64_t B, L, BT, M;
  lv_model_mem mem;
  float *act_arena, *grad_arena, *scratch;
  lv_layer_act la[LV_MAX_LAYERS];
  lv_layer_grad lg;
  float *x_out;           /* (BT, D) output of the last layer */
  float *xf, *ff_saved;   /* (BT, D), (2 BT): final_norm (prenorm), else xf == x_out */
  float *logits, *xent_saved, *dlogits;
  float *head_saved;      /* encoder head */
  float *mask_f, *tmask_f;/* (BT) float masks of inputs and targets */
  float *dx_a, *dx_b;     /* (BT, D) ping-pong gradients of layer inputs */
  float *cb;              /* (n_layers, S, Z) codebooks of this step */
  double *stat_ns, *stat_keys; /* throwaway statistics for evaluation forwards */
  double *target_nll;     /* decoder: (BT) each target's nll of the last forward (0 if not counted) */
  lv_grad_ready_fn ready_fn;
  void *ready_ctx;
  linear_plan v_proj, mx_proj, h_proj, fc1, fc2;
  vq_plan vq;
  vq_attn_plan attn;
  head_plan head;
  lm_head_plan lm;
};

/* p[0..n) = 0 on all threads (a serial memset of the per-layer gradient arena cost ~5% of a step);
 * layers/block.c. */
void lv_zero_floats(float *p, size_t n);

/* One layer (layers/block.c). */
void lv_block_forward(lv_model *m, int i, const float *params, const lv_batch *b, const lv_fwd_opts *o,
                      lv_fwd_stats *st, double *n_s, double *key_sums, float *x_next);
/* dx_in += d loss / d x_i given dx_next = d loss / d x_{i+1}. */
void lv_block_backward(lv_model *m, int i, const float *params, float *grads, const lv_fwd_opts *o,
                       const lv_batch *b, double commit_w, const float *dx_next, float *dx_in);

#endif
