/* model.precision bf16, product by product and layer by layer (docs/layers.md, "Precision"):
 *   1. bf16_from_f32 (the instruction where built for it) and its portable twin bf16_from_f32_ref round
 *      exactly as oneDNN's f32 -> bf16 reorder does (bit for bit), at every tail length;
 *   2. every mm shape the layers use, in a bf16 context, against an exact (double) reference, within
 *      the elementwise bound below (and the f32 plan within its own, tighter one);
 *   3. the Linear layer (the five projections, the heads) bf16 against its f32 path, forward and
 *      backward, from the same inputs;
 *   4. VQ attention's forward bf16 against f32 within a bound carried through the softmax;
 *   5. the VQ distances stay f32: the same codes from both contexts.
 *
 * The bound. bf16 keeps 8 significant bits: rounding to nearest has unit roundoff u = 2^-8. A product
 * of two rounded operands is a b (1 + d1)(1 + d2), |d| <= u, so it is off by at most (2u + u^2) |a b|.
 * oneDNN accumulates the K products (and the bias, and the old C of a sum post-op) in f32: at most
 * g_K = (K + 2) 2^-24 relative to the sum of the magnitudes (first order, each partial sum rounded).
 * So, elementwise, with P = |A| |B| (the product of the magnitudes) and X = |bias| + |C_old|:
 *   |C_bf16 - C_exact| <= (2u + u^2 + g_K) P + g_K X,      |C_f32 - C_exact| <= g_K (P + X),
 * and a fused activation multiplies these by its Lipschitz constant (sigmoid 1/4, silu 1.0998,
 * gelu_erf 1.1290) plus the eltwise kernel's own error (oneDNN: a few ulp; allowed 2^-20 |C| + 2^-30).
 * The tests use exactly these bounds: no factor was adjusted to make them pass. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "layers/dnn.h"
#include "layers/ref/act_ref.h"
#include "layers/linear.h"
#include "layers/vq.h"
#include "layers/vq_attn.h"
#include "tests/test_util.h"

static const double U = 0x1p-8;         /* bf16 unit roundoff */
static const double EPS_BF = 2 * 0x1p-8 + 0x1p-16; /* 2u + u^2 */

static double gam(int64_t K) { return (double)(K + 2) * 0x1p-24; }

static float frand(unsigned *s) { *s = *s * 1664525u + 1013904223u; return (float)((*s >> 8) * 0x1p-24 - 0.5); }

/* One activated value by the layers' double reference twin (layers/ref/act_ref.h). */
static double act_ref(mm_act a, double x) {
  double y;
  act_forward_ref(a, &y, &x, 1);
  return y;
}

static double act_lip(mm_act a) {
  switch (a) {
    case MM_ACT_SILU: return 1.0998;
    case MM_ACT_SIGMOID: return 0.25;
    case MM_ACT_GELU_ERF: return 1.1290;
    default: return 1.0;
  }
}

/* ---- 1. the conversion ---------------------------------------------------------------------- */

static void reorder_to_bf16(const dnn_ctx *ctx, uint16_t *dst, const float *src, int64_t n) {
  dnnl_memory_desc_t smd, dmd;
  dnnl_dims_t dims = {n};
  dnnl_memory_desc_init_by_tag(&smd, 1, dims, dnnl_f32, dnnl_a);
  dnnl_memory_desc_init_by_tag(&dmd, 1, dims, dnnl_bf16, dnnl_a);
  dnnl_primitive_desc_t pd;
  dnnl_primitive_t r;
  dnnl_memory_t sm, dm;
  EXPECT(dnnl_reorder_primitive_desc_create(&pd, &smd, ctx->engine, &dmd, ctx->engine, NULL) == dnnl_success, "pd");
  dnnl_primitive_create(&r, pd);
  dnnl_memory_create(&sm, &smd, ctx->engine, (void *)src);
  dnnl_memory_create(&dm, &dmd, ctx->engine, dst);
  dnnl_exec_arg_t args[2] = {{DNNL_ARG_FROM, sm}, {DNNL_ARG_TO, dm}};
  dnnl_primitive_execute(r, ctx->stream, 2, args);
  dnnl_stream_wait(ctx->stream);
  dnnl_memory_destroy(sm);
  dnnl_memory_destroy(dm);
  dnnl_primitive_destroy(r);
  dnnl_primitive_desc_destroy(pd);
}

static float from_bits(uint32_t u) {
  float f;
  memcpy(&f, &u, sizeof f);
  return f;
}

static void test_conversion(const dnn_ctx *ctx) {
  /* hand-checked cases: ties to even, carry into the exponent, overflow, subnormal, NaN */
  static const struct { uint32_t in; uint16_t out; const char *what; } cases[] = {
      {0x3f800000u, 0x3f80, "1"},
      {0x3f808000u, 0x3f80, "1 + 2^-8: tie, stays even"},
      {0x3f818000u, 0x3f82, "1 + 3 2^-8: tie, rounds up to even"},
      {0x3f808001u, 0x3f81, "just above the tie"},
      {0x3f7fffffu, 0x3f80, "carry into the exponent"},
      {0x7f7fffffu, 0x7f80, "largest float overflows to Inf"},
      {0xff800000u, 0xff80, "-Inf"},
      {0x00400000u, 0x0000, "subnormal to +0"},
      {0x80400000u, 0x8000, "subnormal to -0"},
      {0x7fa00000u, 0x7fe0, "signalling NaN becomes quiet"},
      {0xffc00001u, 0xffc0, "-NaN stays NaN"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    float f = from_bits(cases[i].in);
    uint16_t h, r;
    bf16_from_f32(&h, &f, 1);
    bf16_from_f32_ref(&r, &f, 1);
    EXPECT(h == cases[i].out, "%s: 0x%08x -> 0x%04x, want 0x%04x", cases[i].what, cases[i].in, h, cases[i].out);
    EXPECT(r == cases[i].out, "%s (ref): 0x%08x -> 0x%04x, want 0x%04x", cases[i].what, cases[i].in, r, cases[i].out);
  }
  /* random bit patterns (every exponent, NaNs and subnormals included): the same bits as oneDNN */
  const int64_t n = 1 << 20;
  float *x = malloc(sizeof(float) * (size_t)n);
  uint16_t *mine = malloc(2 * (size_t)n), *dnn = malloc(2 * (size_t)n);
  unsigned s = 7;
  for (int64_t i = 0; i < n; i++) {
    s = s * 1664525u + 1013904223u;
    uint32_t hi = s;
    s = s * 1664525u + 1013904223u;
    x[i] = from_bits((hi & 0xffff0000u) | (s >> 16));
  }
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) x[i] = from_bits(cases[i].in);
  uint16_t *ref = malloc(2 * (size_t)n);
  bf16_from_f32(mine, x, (size_t)n);
  bf16_from_f32_ref(ref, x, (size_t)n);
  reorder_to_bf16(ctx, dnn, x, n);
  int64_t differ = 0, first = -1, differ_ref = 0;
  for (int64_t i = 0; i < n; i++) {
    if (mine[i] != dnn[i]) {
      differ++;
      if (first < 0) first = i;
    }
    differ_ref += ref[i] != dnn[i];
  }
  EXPECT(differ_ref == 0, "bf16_from_f32_ref: %lld of %lld differ from oneDNN", (long long)differ_ref, (long long)n);
  /* every tail length of the vector loop (32 a step, then masked 16s), from unaligned starts; nothing
   * written past the end */
  for (int64_t len = 0; len <= 100; len++)
    for (int64_t off = 0; off < 3; off++) {
      for (int64_t i = 0; i < 128; i++) mine[i] = 0xabcd;
      bf16_from_f32(mine, x + 1000 * len + off, (size_t)len);
      for (int64_t i = 0; i < 128; i++) {
        uint16_t want = i < len ? dnn[1000 * len + off + i] : 0xabcd;
        EXPECT(mine[i] == want, "length %lld at offset %lld, element %lld: 0x%04x, want 0x%04x", (long long)len,
               (long long)off, (long long)i, mine[i], want);
      }
    }
  bf16_from_f32(mine, x, (size_t)n); /* again whole, for the report below */
  uint32_t fb = 0;
  if (first >= 0) memcpy(&fb, &x[first], 4);
  printf("conversion: %lld random floats, %lld differ from oneDNN's reorder\n", (long long)n, (long long)differ);
  EXPECT(differ == 0, "%lld of %lld differ from oneDNN; first 0x%08x -> 0x%04x, oneDNN 0x%04x", (long long)differ,
         (long long)n, fb, first >= 0 ? mine[first] : 0, first >= 0 ? dnn[first] : 0);
  /* and the value round trip is within u relative for normal numbers */
  for (int64_t i = 0; i < 1000; i++) {
    float v = frand(&s) * 1000.0f, back;
    uint16_t h;
    bf16_from_f32(&h, &v, 1);
    back = f32_from_bf16(h);
    EXPECT(fabs((double)back - v) <= U * fabs((double)v), "round trip %g -> %g", v, back);
  }
  free(x);
  free(mine);
  free(ref);
  free(dnn);
}

/* ---- 2. products ------------------------------------------------------------------------------ */

typedef struct {
  double max_bf, max_f32, worst_ratio;
} mm_report;

static void run_case(const dnn_ctx *c32, const dnn_ctx *c16, mm_desc d, const char *name) {
  mm_plan p32 = {0}, p16 = {0};
  mm_plan_init(&p32, c32, d);
  mm_plan_init(&p16, c16, d);
  EXPECT(p16.bf16 == 1 && p32.bf16 == 0, "%s: plan precisions %d %d", name, p16.bf16, p32.bf16);
  d = p32.d;
  int64_t rows_a = d.trans_a ? d.K : d.M, rows_b = d.trans_b ? d.N : d.K;
  int64_t bsa = d.batch_stride_a < 0 ? 0 : (d.batch_stride_a ? d.batch_stride_a : rows_a * d.lda);
  int64_t bsb = d.batch_stride_b < 0 ? 0 : (d.batch_stride_b ? d.batch_stride_b : rows_b * d.ldb);
  int64_t bsc = d.batch_stride_c ? d.batch_stride_c : d.M * d.ldc;
  int64_t na = bsa * d.batch + rows_a * d.lda, nb = bsb * d.batch + rows_b * d.ldb, nc = bsc * d.batch;
  float *A = malloc(sizeof(float) * na), *B = malloc(sizeof(float) * nb);
  float *C32 = malloc(sizeof(float) * nc), *C16 = malloc(sizeof(float) * nc), *bias = malloc(sizeof(float) * d.N);
  double *R = malloc(sizeof(double) * nc), *P = calloc((size_t)nc, sizeof(double)), *X = calloc((size_t)nc, sizeof(double));
  unsigned s = 42;
  for (int64_t i = 0; i < na; i++) A[i] = frand(&s);
  for (int64_t i = 0; i < nb; i++) B[i] = frand(&s);
  for (int64_t i = 0; i < nc; i++) R[i] = C32[i] = C16[i] = frand(&s);
  for (int64_t i = 0; i < d.N; i++) bias[i] = frand(&s);
  for (int64_t b = 0; b < d.batch; b++)
    for (int64_t m = 0; m < d.M; m++)
      for (int64_t n = 0; n < d.N; n++) {
        double acc = d.bias ? bias[n] : 0, mag = 0;
        for (int64_t k = 0; k < d.K; k++) {
          double a = d.trans_a ? A[b * bsa + k * d.lda + m] : A[b * bsa + m * d.lda + k];
          double w = d.trans_b ? B[b * bsb + n * d.ldb + k] : B[b * bsb + k * d.ldb + n];
          acc += a * w;
          mag += fabs(a * w);
        }
        int64_t i = b * bsc + m * d.ldc + n;
        X[i] = (d.bias ? fabs(bias[n]) : 0) + (d.accumulate ? fabs(R[i]) : 0);
        P[i] = mag;
        R[i] = d.accumulate ? R[i] + acc : act_ref(d.act, acc);
      }
  mm_exec(&p32, c32, C32, A, B, d.bias ? bias : NULL);
  mm_exec(&p16, c16, C16, A, B, d.bias ? bias : NULL);
  const double lip = act_lip(d.act), g = gam(d.K);
  double max16 = 0, max32 = 0, worst = 0;
  int64_t bad16 = 0, bad32 = 0;
  for (int64_t b = 0; b < d.batch; b++)
    for (int64_t m = 0; m < d.M; m++)
      for (int64_t n = 0; n < d.N; n++) {
        int64_t i = b * bsc + m * d.ldc + n;
        double act_slack = d.act != MM_ACT_NONE ? 0x1p-20 * fabs(R[i]) + 0x1p-30 : 0;
        double b16 = lip * ((EPS_BF + g) * P[i] + g * X[i]) + act_slack;
        double b32 = lip * g * (P[i] + X[i]) + act_slack;
        double e16 = fabs(C16[i] - R[i]), e32 = fabs(C32[i] - R[i]);
        if (!(e16 <= b16)) bad16++;
        if (!(e32 <= b32)) bad32++;
        if (e16 > max16) max16 = e16;
        if (e32 > max32) max32 = e32;
        if (b16 > 0 && e16 / b16 > worst) worst = e16 / b16;
      }
  printf("%-34s bf16 max err %.3e (worst err/bound %.2f), f32 max err %.3e\n", name, max16, worst, max32);
  EXPECT(bad16 == 0, "%s: %lld bf16 outputs outside the bound", name, (long long)bad16);
  EXPECT(bad32 == 0, "%s: %lld f32 outputs outside the bound", name, (long long)bad32);
  /* not vacuous: the bf16 plan really rounded (its error is of bf16's size, far above f32's) */
  EXPECT(max16 > 16 * max32 && max16 > 1e-5, "%s: bf16 error %.3e is not above f32's %.3e: not rounded?", name, max16,
         max32);
  mm_plan_free(&p32);
  mm_plan_free(&p16);
  free(A); free(B); free(C32); free(C16); free(bias); free(R); free(P); free(X);
}

static void test_products(const dnn_ctx *c32, const dnn_ctx *c16) {
  run_case(c32, c16, (mm_desc){.batch = 1, .M = 7, .N = 5, .K = 9}, "plain");
  run_case(c32, c16, (mm_desc){.batch = 1, .M = 37, .N = 45, .K = 64, .trans_b = 1, .bias = 1}, "linear fwd (B^T + bias)");
  run_case(c32, c16, (mm_desc){.batch = 1, .M = 40, .N = 33, .K = 211, .trans_a = 1, .accumulate = 1},
           "weight grad (A^T, +=)");
  run_case(c32, c16, (mm_desc){.batch = 1, .M = 33, .N = 17, .K = 64, .trans_b = 1, .bias = 1, .act = MM_ACT_SILU},
           "bias+silu");
  run_case(c32, c16, (mm_desc){.batch = 1, .M = 8, .N = 9, .K = 40, .trans_b = 1, .bias = 1, .act = MM_ACT_SIGMOID},
           "bias+sigmoid");
  run_case(c32, c16, (mm_desc){.batch = 1, .M = 8, .N = 9, .K = 40, .trans_b = 1, .bias = 1, .act = MM_ACT_GELU_ERF},
           "bias+gelu_erf");
  run_case(c32, c16, (mm_desc){.batch = 1, .M = 5, .N = 4, .K = 6, .lda = 10, .ldc = 9}, "strided A and C");
  run_case(c32, c16, (mm_desc){.batch = 1, .M = 5, .N = 4, .K = 6, .trans_a = 1, .trans_b = 1, .lda = 8, .ldb = 7},
           "both transposed, strided");
  run_case(c32, c16, (mm_desc){.batch = 3, .M = 4, .N = 5, .K = 6, .trans_b = 1, .batch_stride_b = -1},
           "batched, B broadcast");
  /* VQ attention's chunk-batched shapes (C 8, Z 16, E 24, S 8, decoder W = 2C, G = 6 chunks) */
  const int64_t C = 8, Z = 16, E = 24, S = 8, W = 16, G = 6;
  run_case(c32, c16, (mm_desc){.batch = G, .M = C, .N = C, .K = Z, .trans_b = 1, .batch_stride_a = C * Z,
                               .batch_stride_b = C * Z, .ldc = W, .batch_stride_c = C * W}, "attn near logits Q K^T");
  run_case(c32, c16, (mm_desc){.batch = G, .M = C, .N = E, .K = C, .lda = W, .batch_stride_a = C * W,
                               .batch_stride_b = C * E, .batch_stride_c = C * E, .accumulate = 1}, "attn P V (+=)");
  run_case(c32, c16, (mm_desc){.batch = G, .M = C, .N = Z, .K = C, .trans_a = 1, .lda = W, .batch_stride_a = C * W,
                               .batch_stride_b = C * Z, .batch_stride_c = C * Z, .accumulate = 1}, "attn dK (A^T +=)");
  run_case(c32, c16, (mm_desc){.batch = G, .M = S, .N = E, .K = C, .trans_a = 1, .batch_stride_a = C * S,
                               .batch_stride_b = C * E, .batch_stride_c = S * E}, "attn far rho^T dO");
}

/* ---- 2b. tiles: a bf16 product rounds and multiplies tile by tile (layers/dnn.h); a context with
 * 4096-element tiles cuts these shapes into several tiles and a shorter last one, checked first, and
 * each product must meet the same bound as whole. */

static void expect_tiles(const dnn_ctx *c16t, mm_desc d, mm_tiling want, int64_t n_tiles, int64_t last,
                         const char *name) {
  mm_plan p = {0};
  mm_plan_init(&p, c16t, d);
  EXPECT(p.tiling == want && p.n_tiles == n_tiles && p.last == last,
         "%s: tiling %d, %lld tiles, the last %lld; want %d, %lld, %lld", name, (int)p.tiling, (long long)p.n_tiles,
         (long long)p.last, (int)want, (long long)n_tiles, (long long)last);
  mm_plan_free(&p);
}

static void tiled_case(const dnn_ctx *c32, const dnn_ctx *c16t, mm_desc d, mm_tiling want, int64_t n_tiles,
                       int64_t last, const char *name) {
  expect_tiles(c16t, d, want, n_tiles, last, name);
  run_case(c32, c16t, d, name);
}

static void test_tiles(const dnn_ctx *c32, const dnn_ctx *c16t) {
  /* rows: 4096 / K elements per tile, whole blocks of 64 rows */
  tiled_case(c32, c16t, (mm_desc){.batch = 1, .M = 200, .N = 45, .K = 64, .trans_b = 1, .bias = 1, .act = MM_ACT_SILU},
             MM_TILE_ROWS, 4, 8, "tiles: rows 64+64+64+8, bias+silu");
  tiled_case(c32, c16t, (mm_desc){.batch = 1, .M = 150, .N = 20, .K = 64, .lda = 70, .ldc = 33, .accumulate = 1},
             MM_TILE_ROWS, 3, 22, "tiles: rows, strided A and C, +=");
  tiled_case(c32, c16t, (mm_desc){.batch = 1, .M = 37, .N = 9, .K = 200, .trans_b = 1}, MM_TILE_ROWS, 2, 17,
             "tiles: rows 20+17 (fewer than 64)");
  /* depth: 4096 / (M + N) of the reduction per tile, whole blocks of 64; later tiles add into C */
  tiled_case(c32, c16t, (mm_desc){.batch = 1, .M = 40, .N = 33, .K = 211, .trans_a = 1, .accumulate = 1},
             MM_TILE_DEPTH, 4, 19, "tiles: weight grad, depth 3x64+19, +=");
  tiled_case(c32, c16t, (mm_desc){.batch = 1, .M = 30, .N = 20, .K = 300, .trans_a = 1, .trans_b = 1, .bias = 1},
             MM_TILE_DEPTH, 5, 44, "tiles: depth, B^T, bias once");
  tiled_case(c32, c16t, (mm_desc){.batch = 1, .M = 30, .N = 20, .K = 300, .trans_a = 1, .act = MM_ACT_SIGMOID},
             MM_TILE_NONE, 1, 1, "tiles: depth with an activation: whole");
  /* batch: 4096 / (A + B elements of one entry) entries per tile */
  tiled_case(c32, c16t, (mm_desc){.batch = 7, .M = 32, .N = 32, .K = 32, .trans_b = 1, .ldc = 64,
                                  .batch_stride_c = 32 * 64}, MM_TILE_BATCH, 4, 1, "tiles: batch 2+2+2+1, C slices");
  tiled_case(c32, c16t, (mm_desc){.batch = 7, .M = 40, .N = 20, .K = 50, .trans_b = 1, .batch_stride_b = -1,
                                  .accumulate = 1}, MM_TILE_BATCH, 4, 1, "tiles: batch, B broadcast, +=");
  tiled_case(c32, c16t, (mm_desc){.batch = 5, .M = 30, .N = 50, .K = 40, .trans_a = 1, .batch_stride_a = -1},
             MM_TILE_BATCH, 3, 1, "tiles: batch, A broadcast and transposed");
}

/* ---- 3. the Linear layer ----------------------------------------------------------------------- */

/* |got - want| <= sum of the two paths' bounds, elementwise; P, X as in run_case. */
static void cmp_bound(const char *name, const float *got16, const float *got32, const double *P, const double *X,
                      int64_t rows, int64_t cols, int64_t ld, int64_t K, double lip) {
  const double g = gam(K);
  double worst = 0, maxe = 0;
  int64_t bad = 0;
  for (int64_t r = 0; r < rows; r++)
    for (int64_t c = 0; c < cols; c++) {
      int64_t i = r * ld + c, j = r * cols + c;
      double bnd = lip * ((EPS_BF + 2 * g) * P[j] + 2 * g * X[j]);
      double e = fabs((double)got16[i] - got32[i]);
      if (!(e <= bnd)) bad++;
      if (e > maxe) maxe = e;
      if (bnd > 0 && e / bnd > worst) worst = e / bnd;
    }
  printf("  %-32s max |bf16 - f32| %.3e (worst / bound %.2f)\n", name, maxe, worst);
  EXPECT(bad == 0, "%s: %lld of %lld outside the bound", name, (long long)bad, (long long)(rows * cols));
  EXPECT(maxe > 0, "%s: bf16 and f32 agree exactly: not rounded?", name);
}

static void test_linear(const dnn_ctx *c32, const dnn_ctx *c16, linear_desc ld, const char *name) {
  linear_plan p32, p16;
  linear_plan_init(&p32, c32, ld);
  linear_plan_init(&p16, c16, ld);
  ld = p32.d;
  const int64_t R = ld.rows, I = ld.in, O = ld.out;
  float *x = malloc(sizeof(float) * R * ld.ldx), *W = malloc(sizeof(float) * O * I), *b = malloc(sizeof(float) * O);
  float *y32 = calloc((size_t)(R * ld.ldy), 4), *y16 = calloc((size_t)(R * ld.ldy), 4);
  float *pre32 = calloc((size_t)(R * O), 4), *pre16 = calloc((size_t)(R * O), 4);
  float *dy = malloc(sizeof(float) * R * ld.ldy), *sc = calloc((size_t)(R * O), 4);
  float *dx32 = calloc((size_t)(R * ld.ldx), 4), *dx16 = calloc((size_t)(R * ld.ldx), 4);
  float *dW32 = calloc((size_t)(O * I), 4), *dW16 = calloc((size_t)(O * I), 4);
  float *db32 = calloc((size_t)O, 4), *db16 = calloc((size_t)O, 4), *G = malloc(sizeof(float) * R * O);
  const size_t np = (size_t)(R * O > O * I ? (R * O > R * I ? R * O : R * I) : (O * I > R * I ? O * I : R * I));
  double *P = calloc(np, 8), *X = calloc(np, 8);
  unsigned s = 3;
  for (int64_t i = 0; i < R * ld.ldx; i++) x[i] = frand(&s);
  for (int64_t i = 0; i < O * I; i++) W[i] = frand(&s);
  for (int64_t i = 0; i < O; i++) b[i] = frand(&s);
  for (int64_t i = 0; i < R * ld.ldy; i++) dy[i] = frand(&s);
  const int act = ld.act != MM_ACT_NONE;
  printf("linear %s: rows %lld in %lld out %lld%s\n", name, (long long)R, (long long)I, (long long)O,
         act ? " (activation)" : "");
  /* forward: P = |x| |W|^T, X = |b| */
  for (int64_t r = 0; r < R; r++)
    for (int64_t o = 0; o < O; o++) {
      double m = 0;
      for (int64_t i = 0; i < I; i++) m += fabs((double)x[r * ld.ldx + i] * W[o * I + i]);
      P[r * O + o] = m;
      X[r * O + o] = ld.bias ? fabs(b[o]) : 0;
    }
  linear_forward(&p32, c32, y32, x, W, ld.bias ? b : NULL, act ? pre32 : NULL);
  linear_forward(&p16, c16, y16, x, W, ld.bias ? b : NULL, act ? pre16 : NULL);
  if (act) cmp_bound("pre-activation", pre16, pre32, P, X, R, O, O, I, 1.0);
  cmp_bound("y", y16, y32, P, X, R, O, ld.ldy, I, act_lip(ld.act));
  /* backward from the same saved pre (the f32 one): G is the same in both, so dx, dW differ only by
   * their products' rounding, and db (a column sum of G, no product) not at all */
  linear_backward(&p32, c32, dx32, dW32, ld.bias ? db32 : NULL, dy, x, W, act ? pre32 : NULL, sc);
  if (act) memcpy(G, sc, sizeof(float) * R * O);
  else
    for (int64_t r = 0; r < R; r++) memcpy(G + r * O, dy + r * ld.ldy, sizeof(float) * O);
  linear_backward(&p16, c16, dx16, dW16, ld.bias ? db16 : NULL, dy, x, W, act ? pre32 : NULL, sc);
  for (int64_t r = 0; r < R; r++) /* dx = G W: P = |G| |W| */
    for (int64_t i = 0; i < I; i++) {
      double m = 0;
      for (int64_t o = 0; o < O; o++) m += fabs((double)G[r * O + o] * W[o * I + i]);
      P[r * I + i] = m;
    }
  memset(X, 0, sizeof(double) * np);
  cmp_bound("dx", dx16, dx32, P, X, R, I, ld.ldx, O, 1.0);
  for (int64_t o = 0; o < O; o++) /* dW = G^T x: P = |G|^T |x| */
    for (int64_t i = 0; i < I; i++) {
      double m = 0;
      for (int64_t r = 0; r < R; r++) m += fabs((double)G[r * O + o] * x[r * ld.ldx + i]);
      P[o * I + i] = m;
    }
  cmp_bound("dW", dW16, dW32, P, X, O, I, I, R, 1.0);
  if (ld.bias) EXPECT(!memcmp(db16, db32, sizeof(float) * O), "%s: db differs (no product involved)", name);
  linear_plan_free(&p32);
  linear_plan_free(&p16);
  free(x); free(W); free(b); free(y32); free(y16); free(pre32); free(pre16); free(dy); free(sc);
  free(dx32); free(dx16); free(dW32); free(dW16); free(db32); free(db16); free(G); free(P); free(X);
}

/* ---- 4. VQ attention forward -------------------------------------------------------------------
 * Every logit (near q.k_hat + bias, far q.Cb_s) of row t is a product of length Z computed in bf16 in
 * one path and f32 in the other: |dl| <= e_l |q_t| . |k| <= e_l ||q_t|| Kn =: delta_t, with
 * e_l = 2u + u^2 + 2 g_Z and Kn the largest key / code norm (Cauchy-Schwarz). Softmax then changes
 * each weight by a factor within exp(+-2 delta_t). O_t is a convex combination of values (near
 * weights and per-code weights rho_s cnt_s sum to one; U_s sums cnt_s values), so
 *   |O16 - O32|_tk <= [(e^(2 delta_t) - 1) + e_o e^(2 delta_t)] Vmax_k
 * with e_o = 2u + u^2 + 2 g_K for the longest product (K = max(W, S)) and Vmax_k = max_j |v_jk|. */
static void test_attention(const dnn_ctx *c32, const dnn_ctx *c16, lv_mode mode) {
  const int64_t B = 2, L = 48, C = 8, Z = 16, E = 24, S = 8, BT = B * L;
  const int64_t W = mode == LV_MODE_DECODER ? 2 * C : C;
  vq_attn_plan p32, p16;
  vq_attn_plan_init(&p32, c32, B, L, C, Z, E, S, mode);
  vq_attn_plan_init(&p16, c16, B, L, C, Z, E, S, mode);
  size_t nsc = vq_attn_scratch_floats(B, L, C, E, S, mode);
  float *q = malloc(4 * BT * Z), *kh = malloc(4 * BT * Z), *v = malloc(4 * BT * E), *cb = malloc(4 * S * Z);
  float *O32 = calloc((size_t)(BT * E), 4), *O16 = calloc((size_t)(BT * E), 4), *rpb = malloc(4 * 2 * C);
  float *sv = malloc(4 * vq_attn_saved_floats(B, L)), *scr = aligned_alloc(64, (nsc * 4 + 63) / 64 * 64);
  int32_t *code = malloc(4 * BT);
  uint8_t *m = malloc((size_t)BT);
  unsigned s = 11;
  for (int64_t i = 0; i < S * Z; i++) cb[i] = 2.0f * frand(&s);
  for (int64_t t = 0; t < BT; t++) {
    code[t] = (int32_t)((s = s * 1664525u + 1013904223u) >> 29) % (int32_t)S;
    m[t] = (t % 11) != 5; /* a few padded keys */
    memcpy(kh + t * Z, cb + code[t] * Z, 4 * Z);
    for (int64_t z = 0; z < Z; z++) q[t * Z + z] = 2.0f * frand(&s);
    for (int64_t e = 0; e < E; e++) v[t * E + e] = frand(&s);
  }
  for (int64_t i = 0; i < 2 * C; i++) rpb[i] = frand(&s);
  vq_attn_forward(&p32, c32, O32, sv, q, kh, code, v, m, rpb, cb, scr, 1);
  vq_attn_forward(&p16, c16, O16, sv, q, kh, code, v, m, rpb, cb, scr, 1);
  double kn = 0, vmax[64] = {0};
  for (int64_t j = 0; j < S; j++) {
    double a = 0;
    for (int64_t z = 0; z < Z; z++) a += (double)cb[j * Z + z] * cb[j * Z + z];
    if (sqrt(a) > kn) kn = sqrt(a);
  }
  for (int64_t t = 0; t < BT; t++)
    for (int64_t e = 0; e < E; e++)
      if (fabs(v[t * E + e]) > vmax[e]) vmax[e] = fabs(v[t * E + e]);
  const double el = EPS_BF + 2 * gam(Z), eo = EPS_BF + 2 * gam(W > S ? W : S);
  double maxe = 0, worst = 0;
  int64_t bad = 0;
  for (int64_t t = 0; t < BT; t++) {
    double qn = 0;
    for (int64_t z = 0; z < Z; z++) qn += (double)q[t * Z + z] * q[t * Z + z];
    double delta = el * sqrt(qn) * kn, gr = exp(2 * delta);
    for (int64_t e = 0; e < E; e++) {
      double bnd = ((gr - 1) + eo * gr) * vmax[e], err = fabs((double)O16[t * E + e] - O32[t * E + e]);
      if (!(err <= bnd)) bad++;
      if (err > maxe) maxe = err;
      if (err / bnd > worst) worst = err / bnd;
    }
  }
  printf("vq attention forward (%s, far on): max |O bf16 - O f32| %.3e (worst / bound %.2f)\n",
         mode == LV_MODE_DECODER ? "decoder" : "encoder", maxe, worst);
  EXPECT(bad == 0, "attention: %lld of %lld outside the bound", (long long)bad, (long long)(BT * E));
  EXPECT(maxe > 0, "attention: bf16 and f32 agree exactly: not rounded?");
  vq_attn_plan_free(&p32);
  vq_attn_plan_free(&p16);
  free(q); free(kh); free(v); free(cb); free(O32); free(O16); free(rpb); free(sv); free(scr); free(code); free(m);
}

/* ---- 5. VQ distances stay f32 ------------------------------------------------------------------ */
static void test_vq_codes(const dnn_ctx *c32, const dnn_ctx *c16) {
  const int64_t BT = 512, Z = 16, S = 32;
  vq_plan p32, p16;
  vq_plan_init(&p32, c32, BT, Z, S);
  vq_plan_init(&p16, c16, BT, Z, S);
  EXPECT(p16.dots.bf16 == 0, "the VQ distance plan must stay f32 in a bf16 context");
  float *k = malloc(4 * BT * Z), *cb = malloc(4 * S * Z), *kh32 = malloc(4 * BT * Z), *kh16 = malloc(4 * BT * Z);
  float *scr = malloc(4 * vq_scratch_floats(BT, S));
  int32_t *c1 = malloc(4 * BT), *c2 = malloc(4 * BT);
  uint8_t *m = malloc((size_t)BT);
  memset(m, 1, (size_t)BT);
  unsigned s = 5;
  for (int64_t i = 0; i < BT * Z; i++) k[i] = frand(&s);
  for (int64_t i = 0; i < S * Z; i++) cb[i] = frand(&s);
  double cs1 = 0, cs2 = 0, v1 = 0, v2 = 0;
  double *ns = calloc((size_t)S, 8), *ks = calloc((size_t)(S * Z), 8);
  vq_forward(&p32, c32, c1, kh32, &cs1, &v1, ns, ks, k, m, cb, scr);
  vq_forward(&p16, c16, c2, kh16, &cs2, &v2, ns, ks, k, m, cb, scr);
  EXPECT(!memcmp(c1, c2, 4 * BT) && cs1 == cs2, "VQ codes or commitment differ between the precisions");
  printf("vq: %lld codes identical in both contexts (the distances are f32)\n", (long long)BT);
  vq_plan_free(&p32);
  vq_plan_free(&p16);
  free(k); free(cb); free(kh32); free(kh16); free(scr); free(c1); free(c2); free(m); free(ns); free(ks);
}

int main(void) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  dnn_ctx c32, c16, c16t;
  dnn_ctx_init(&c32);
  dnn_ctx_init(&c16);
  dnn_ctx_init(&c16t);
  char isa[32];
  if (!dnn_cpu_has_bf16(isa, sizeof isa)) {
    /* oneDNN would emulate (or refuse) bf16 here; the trainer refuses (tests/bf16_refuse.sh) */
    printf("test_bf16: this CPU runs oneDNN at %s, without native bf16: only the conversion is tested\n", isa);
    test_conversion(&c32);
    dnn_ctx_free(&c32);
    dnn_ctx_free(&c16);
    dnn_ctx_free(&c16t);
    return tu_finish("test_bf16");
  }
  dnn_ctx_set_precision(&c16, MM_PREC_BF16);
  dnn_ctx_set_precision(&c16t, MM_PREC_BF16);
  dnn_ctx_set_tile(&c16t, 4096);
  test_conversion(&c32);
  test_products(&c32, &c16);
  test_tiles(&c32, &c16t);
  const int64_t rows = 96;
  /* the five projections (D 48, Z 16, E 40, F 96: M = 2D + Z + E = 152), the heads */
  test_linear(&c32, &c16, (linear_desc){.rows = rows, .in = 48, .out = 40, .bias = 1}, "v_proj");
  test_linear(&c32, &c16, (linear_desc){.rows = rows, .in = 48, .out = 152, .bias = 1}, "mx_proj");
  test_linear(&c32, &c16, (linear_desc){.rows = rows, .in = 40, .out = 48, .bias = 1, .ldx = 152, .ldy = 64,
                                        .accumulate = 1, .act = MM_ACT_SILU}, "h_proj (slices, +=, silu)");
  test_linear(&c32, &c16, (linear_desc){.rows = rows, .in = 48, .out = 96, .bias = 1, .act = MM_ACT_SILU}, "fc1");
  test_linear(&c32, &c16, (linear_desc){.rows = rows, .in = 96, .out = 48, .bias = 1}, "fc2");
  test_linear(&c32, &c16, (linear_desc){.rows = 6, .in = 48, .out = 48, .bias = 1, .act = MM_ACT_GELU_ERF},
              "head dense (gelu_erf)");
  test_linear(&c32, &c16, (linear_desc){.rows = rows, .in = 48, .out = 256}, "lm head");
  test_attention(&c32, &c16, LV_MODE_ENCODER);
  test_attention(&c32, &c16, LV_MODE_DECODER);
  /* the layers again with 4096-element tiles: Linear's rows and attention's chunk batches in tiles */
  test_linear(&c32, &c16t, (linear_desc){.rows = rows, .in = 48, .out = 152, .bias = 1}, "mx_proj, tiled");
  test_linear(&c32, &c16t, (linear_desc){.rows = rows, .in = 40, .out = 48, .bias = 1, .ldx = 152, .ldy = 64,
                                         .accumulate = 1, .act = MM_ACT_SILU}, "h_proj (slices, +=, silu), tiled");
  test_attention(&c32, &c16t, LV_MODE_ENCODER);
  test_attention(&c32, &c16t, LV_MODE_DECODER);
  test_vq_codes(&c32, &c16);
  printf("bf16 operand workspace of this context: %zu bytes\n", dnn_ctx_ws_bytes(&c16));
  dnn_ctx_free(&c32);
  dnn_ctx_free(&c16);
  dnn_ctx_free(&c16t);
  return tu_finish("test_bf16");
}
