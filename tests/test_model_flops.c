/* The one count of model FLOPs (lv_model_count_flops, used by `train`'s gflops and by `longvq bench`)
 * against a closed form written independently from the plans' shapes (layers/vq_attn.h), for the
 * encoder and the decoder, with far attention on and off, over several chunks per sequence and
 * several sequences (the decoder's previous-chunk products run over G-1 of the G chunks):
 *   projections   6 T (D E + D M + E D + 2 D F), M = 2D+Z+E    (forward 2 m n k; backward dx + dW)
 *   VQ distances  2 T Z S                                        (forward only: Cb is a constant)
 *   near          2 C^2 (G + G') (3 Z + 3 E)     (lg, pv forward; dp, dq, dk, dv backward)
 *   far           2 T S (2 Z + 3 E)              (q Cb^T, rho U forward; dO U^T, dA Cb, rho^T dO)
 *   recompute     2 C^2 (G + G') Z + 2 T S Z     (logits the backward recomputes; not model FLOPs)
 *   head          encoder 6 B (D^2 + D K), decoder 6 T D V
 * with T = B L tokens, G = T / C chunks, G' = G - 1 (decoder) or 0, per layer except the head. */
#include <stdio.h>

#include "layers/model.h"
#include "tests/test_util.h"

static void check(const char *name, lv_dims d, const dnn_ctx *ctx) {
  const int64_t B = 3, L = 16; /* C = 4: 4 chunks per sequence, G = 12 */
  lv_layout lay;
  char err[256];
  if (lv_layout_build(&lay, &d, err, sizeof err)) {
    EXPECT(0, "%s: layout: %s", name, err);
    return;
  }
  lv_model *m = lv_model_create(&lay, B, L, ctx);
  const lv_model_flops f = lv_model_count_flops(m);
  const double T = (double)(B * L), D = (double)d.D, Z = (double)d.Z, E = (double)d.E, F = (double)d.F;
  const double S = (double)d.S, C = (double)d.C, nl = (double)d.n_layers, M = 2 * D + Z + E;
  const double G = T / C, Gp = d.decoder ? G - 1 : 0, far = d.far_attention ? 1 : 0;
  const double proj = nl * 6 * T * (D * E + D * M + E * D + 2 * D * F), vq = nl * 2 * T * Z * S;
  const double attn = nl * (2 * C * C * (G + Gp) * (3 * Z + 3 * E) + far * 2 * T * S * (2 * Z + 3 * E));
  const double recompute = nl * (2 * C * C * (G + Gp) * Z + far * 2 * T * S * Z);
  const double head = d.decoder ? 6 * T * D * (double)d.V : 6 * (double)B * (D * D + D * (double)d.K);
  EXPECT(f.proj == proj, "%s: projections %.0f, want %.0f", name, f.proj, proj);
  EXPECT(f.vq == vq, "%s: VQ %.0f, want %.0f", name, f.vq, vq);
  EXPECT(f.attn == attn, "%s: attention %.0f, want %.0f", name, f.attn, attn);
  EXPECT(f.attn_recompute == recompute, "%s: recompute %.0f, want %.0f", name, f.attn_recompute, recompute);
  EXPECT(f.head == head, "%s: head %.0f, want %.0f", name, f.head, head);
  EXPECT(f.model == proj + vq + attn + head, "%s: model %.0f, want %.0f", name, f.model, proj + vq + attn + head);
  printf("%-22s %.0f model FLOPs per token (+ %.0f recomputed)\n", name, f.model / T, f.attn_recompute / T);
  lv_model_free(m);
  lv_layout_free(&lay);
}

int main(void) {
  dnn_ctx ctx;
  dnn_ctx_init(&ctx);
  const lv_dims base = {.prenorm = 1, .tie_embeddings = 1, .far_attention = 1, .V = 11, .K = 3, .D = 8, .Z = 4,
                        .E = 12, .N = 2, .S = 5, .C = 4, .F = 20, .n_layers = 3};
  for (int dec = 0; dec < 2; dec++)
    for (int far = 0; far < 2; far++) {
      lv_dims d = base;
      d.decoder = dec;
      d.far_attention = far;
      char name[64];
      snprintf(name, sizeof name, "%s far %s", dec ? "decoder" : "encoder", far ? "on" : "off");
      check(name, d, &ctx);
    }
  dnn_ctx_free(&ctx);
  return tu_finish("test_model_flops");
}
