/* oneDNN behind one small interface: an engine/stream context and pre-built matmul plans.
 *
 * Plans are created once (init) with fixed shapes, executed in the step with new data pointers,
 * and freed at the end. Never call mm_exec from inside your own OpenMP parallel region. */
#ifndef LONGVQ_DNN_H
#define LONGVQ_DNN_H

#include <oneapi/dnnl/dnnl.h>
#include <stdint.h>

/* Precision of the matmul-shaped products (model.precision). MM_PREC_BF16: A and B are rounded to
 * bfloat16 (round to nearest even, bf16_from_f32), multiplied by oneDNN's bf16 kernels with f32
 * accumulation, and C, bias, the sum post-op and the activation stay f32. The f32 callers do not
 * change: the plan converts its operands into the context's workspace at every execution. */
typedef enum { MM_PREC_F32 = 0, MM_PREC_BF16 = 1 } mm_prec;

/* bf16 operand workspace shared by every plan of a context: sized at plan creation (the largest A + B
 * tile of its bf16 plans), used by one mm_exec at a time (each waits for its matmul to finish). */
typedef struct {
  uint16_t *buf;
  size_t elems;
  int timing;            /* dnn_ctx_timing: accumulate the two times below */
  double mm_s, round_s;  /* wall seconds in mm_exec; of them, rounding operands to bf16 */
} dnn_ws;

/* Default operand elements converted per tile of a bf16 product (dnn_ctx_set_tile): 2^20, i.e. 4 MiB
 * of f32 read once from memory and 2 MiB of bf16 that the matmul then reads from the cache (this
 * machine: 2 MiB L2 in all, 32 MiB L3). Converting a whole 16K-row operand first would write it to
 * memory and read it back. Measured (bf16 decoder step, docs/performance.md): 2^16 is a third slower
 * (a primitive call per small tile), 2^18 and 2^20 the same, 2^22 3-5% slower. */
#define DNN_TILE_ELEMS ((int64_t)1 << 20)

typedef struct {
  dnnl_engine_t engine;
  dnnl_stream_t stream;
  mm_prec prec;       /* precision of the plans created from now on (dnn_ctx_set_precision) */
  int64_t tile_elems; /* bf16 plans created from now on convert about this many elements per tile */
  dnn_ws *ws;         /* behind a pointer: plans grow it, and mm_exec adds its times, through a const context */
} dnn_ctx;

void dnn_ctx_init(dnn_ctx *ctx); /* f32, tiles of DNN_TILE_ELEMS */
void dnn_ctx_free(dnn_ctx *ctx);
/* Plans created after this call use `prec` (those created before keep theirs). */
void dnn_ctx_set_precision(dnn_ctx *ctx, mm_prec prec);
/* Tile size of bf16 plans created after this call (tests force many tiles and a short last one). */
void dnn_ctx_set_tile(dnn_ctx *ctx, int64_t elems);
/* Local. From now on (on = 1) add the wall time of every mm_exec, and of its bf16 operand rounding,
 * to the context's totals (reset to zero here); on = 0 stops. For `longvq bench`'s split of the step
 * into products and the rest: two clock reads per product, none when off. */
void dnn_ctx_timing(dnn_ctx *ctx, int on);
/* Local. The totals since dnn_ctx_timing(ctx, 1): seconds in mm_exec, and of them rounding to bf16. */
void dnn_ctx_times(const dnn_ctx *ctx, double *mm_s, double *round_s);
/* Bytes of the bf16 operand workspace (0 for an f32 context). */
size_t dnn_ctx_ws_bytes(const dnn_ctx *ctx);
/* 1 if oneDNN may use native bf16 instructions here (AVX512_BF16 or AMX; respects ONEDNN_MAX_CPU_ISA);
 * else 0 with the ISA oneDNN runs at in isa[cap]. */
int dnn_cpu_has_bf16(char *isa, size_t cap);

/* dst[i] = x[i] rounded to bfloat16 as oneDNN rounds (its cvt_float_to_bfloat16 and the AVX512_BF16
 * vcvtneps2bf16 instruction): round to nearest even; subnormals to a signed zero; a NaN stays a quiet
 * NaN; overflow goes to Inf. The one conversion of the code: by that instruction when built for a CPU
 * that has it, else by bf16_from_f32_ref's loop. Threads over blocks when n is large. */
void bf16_from_f32(uint16_t *dst, const float *x, size_t n);
/* The same conversion in portable C, one element at a time, on the calling thread: bf16_from_f32's
 * reference twin (test_bf16 holds the two, and oneDNN's reorder, to the same bits). */
void bf16_from_f32_ref(uint16_t *dst, const float *x, size_t n);
/* The float a bf16 value stands for (exact). */
float f32_from_bf16(uint16_t h);

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
  int f32_only;  /* 1: f32 even in a bf16 context (the VQ distances whose argmin picks the codes) */
} mm_desc;

/* One oneDNN primitive and its memory objects (data handles set at each execution). */
typedef struct {
  dnnl_primitive_t prim;
  dnnl_memory_t a, b, c, bias;
} mm_kern;

/* How a bf16 plan walks its product: whole, by groups of batch entries, by blocks of rows of A and C
 * (batch 1, A not transposed), or by blocks of the reduction (batch 1, A transposed: the weight
 * gradients, each block adding into C). Each tile's operands are rounded just before its matmul. */
typedef enum { MM_TILE_NONE = 0, MM_TILE_BATCH, MM_TILE_ROWS, MM_TILE_DEPTH } mm_tiling;

typedef struct {
  mm_desc d;
  mm_kern k[3];      /* k[0]: the product (f32), or the first full tile (bf16); k[1]: the other full tiles
                      * (DEPTH: they add into C); k[2]: a shorter last tile */
  int bf16;          /* operands converted to bf16 at execution */
  mm_tiling tiling;
  int64_t tile, n_tiles, last; /* batch entries, rows or depth per full tile; tiles; that of the last
                                * (MM_TILE_NONE: 1, 1, 1: one whole tile) */
  size_t a_elems;    /* bf16 elements of one converted A tile (the workspace holds A then B) */
} mm_plan;

void mm_plan_init(mm_plan *p, const dnn_ctx *ctx, mm_desc d);
/* 1 once mm_plan_init made it (a zeroed plan is "none"). */
static inline int mm_plan_ready(const mm_plan *p) { return p->k[0].prim != NULL; }
/* Runs the plan on these pointers (bias may be NULL when the plan has none); waits for completion.
 * The pointers are f32 in both precisions: a bf16 plan first converts A and B into the workspace. */
void mm_exec(const mm_plan *p, const dnn_ctx *ctx, float *C, const float *A, const float *B, const float *bias);
void mm_plan_free(mm_plan *p);
/* FLOPs of one execution (2 * batch * M * N * K). */
double mm_flops(const mm_desc *d);

#endif
