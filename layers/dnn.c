/* oneDNN 2.6 C API (op descriptors): engine/stream and matmul plans. */
#include "layers/dnn.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "trainer/base/alloc.h"
#include "trainer/base/check.h"
#include "trainer/base/range.h"

void dnn_ctx_init(dnn_ctx *ctx) {
  CHECK_DNNL(dnnl_engine_create(&ctx->engine, dnnl_cpu, 0));
  CHECK_DNNL(dnnl_stream_create(&ctx->stream, ctx->engine, dnnl_stream_default_flags));
  ctx->prec = MM_PREC_F32;
  ctx->ws = calloc(1, sizeof *ctx->ws);
  CHECK_ALLOC(ctx->ws);
}

void dnn_ctx_free(dnn_ctx *ctx) {
  CHECK_DNNL(dnnl_stream_destroy(ctx->stream));
  CHECK_DNNL(dnnl_engine_destroy(ctx->engine));
  free(ctx->ws->buf);
  free(ctx->ws);
  ctx->ws = NULL;
}

void dnn_ctx_set_precision(dnn_ctx *ctx, mm_prec prec) { ctx->prec = prec; }

size_t dnn_ctx_ws_bytes(const dnn_ctx *ctx) { return ctx->ws->elems * sizeof(uint16_t); }

int dnn_cpu_has_bf16(char *isa, size_t cap) {
  dnnl_cpu_isa_t e = dnnl_get_effective_cpu_isa();
  /* oneDNN's ISA values are bit sets: each includes the bits of the ones it extends. */
  if (((unsigned)e & (unsigned)dnnl_cpu_isa_avx512_core_bf16) == (unsigned)dnnl_cpu_isa_avx512_core_bf16) return 1;
  static const struct { dnnl_cpu_isa_t v; const char *name; } names[] = {
      {dnnl_cpu_isa_avx512_core_vnni, "AVX512_CORE_VNNI"}, {dnnl_cpu_isa_avx512_core, "AVX512_CORE"},
      {dnnl_cpu_isa_avx2_vnni, "AVX2_VNNI"}, {dnnl_cpu_isa_avx2, "AVX2"}, {dnnl_cpu_isa_avx, "AVX"},
      {dnnl_cpu_isa_sse41, "SSE41"}};
  const char *n = "unknown";
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
    if (e == names[i].v) { n = names[i].name; break; }
  snprintf(isa, cap, "%s", n);
  return 0;
}

/* One float to bf16, branch-free so that the loops below vectorize. */
static inline uint16_t bf16_round(float f) {
  uint32_t u;
  memcpy(&u, &f, sizeof u);
  uint32_t r = (u + 0x7fffu + ((u >> 16) & 1u)) >> 16; /* nearest even; carries into the exponent */
  r = (u & 0x7f800000u) == 0 ? (u >> 16) & 0x8000u : r; /* zero or subnormal: signed zero */
  r = (u & 0x7fffffffu) > 0x7f800000u ? (u >> 16) | 0x40u : r; /* NaN: quiet, sign and payload top kept */
  return (uint16_t)r;
}

static void cvt_row(uint16_t *restrict dst, const float *restrict x, int64_t n) {
#pragma omp simd
  for (int64_t i = 0; i < n; i++) dst[i] = bf16_round(x[i]);
}

void bf16_from_f32(uint16_t *dst, const float *x, size_t n) {
  enum { BLK = 4096 };
  const int64_t nb = (int64_t)((n + BLK - 1) / BLK);
#pragma omp parallel for schedule(static) if (n >= 65536)
  for (int64_t b = 0; b < nb; b++) {
    int64_t lo = b * BLK, len = (int64_t)n - lo < BLK ? (int64_t)n - lo : BLK;
    cvt_row(dst + lo, x + lo, len);
  }
}

float f32_from_bf16(uint16_t h) {
  uint32_t u = (uint32_t)h << 16;
  float f;
  memcpy(&f, &u, sizeof f);
  return f;
}

/* 3-D (batch, rows, cols) descriptor for a row-major matrix, optionally seen transposed. */
static void md3(dnnl_memory_desc_t *md, int64_t batch, int64_t rows, int64_t cols, int trans,
                int64_t ld, int64_t bstride, dnnl_data_type_t dt) {
  /* Logical shape (batch, rows, cols); stored as (cols, rows) with row stride ld if trans. */
  int64_t sr = trans ? 1 : ld, sc = trans ? ld : 1;
  int64_t stored_rows = trans ? cols : rows;
  int64_t bs = bstride == 0 ? stored_rows * ld : bstride;
  dnnl_dims_t dims = {bstride < 0 ? 1 : batch, rows, cols};
  dnnl_dims_t strides = {bstride < 0 ? 0 : bs, sr, sc};
  if (bstride < 0) strides[0] = stored_rows * ld;
  CHECK_DNNL(dnnl_memory_desc_init_by_strides(md, 3, dims, dt, strides));
}

/* One operand as stored: nb matrices of rows x cols (row stride ld, batch stride bs). */
typedef struct {
  int64_t nb, rows, cols, ld, bs;
} view;

static view operand_view(int64_t batch, int64_t rows, int64_t cols, int trans, int64_t ld, int64_t bstride) {
  view v = {bstride < 0 ? 1 : batch, trans ? cols : rows, trans ? rows : cols, ld, 0};
  v.bs = bstride > 0 ? bstride : v.rows * ld;
  return v;
}

static size_t view_elems(view v) { return (size_t)(v.nb * v.rows * v.cols); }

/* The stored matrices of v, densely, in bf16 (row stride cols, batch stride rows * cols). */
static void view_to_bf16(uint16_t *dst, const float *src, view v) {
  const int64_t n = v.nb * v.rows;
#pragma omp parallel for schedule(static) if (n * v.cols >= 32768)
  for (int64_t i = 0; i < n; i++) {
    int64_t b = i / v.rows, r = i % v.rows;
    cvt_row(dst + i * v.cols, src + b * v.bs + r * v.ld, v.cols);
  }
}

void mm_plan_init(mm_plan *p, const dnn_ctx *ctx, mm_desc d) {
  if (d.batch < 1 || d.M < 1 || d.N < 1 || d.K < 1) DIE("mm_plan_init: bad shape %lld %lld %lld %lld",
      (long long)d.batch, (long long)d.M, (long long)d.N, (long long)d.K);
  if (!d.lda) d.lda = d.trans_a ? d.M : d.K;
  if (!d.ldb) d.ldb = d.trans_b ? d.K : d.N;
  if (!d.ldc) d.ldc = d.N;
  if (d.batch_stride_c < 0) DIE("mm_plan_init: C cannot be broadcast");
  p->d = d;
  p->bf16 = ctx->prec == MM_PREC_BF16 && !d.f32_only;
  dnnl_memory_desc_t amd, bmd, cmd, biasmd;
  if (p->bf16) { /* the operands as converted: dense copies of the stored matrices */
    view va = operand_view(d.batch, d.M, d.K, d.trans_a, d.lda, d.batch_stride_a);
    view vb = operand_view(d.batch, d.K, d.N, d.trans_b, d.ldb, d.batch_stride_b);
    md3(&amd, d.batch, d.M, d.K, d.trans_a, va.cols, d.batch_stride_a < 0 ? -1 : 0, dnnl_bf16);
    md3(&bmd, d.batch, d.K, d.N, d.trans_b, vb.cols, d.batch_stride_b < 0 ? -1 : 0, dnnl_bf16);
    p->a_elems = view_elems(va);
    size_t need = lv_round_up(p->a_elems, 32) + view_elems(vb); /* B starts 64-byte aligned */
    if (need > ctx->ws->elems) { /* at plan creation, never in the step */
      free(ctx->ws->buf);
      ctx->ws->buf = (uint16_t *)(void *)lv_alloc_floats((need + 1) / 2);
      ctx->ws->elems = need;
    }
  } else {
    md3(&amd, d.batch, d.M, d.K, d.trans_a, d.lda, d.batch_stride_a, dnnl_f32);
    md3(&bmd, d.batch, d.K, d.N, d.trans_b, d.ldb, d.batch_stride_b, dnnl_f32);
  }
  md3(&cmd, d.batch, d.M, d.N, 0, d.ldc, d.batch_stride_c, dnnl_f32);
  if (d.bias) {
    dnnl_dims_t bd = {1, 1, d.N};
    CHECK_DNNL(dnnl_memory_desc_init_by_tag(&biasmd, 3, bd, dnnl_f32, dnnl_abc));
  }
  dnnl_matmul_desc_t desc;
  CHECK_DNNL(dnnl_matmul_desc_init(&desc, &amd, &bmd, d.bias ? &biasmd : NULL, &cmd));

  dnnl_primitive_attr_t attr;
  dnnl_post_ops_t po;
  CHECK_DNNL(dnnl_primitive_attr_create(&attr));
  CHECK_DNNL(dnnl_post_ops_create(&po));
  if (d.accumulate) CHECK_DNNL(dnnl_post_ops_append_sum(po, 1.0f));
  switch (d.act) {
    case MM_ACT_NONE: break;
    case MM_ACT_SILU: CHECK_DNNL(dnnl_post_ops_append_eltwise(po, 1.0f, dnnl_eltwise_swish, 1.0f, 0.0f)); break;
    case MM_ACT_SIGMOID: CHECK_DNNL(dnnl_post_ops_append_eltwise(po, 1.0f, dnnl_eltwise_logistic, 0.0f, 0.0f)); break;
    case MM_ACT_GELU_ERF: CHECK_DNNL(dnnl_post_ops_append_eltwise(po, 1.0f, dnnl_eltwise_gelu_erf, 0.0f, 0.0f)); break;
  }
  CHECK_DNNL(dnnl_primitive_attr_set_post_ops(attr, po));
  dnnl_primitive_desc_t pd;
  CHECK_DNNL(dnnl_primitive_desc_create(&pd, &desc, attr, ctx->engine, NULL));
  CHECK_DNNL(dnnl_primitive_create(&p->prim, pd));
  CHECK_DNNL(dnnl_primitive_desc_destroy(pd));
  CHECK_DNNL(dnnl_post_ops_destroy(po));
  CHECK_DNNL(dnnl_primitive_attr_destroy(attr));

  CHECK_DNNL(dnnl_memory_create(&p->a, &amd, ctx->engine, DNNL_MEMORY_NONE));
  CHECK_DNNL(dnnl_memory_create(&p->b, &bmd, ctx->engine, DNNL_MEMORY_NONE));
  CHECK_DNNL(dnnl_memory_create(&p->c, &cmd, ctx->engine, DNNL_MEMORY_NONE));
  p->bias = NULL;
  if (d.bias) CHECK_DNNL(dnnl_memory_create(&p->bias, &biasmd, ctx->engine, DNNL_MEMORY_NONE));
}

void mm_exec(const mm_plan *p, const dnn_ctx *ctx, float *C, const float *A, const float *B, const float *bias) {
  if (p->bf16) {
    const mm_desc *d = &p->d;
    uint16_t *a16 = ctx->ws->buf, *b16 = a16 + lv_round_up(p->a_elems, 32);
    view_to_bf16(a16, A, operand_view(d->batch, d->M, d->K, d->trans_a, d->lda, d->batch_stride_a));
    view_to_bf16(b16, B, operand_view(d->batch, d->K, d->N, d->trans_b, d->ldb, d->batch_stride_b));
    CHECK_DNNL(dnnl_memory_set_data_handle(p->a, a16));
    CHECK_DNNL(dnnl_memory_set_data_handle(p->b, b16));
  } else {
    CHECK_DNNL(dnnl_memory_set_data_handle(p->a, (void *)A));
    CHECK_DNNL(dnnl_memory_set_data_handle(p->b, (void *)B));
  }
  CHECK_DNNL(dnnl_memory_set_data_handle(p->c, C));
  dnnl_exec_arg_t args[4] = {{DNNL_ARG_SRC, p->a}, {DNNL_ARG_WEIGHTS, p->b}, {DNNL_ARG_DST, p->c}};
  int n = 3;
  if (p->bias) {
    if (!bias) DIE("mm_exec: plan has a bias but none was given");
    CHECK_DNNL(dnnl_memory_set_data_handle(p->bias, (void *)bias));
    args[n++] = (dnnl_exec_arg_t){DNNL_ARG_BIAS, p->bias};
  }
  CHECK_DNNL(dnnl_primitive_execute(p->prim, ctx->stream, n, args));
  CHECK_DNNL(dnnl_stream_wait(ctx->stream));
}

void mm_plan_free(mm_plan *p) {
  if (!p->prim) return;
  CHECK_DNNL(dnnl_primitive_destroy(p->prim));
  CHECK_DNNL(dnnl_memory_destroy(p->a));
  CHECK_DNNL(dnnl_memory_destroy(p->b));
  CHECK_DNNL(dnnl_memory_destroy(p->c));
  if (p->bias) CHECK_DNNL(dnnl_memory_destroy(p->bias));
  p->prim = NULL;
}

double mm_flops(const mm_desc *d) { return 2.0 * (double)d->batch * (double)d->M * (double)d->N * (double)d->K; }
