/* The whole model in bf16 against f32 on a fixed batch (docs/layers.md, "Precision"): the same
 * parameters, codebooks and batch through an f32 and a bf16 context; compares the loss, the whole
 * gradient and the VQ codes, encoder and decoder.
 *
 * Tolerance. A product in bf16 perturbs its output by about 2u relative (u = 2^-8, both operands
 * rounded; test_bf16 bounds this elementwise). Along the forward path to the loss there are
 * n_p = n_layers x 7 such products (v_proj, mx_proj, the attention logits, P V, h_proj, fc1, fc2) plus
 * the head's (encoder 2, decoder 1); to first order with gains of at most one between them (norms,
 * gated residuals, softmax), their relative perturbations add:
 *   |loss_bf16 - loss_f32| <= n_p 2u |loss_f32|.
 * The gradient's path holds the forward's products and one backward product per forward product:
 *   ||g_bf16 - g_f32|| <= 2 n_p 2u ||g_f32||  (L2 over every parameter).
 * The VQ codes change only where a key's two nearest codes are within the keys' perturbation of a
 * tie; reported, not bounded. The comparison must not be vacuous: the loss must differ at all. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "layers/model.h"
#include "trainer/base/alloc.h"
#include "tests/test_util.h"

typedef struct {
  float *grads;
  double loss;
  int32_t *codes;
} run_out;

static void run(const lv_layout *lay, const dnn_ctx *ctx, const float *params, const float *state, const lv_batch *b,
                int64_t B, int64_t L, run_out *out) {
  const lv_dims *d = &lay->dims;
  lv_model *m = lv_model_create(lay, B, L, ctx);
  lv_model_set_codebooks(m, state);
  lv_fwd_opts fo = {1, 99, 1, 0.0f, 0.0f};
  lv_fwd_stats st;
  size_t nl = (size_t)d->n_layers, S = (size_t)d->S, Z = (size_t)d->Z;
  double *n_s = calloc(nl * S + nl * S * Z, sizeof(double));
  lv_model_forward(m, params, b, &fo, &st, n_s, n_s + nl * S);
  double commit = 0;
  for (int i = 0; i < d->n_layers; i++) commit += st.commit_sum[i];
  const double ts = 1.0 / st.task_count, cs = 1.0 / st.valid, cw = 1e-2;
  out->loss = st.task_sum * ts + cw * commit * cs;
  out->grads = lv_alloc_floats(lay->n_param_floats);
  lv_model_backward(m, params, out->grads, b, &fo, ts, cs, cw);
  out->codes = malloc(sizeof(int32_t) * (size_t)(B * L) * nl);
  for (int i = 0; i < d->n_layers; i++)
    memcpy(out->codes + (size_t)i * (size_t)(B * L), lv_model_codes(m, i), sizeof(int32_t) * (size_t)(B * L));
  free(n_s);
  lv_model_free(m);
}

static void check(const char *name, lv_dims d, int64_t B, int64_t L, const dnn_ctx *c32, const dnn_ctx *c16) {
  lv_layout lay;
  char err[256];
  EXPECT(!lv_layout_build(&lay, &d, err, sizeof err), "%s", err);
  float *params = lv_alloc_floats(lay.n_param_floats), *state = lv_alloc_floats(lay.n_state_floats);
  lv_layout_init(&lay, 17, params, state);
  const int64_t BT = B * L;
  int32_t *tok = malloc(4 * (size_t)BT), *tgt = malloc(4 * (size_t)BT), lab[64];
  uint8_t *mask = malloc((size_t)BT), *tmask = malloc((size_t)BT);
  unsigned s = 1;
  for (int64_t i = 0; i < BT; i++) {
    s = s * 1664525u + 1013904223u;
    tok[i] = (int32_t)((s >> 8) % (unsigned)d.V);
    mask[i] = tmask[i] = 1;
  }
  for (int64_t i = 0; i < BT; i++) tgt[i] = tok[(i + 1) % BT];
  for (int64_t b = 0; b < B; b++) lab[b] = (int32_t)(b % d.K);
  lv_batch batch = {tok, mask, d.decoder ? tgt : NULL, d.decoder ? tmask : NULL, d.decoder ? NULL : lab, 0};
  run_out r32, r16;
  run(&lay, c32, params, state, &batch, B, L, &r32);
  run(&lay, c16, params, state, &batch, B, L, &r16);
  const double u = 0x1p-8;
  const int n_p = (int)d.n_layers * 7 + (d.decoder ? 1 : 2);
  double dg = 0, g2 = 0;
  for (size_t i = 0; i < lay.n_param_floats; i++) {
    double e = (double)r16.grads[i] - r32.grads[i];
    dg += e * e;
    g2 += (double)r32.grads[i] * r32.grads[i];
  }
  const double rel_loss = fabs(r16.loss - r32.loss) / fabs(r32.loss), rel_grad = sqrt(dg / g2);
  int64_t same = 0, n = BT * d.n_layers;
  for (int64_t i = 0; i < n; i++) same += r16.codes[i] == r32.codes[i];
  printf("%s: loss f32 %.6f bf16 %.6f, rel diff %.2e (bound %.2e); gradient rel L2 diff %.2e (bound %.2e); "
         "codes equal %.2f%%\n", name, r32.loss, r16.loss, rel_loss, n_p * 2 * u, rel_grad, 2 * n_p * 2 * u,
         100.0 * (double)same / (double)n);
  EXPECT(isfinite(r16.loss) && rel_loss <= n_p * 2 * u, "%s: loss rel diff %.3e > %.3e", name, rel_loss, n_p * 2 * u);
  EXPECT(rel_grad <= 2 * n_p * 2 * u, "%s: gradient rel diff %.3e > %.3e", name, rel_grad, 2 * n_p * 2 * u);
  EXPECT(r16.loss != r32.loss, "%s: bf16 loss equals f32's exactly: was bf16 used?", name);
  free(r32.grads); free(r16.grads); free(r32.codes); free(r16.codes);
  free(params); free(state); free(tok); free(tgt); free(mask); free(tmask);
  lv_layout_free(&lay);
}

int main(void) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  dnn_ctx c32, c16;
  dnn_ctx_init(&c32);
  dnn_ctx_init(&c16);
  char isa[32];
  if (!dnn_cpu_has_bf16(isa, sizeof isa)) {
    printf("test_bf16_model: oneDNN runs at %s here, without native bf16: nothing to compare\n", isa);
    return tu_finish("test_bf16_model");
  }
  dnn_ctx_set_precision(&c16, MM_PREC_BF16);
  lv_dims enc = {.decoder = 0, .prenorm = 1, .norm = NORM_LAYERNORM, .tie_embeddings = 1, .far_attention = 1,
                 .V = 64, .K = 5, .D = 32, .Z = 16, .E = 48, .N = 4, .S = 16, .C = 16, .F = 64, .n_layers = 2};
  check("encoder, 2 layers, prenorm layernorm", enc, 4, 64, &c32, &c16);
  lv_dims dec = enc;
  dec.decoder = 1;
  dec.prenorm = 0;
  dec.norm = NORM_RMSNORM;
  check("decoder, 2 layers, postnorm rmsnorm", dec, 3, 64, &c32, &c16);
  dnn_ctx_free(&c32);
  dnn_ctx_free(&c16);
  return tu_finish("test_bf16_model");
}
