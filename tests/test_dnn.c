/* mm plans (oneDNN) against a plain double-precision reference, over transposes, strides,
 * batching with broadcast, accumulate, bias and fused activations. */
#include <math.h>
#include <stdlib.h>

#include "layers/dnn.h"
#include "layers/ref/act_ref.h"
#include "tests/test_util.h"

/* One activated value by the layers' double reference twin (layers/ref/act_ref.h). */
static double act_ref(mm_act a, double x) {
  double y;
  act_forward_ref(a, &y, &x, 1);
  return y;
}

static float frand(unsigned *s) { *s = *s * 1664525u + 1013904223u; return (float)((*s >> 8) * 0x1p-24 - 0.5); }

static void run_case(const dnn_ctx *ctx, mm_desc d, const char *name) {
  mm_plan p = {0};
  mm_plan_init(&p, ctx, d);
  d = p.d; /* with defaults filled in */
  int64_t rows_a = d.trans_a ? d.K : d.M, rows_b = d.trans_b ? d.N : d.K;
  int64_t bsa = d.batch_stride_a < 0 ? 0 : (d.batch_stride_a ? d.batch_stride_a : rows_a * d.lda);
  int64_t bsb = d.batch_stride_b < 0 ? 0 : (d.batch_stride_b ? d.batch_stride_b : rows_b * d.ldb);
  int64_t bsc = d.batch_stride_c ? d.batch_stride_c : d.M * d.ldc;
  int64_t na = bsa * d.batch + rows_a * d.lda, nb = bsb * d.batch + rows_b * d.ldb, nc = bsc * d.batch;
  float *A = malloc(sizeof(float) * na), *B = malloc(sizeof(float) * nb), *C = malloc(sizeof(float) * nc);
  float *bias = malloc(sizeof(float) * d.N);
  double *R = malloc(sizeof(double) * nc);
  unsigned s = 42;
  for (int64_t i = 0; i < na; i++) A[i] = frand(&s);
  for (int64_t i = 0; i < nb; i++) B[i] = frand(&s);
  for (int64_t i = 0; i < nc; i++) R[i] = C[i] = frand(&s);
  for (int64_t i = 0; i < d.N; i++) bias[i] = frand(&s);
  for (int64_t b = 0; b < d.batch; b++)
    for (int64_t m = 0; m < d.M; m++)
      for (int64_t n = 0; n < d.N; n++) {
        double acc = d.bias ? bias[n] : 0;
        for (int64_t k = 0; k < d.K; k++) {
          double a = d.trans_a ? A[b * bsa + k * d.lda + m] : A[b * bsa + m * d.lda + k];
          double w = d.trans_b ? B[b * bsb + n * d.ldb + k] : B[b * bsb + k * d.ldb + n];
          acc += a * w;
        }
        double *r = &R[b * bsc + m * d.ldc + n];
        *r = d.accumulate ? *r + acc : act_ref(d.act, acc);
      }
  mm_exec(&p, ctx, C, A, B, d.bias ? bias : NULL);
  double maxerr = 0;
  for (int64_t i = 0; i < nc; i++) {
    /* float32 accumulation over K terms of size <= 0.25: error grows ~ sqrt(K) * eps. */
    double err = fabs(C[i] - R[i]);
    if (err > maxerr) maxerr = err;
    EXPECT_NEAR(C[i], R[i], 1e-5 * d.K, 1e-5);
    if (fabs(C[i] - R[i]) > 1e-5 * d.K + 1e-5 * fabs(R[i])) break;
  }
  printf("%-28s max abs err %.3g\n", name, maxerr);
  mm_plan_free(&p);
  free(A); free(B); free(C); free(bias); free(R);
}

int main(void) {
  dnn_ctx ctx;
  dnn_ctx_init(&ctx);
  run_case(&ctx, (mm_desc){.batch = 1, .M = 7, .N = 5, .K = 9}, "plain");
  run_case(&ctx, (mm_desc){.batch = 1, .M = 7, .N = 5, .K = 9, .trans_b = 1, .bias = 1}, "linear fwd (B^T + bias)");
  run_case(&ctx, (mm_desc){.batch = 1, .M = 6, .N = 5, .K = 11, .trans_a = 1, .accumulate = 1}, "weight grad (A^T, +=)");
  run_case(&ctx, (mm_desc){.batch = 1, .M = 33, .N = 17, .K = 64, .trans_b = 1, .bias = 1, .act = MM_ACT_SILU}, "bias+silu");
  run_case(&ctx, (mm_desc){.batch = 1, .M = 8, .N = 9, .K = 10, .trans_b = 1, .bias = 1, .act = MM_ACT_SIGMOID}, "bias+sigmoid");
  run_case(&ctx, (mm_desc){.batch = 1, .M = 8, .N = 9, .K = 10, .trans_b = 1, .bias = 1, .act = MM_ACT_GELU_ERF}, "bias+gelu_erf");
  run_case(&ctx, (mm_desc){.batch = 1, .M = 5, .N = 4, .K = 6, .lda = 10, .ldc = 9}, "strided A and C");
  run_case(&ctx, (mm_desc){.batch = 1, .M = 5, .N = 4, .K = 6, .trans_a = 1, .trans_b = 1, .lda = 8, .ldb = 7}, "both transposed, strided");
  run_case(&ctx, (mm_desc){.batch = 3, .M = 4, .N = 5, .K = 6, .trans_b = 1}, "batched");
  run_case(&ctx, (mm_desc){.batch = 3, .M = 4, .N = 5, .K = 6, .trans_b = 1, .batch_stride_b = -1}, "batched, B broadcast");
  run_case(&ctx, (mm_desc){.batch = 4, .M = 8, .N = 8, .K = 6, .trans_b = 1, .lda = 20, .ldb = 20,
                           .batch_stride_a = 160, .batch_stride_b = 160, .accumulate = 1}, "batched strided +=");
  dnn_ctx_free(&ctx);
  return tu_finish("test_dnn");
}
