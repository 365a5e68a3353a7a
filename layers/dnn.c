/* oneDNN 2.6 C API (op descriptors): engine/stream and matmul plans. */
#include "layers/dnn.h"

#include "trainer/base/check.h"

void dnn_ctx_init(dnn_ctx *ctx) {
  CHECK_DNNL(dnnl_engine_create(&ctx->engine, dnnl_cpu, 0));
  CHECK_DNNL(dnnl_stream_create(&ctx->stream, ctx->engine, dnnl_stream_default_flags));
}

void dnn_ctx_free(dnn_ctx *ctx) {
  CHECK_DNNL(dnnl_stream_destroy(ctx->stream));
  CHECK_DNNL(dnnl_engine_destroy(ctx->engine));
}

/* 3-D (batch, rows, cols) descriptor for a row-major matrix, optionally seen transposed. */
static void md3(dnnl_memory_desc_t *md, int64_t batch, int64_t rows, int64_t cols, int trans,
                int64_t ld, int64_t bstride) {
  /* Logical shape (batch, rows, cols); stored as (cols, rows) with row stride ld if trans. */
  int64_t sr = trans ? 1 : ld, sc = trans ? ld : 1;
  int64_t stored_rows = trans ? cols : rows;
  int64_t bs = bstride == 0 ? stored_rows * ld : bstride;
  dnnl_dims_t dims = {bstride < 0 ? 1 : batch, rows, cols};
  dnnl_dims_t strides = {bstride < 0 ? 0 : bs, sr, sc};
  if (bstride < 0) strides[0] = stored_rows * ld;
  CHECK_DNNL(dnnl_memory_desc_init_by_strides(md, 3, dims, dnnl_f32, strides));
}

void mm_plan_init(mm_plan *p, const dnn_ctx *ctx, mm_desc d) {
  if (d.batch < 1 || d.M < 1 || d.N < 1 || d.K < 1) DIE("mm_plan_init: bad shape %lld %lld %lld %lld",
      (long long)d.batch, (long long)d.M, (long long)d.N, (long long)d.K);
  if (!d.lda) d.lda = d.trans_a ? d.M : d.K;
  if (!d.ldb) d.ldb = d.trans_b ? d.K : d.N;
  if (!d.ldc) d.ldc = d.N;
  if (d.batch_stride_c < 0) DIE("mm_plan_init: C cannot be broadcast");
  p->d = d;
  dnnl_memory_desc_t amd, bmd, cmd, biasmd;
  md3(&amd, d.batch, d.M, d.K, d.trans_a, d.lda, d.batch_stride_a);
  md3(&bmd, d.batch, d.K, d.N, d.trans_b, d.ldb, d.batch_stride_b);
  md3(&cmd, d.batch, d.M, d.N, 0, d.ldc, d.batch_stride_c);
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
  CHECK_DNNL(dnnl_memory_set_data_handle(p->a, (void *)A));
  CHECK_DNNL(dnnl_memory_set_data_handle(p->b, (void *)B));
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
