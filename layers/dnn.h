/* oneDNN behind one small interface: an engine/stream context and pre-built matmul plans.
 *
 * Plans are created once (init) with fixed shapes, executed in the step with new data pointers,
 * and freed at the end. Never call mm_exec from inside your own OpenMP parallel region. */
#ifndef LONGVQ_DNN_H
#define LONGVQ_DNN_H

#include <oneapi/dnnl/dnnl.h>
#include <stdint.h>

typedef struct {
  dnnl_engine_t engine;
  dnnl_stream_t stream;
} dnn_ctx;

void dnn_ctx_init(dnn_ctx *ctx);
void dnn_ctx_free(dnn_ctx *ctx);

/* Activations fused into a matmul as a post-op (forward only). */
typedef enum { MM_ACT_NONE = 0, MM_ACT_SILU, MM_ACT_SIGMOID, MM_ACT_GELU_ERF } mm_act;

/* C[b] (M, N)  =  op(A[b]) (M, K) @ op(B[b]) (K, N)  [+ bias (N)]  [then act]      (accumulate = 0)
 * C[b] (M, N) +=  op(A[b]) @ op(B[b])                                                (accumulate = 1)
 * Storage is row-major float32:
 *   A: trans_a = 0 -> (M, K) with row stride lda;  trans_a = 1 -> (K, M) with row stride lda
 *   B: trans_b = 0 -> (K, N) with row stride ldb;  trans_b = 1 -> (N, K) with row stride ldb
 *   C: (M, N) with row stride ldc
 * ld* = 0 means dense (the row length). batch >= 1; batch_stride_* = 0 means dense (rows * ld);
 * a batch stride of -1 broadcasts that operand (same matrix for every batch entry). Row strides
 * other than dense let a matmul read or write a column slice of a wider matrix. */
typedef struct {
  int64_t batch, M, N, K;
  int trans_a, trans_b;
  int64_t lda, ldb, ldc;
  int64_t batch_stride_a, batch_stride_b, batch_stride_c;
  int accumulate, bias;
  mm_act act;
} mm_desc;

typedef struct {
  mm_desc d;
  dnnl_primitive_t prim;
  dnnl_memory_t a, b, c, bias;
} mm_plan;

void mm_plan_init(mm_plan *p, const dnn_ctx *ctx, mm_desc d);
/* Runs the plan on these pointers (bias may be NULL when the plan has none); waits for completion. */
void mm_exec(const mm_plan *p, const dnn_ctx *ctx, float *C, const float *A, const float *B, const float *bias);
void mm_plan_free(mm_plan *p);
/* FLOPs of one execution (2 * batch * M * N * K). */
double mm_flops(const mm_desc *d);

#endif
