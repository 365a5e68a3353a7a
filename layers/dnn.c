/* oneDNN 2.6 C API (op descriptors): engine/stream and matmul plans. */
#include "layers/dnn.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "trainer/base/alloc.h"
#include "trainer/base/check.h"
#include "trainer/base/clock.h"
#include "trainer/base/range.h"

void dnn_ctx_init(dnn_ctx *ctx) {
  CHECK_DNNL(dnnl_engine_create(&ctx->engine, dnnl_cpu, 0));
  CHECK_DNNL(dnnl_stream_create(&ctx->stream, ctx->engine, dnnl_stream_default_flags));
  ctx->prec = MM_PREC_F32;
  ctx->tile_elems = DNN_TILE_ELEMS;
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

void dnn_ctx_set_tile(dnn_ctx *ctx, int64_t elems) { ctx->tile_elems = elems < 1 ? 1 : elems; }

void dnn_ctx_timing(dnn_ctx *ctx, int on) {
  ctx->ws->timing = on;
  ctx->ws->mm_s = ctx->ws->round_s = 0;
}

void dnn_ctx_times(const dnn_ctx *ctx, double *mm_s, double *round_s) {
  *mm_s = ctx->ws->mm_s;
  *round_s = ctx->ws->round_s;
}

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

static void cvt_row_ref(uint16_t *restrict dst, const float *restrict x, int64_t n) {
#pragma omp simd
  for (int64_t i = 0; i < n; i++) dst[i] = bf16_round(x[i]);
}

/* Built for AVX512_BF16 (-march=native on such a CPU), the same rounding by the instruction: Intel's
 * definition of vcvtneps2bf16 is bf16_round's (nearest even, a subnormal input to a signed zero, NaN
 * quieted), 16 elements an instruction where the portable loop needs about ten. The rounding of the
 * bf16 step's operands took a sixth of it before (docs/performance.md); test_bf16 checks the two
 * bit for bit. */
#ifdef __AVX512BF16__
#include <immintrin.h>
static void cvt_row(uint16_t *restrict dst, const float *restrict x, int64_t n) {
  int64_t i = 0;
  for (; i + 32 <= n; i += 32) {
    __m512bh h = _mm512_cvtne2ps_pbh(_mm512_loadu_ps(x + i + 16), _mm512_loadu_ps(x + i));
    _mm512_storeu_si512((void *)(dst + i), (__m512i)h);
  }
  for (; i < n; i += 16) {
    __mmask16 m = n - i >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (n - i)) - 1);
    __m256bh h = _mm512_cvtneps_pbh(_mm512_maskz_loadu_ps(m, x + i));
    _mm256_mask_storeu_epi16(dst + i, m, (__m256i)h);
  }
}
#else
#define cvt_row cvt_row_ref
#endif

void bf16_from_f32(uint16_t *dst, const float *x, size_t n) {
  enum { BLK = 4096 };
  const int64_t nb = (int64_t)((n + BLK - 1) / BLK);
#pragma omp parallel for schedule(static) if (n >= 65536)
  for (int64_t b = 0; b < nb; b++) {
    int64_t lo = b * BLK, len = (int64_t)n - lo < BLK ? (int64_t)n - lo : BLK;
    cvt_row(dst + lo, x + lo, len);
  }
}

void bf16_from_f32_ref(uint16_t *dst, const float *x, size_t n) { cvt_row_ref(dst, x, (int64_t)n); }

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
  /* stored densely already: one flat run, not a loop call per (often 64-element) row */
  if (v.ld == v.cols && (v.nb == 1 || v.bs == v.rows * v.cols)) {
    bf16_from_f32(dst, src, view_elems(v));
    return;
  }
  const int64_t n = v.nb * v.rows;
#pragma omp parallel for schedule(static) if (n * v.cols >= 32768)
  for (int64_t i = 0; i < n; i++) {
    int64_t b = i / v.rows, r = i % v.rows;
    cvt_row(dst + i * v.cols, src + b * v.bs + r * v.ld, v.cols);
  }
}

/* The primitive for descriptor d with operand descriptors amd, bmd (C, bias f32) and d's post-ops. */
static void kern_init(mm_kern *k, const dnn_ctx *ctx, const mm_desc *d, const dnnl_memory_desc_t *amd,
                      const dnnl_memory_desc_t *bmd) {
  dnnl_memory_desc_t cmd, biasmd;
  md3(&cmd, d->batch, d->M, d->N, 0, d->ldc, d->batch_stride_c, dnnl_f32);
  if (d->bias) {
    dnnl_dims_t bd = {1, 1, d->N};
    CHECK_DNNL(dnnl_memory_desc_init_by_tag(&biasmd, 3, bd, dnnl_f32, dnnl_abc));
  }
  dnnl_matmul_desc_t desc;
  CHECK_DNNL(dnnl_matmul_desc_init(&desc, amd, bmd, d->bias ? &biasmd : NULL, &cmd));

  dnnl_primitive_attr_t attr;
  dnnl_post_ops_t po;
  CHECK_DNNL(dnnl_primitive_attr_create(&attr));
  CHECK_DNNL(dnnl_post_ops_create(&po));
  if (d->accumulate) CHECK_DNNL(dnnl_post_ops_append_sum(po, 1.0f));
  switch (d->act) {
    case MM_ACT_NONE: break;
    case MM_ACT_SILU: CHECK_DNNL(dnnl_post_ops_append_eltwise(po, 1.0f, dnnl_eltwise_swish, 1.0f, 0.0f)); break;
    case MM_ACT_SIGMOID: CHECK_DNNL(dnnl_post_ops_append_eltwise(po, 1.0f, dnnl_eltwise_logistic, 0.0f, 0.0f)); break;
    case MM_ACT_GELU_ERF: CHECK_DNNL(dnnl_post_ops_append_eltwise(po, 1.0f, dnnl_eltwise_gelu_erf, 0.0f, 0.0f)); break;
  }
  CHECK_DNNL(dnnl_primitive_attr_set_post_ops(attr, po));
  dnnl_primitive_desc_t pd;
  CHECK_DNNL(dnnl_primitive_desc_create(&pd, &desc, attr, ctx->engine, NULL));
  CHECK_DNNL(dnnl_primitive_create(&k->prim, pd));
  CHECK_DNNL(dnnl_primitive_desc_destroy(pd));
  CHECK_DNNL(dnnl_post_ops_destroy(po));
  CHECK_DNNL(dnnl_primitive_attr_destroy(attr));

  CHECK_DNNL(dnnl_memory_create(&k->a, amd, ctx->engine, DNNL_MEMORY_NONE));
  CHECK_DNNL(dnnl_memory_create(&k->b, bmd, ctx->engine, DNNL_MEMORY_NONE));
  CHECK_DNNL(dnnl_memory_create(&k->c, &cmd, ctx->engine, DNNL_MEMORY_NONE));
  k->bias = NULL;
  if (d->bias) CHECK_DNNL(dnnl_memory_create(&k->bias, &biasmd, ctx->engine, DNNL_MEMORY_NONE));
}

static void kern_free(mm_kern *k) {
  if (!k->prim) return;
  CHECK_DNNL(dnnl_primitive_destroy(k->prim));
  CHECK_DNNL(dnnl_memory_destroy(k->a));
  CHECK_DNNL(dnnl_memory_destroy(k->b));
  CHECK_DNNL(dnnl_memory_destroy(k->c));
  if (k->bias) CHECK_DNNL(dnnl_memory_destroy(k->bias));
  k->prim = NULL;
}

/* The bf16 primitive of one tile t (tile_desc: d with its batch, rows or depth cut): its operands
 * are dense copies of the tile's stored matrices (a broadcast operand: one matrix). */
static void kern_init_bf16(mm_kern *k, const dnn_ctx *ctx, const mm_desc *t) {
  dnnl_memory_desc_t amd, bmd;
  view va = operand_view(t->batch, t->M, t->K, t->trans_a, t->lda, t->batch_stride_a);
  view vb = operand_view(t->batch, t->K, t->N, t->trans_b, t->ldb, t->batch_stride_b);
  md3(&amd, t->batch, t->M, t->K, t->trans_a, va.cols, t->batch_stride_a < 0 ? -1 : 0, dnnl_bf16);
  md3(&bmd, t->batch, t->K, t->N, t->trans_b, vb.cols, t->batch_stride_b < 0 ? -1 : 0, dnnl_bf16);
  kern_init(k, ctx, t, &amd, &bmd);
}

/* Cut a bf16 product into tiles of about ctx->tile_elems converted elements: groups of batch entries
 * when it is batched, else blocks of rows (A not transposed; B, the weights, converted once), else
 * blocks of the reduction (A transposed; not with a fused activation, which needs the whole sum). */
static void plan_tiles(mm_plan *p, const dnn_ctx *ctx) {
  const mm_desc *d = &p->d;
  int64_t per = 0, count = 0, step = 1;
  if (d->batch > 1) {
    view va = operand_view(1, d->M, d->K, d->trans_a, d->lda, 0), vb = operand_view(1, d->K, d->N, d->trans_b, d->ldb, 0);
    per = (d->batch_stride_a < 0 ? 0 : (int64_t)view_elems(va)) + (d->batch_stride_b < 0 ? 0 : (int64_t)view_elems(vb));
    count = d->batch;
    p->tiling = MM_TILE_BATCH;
  } else if (!d->trans_a) {
    per = d->K, count = d->M;
    p->tiling = MM_TILE_ROWS;
  } else if (d->act == MM_ACT_NONE) {
    per = d->M + d->N, count = d->K;
    p->tiling = MM_TILE_DEPTH;
  }
  if (p->tiling != MM_TILE_BATCH && count >= 64) step = 64; /* whole register blocks where there are enough */
  int64_t tile = per > 0 ? ctx->tile_elems / per / step * step : 0;
  if (tile < step) tile = step;
  if (per == 0 || tile >= count) { /* nothing to cut: one whole tile */
    p->tiling = MM_TILE_NONE;
    p->tile = p->last = p->n_tiles = 1;
    return;
  }
  p->tile = tile;
  p->n_tiles = (count + tile - 1) / tile;
  p->last = count - (p->n_tiles - 1) * tile;
}

/* Tile i (of n batch entries, rows or depth) as a product of its own: DEPTH tiles after the first add
 * into C and leave the bias out (the first one has the plan's accumulate and bias). */
static mm_desc tile_desc(const mm_plan *p, int64_t i, int64_t n) {
  mm_desc t = p->d;
  if (p->tiling == MM_TILE_BATCH) t.batch = n;
  if (p->tiling == MM_TILE_ROWS) t.M = n;
  if (p->tiling == MM_TILE_DEPTH) {
    t.K = n;
    if (i > 0) t.accumulate = 1, t.bias = 0;
  }
  return t;
}

/* The kernel of tile i: k[2] for a shorter last tile, k[1] for later DEPTH tiles, else k[0]. */
static int tile_kern(const mm_plan *p, int64_t i) {
  if (i == p->n_tiles - 1 && p->last != p->tile) return 2;
  return p->tiling == MM_TILE_DEPTH && i > 0 ? 1 : 0;
}

void mm_plan_init(mm_plan *p, const dnn_ctx *ctx, mm_desc d) {
  if (d.batch < 1 || d.M < 1 || d.N < 1 || d.K < 1) DIE("mm_plan_init: bad shape %lld %lld %lld %lld",
      (long long)d.batch, (long long)d.M, (long long)d.N, (long long)d.K);
  if (!d.lda) d.lda = d.trans_a ? d.M : d.K;
  if (!d.ldb) d.ldb = d.trans_b ? d.K : d.N;
  if (!d.ldc) d.ldc = d.N;
  if (d.batch_stride_c < 0) DIE("mm_plan_init: C cannot be broadcast");
  memset(p, 0, sizeof *p);
  p->d = d;
  p->bf16 = ctx->prec == MM_PREC_BF16 && !d.f32_only;
  if (!p->bf16) {
    dnnl_memory_desc_t amd, bmd;
    md3(&amd, d.batch, d.M, d.K, d.trans_a, d.lda, d.batch_stride_a, dnnl_f32);
    md3(&bmd, d.batch, d.K, d.N, d.trans_b, d.ldb, d.batch_stride_b, dnnl_f32);
    kern_init(&p->k[0], ctx, &d, &amd, &bmd);
    p->tile = p->last = p->n_tiles = 1;
    return;
  }
  plan_tiles(p, ctx);
  for (int64_t i = 0; i < p->n_tiles; i++) { /* one kernel per distinct tile */
    mm_kern *k = &p->k[tile_kern(p, i)];
    if (k->prim) continue;
    mm_desc t = tile_desc(p, i, i == p->n_tiles - 1 ? p->last : p->tile);
    kern_init_bf16(k, ctx, &t);
  }
  mm_desc t = tile_desc(p, 0, p->tile);
  /* the workspace holds one converted tile: A, then B (64-byte aligned) */
  p->a_elems = view_elems(operand_view(t.batch, t.M, t.K, t.trans_a, t.lda, t.batch_stride_a));
  size_t need = lv_round_up(p->a_elems, 32) + view_elems(operand_view(t.batch, t.K, t.N, t.trans_b, t.ldb, t.batch_stride_b));
  if (need > ctx->ws->elems) { /* at plan creation, never in the step */
    free(ctx->ws->buf);
    ctx->ws->buf = (uint16_t *)(void *)lv_alloc_floats((need + 1) / 2);
    ctx->ws->elems = need;
  }
}

static void kern_exec(const mm_kern *k, const dnn_ctx *ctx, float *C, const void *A, const void *B, const float *bias) {
  CHECK_DNNL(dnnl_memory_set_data_handle(k->a, (void *)A));
  CHECK_DNNL(dnnl_memory_set_data_handle(k->b, (void *)B));
  CHECK_DNNL(dnnl_memory_set_data_handle(k->c, C));
  dnnl_exec_arg_t args[4] = {{DNNL_ARG_SRC, k->a}, {DNNL_ARG_WEIGHTS, k->b}, {DNNL_ARG_DST, k->c}};
  int n = 3;
  if (k->bias) {
    if (!bias) DIE("mm_exec: plan has a bias but none was given");
    CHECK_DNNL(dnnl_memory_set_data_handle(k->bias, (void *)bias));
    args[n++] = (dnnl_exec_arg_t){DNNL_ARG_BIAS, k->bias};
  }
  CHECK_DNNL(dnnl_primitive_execute(k->prim, ctx->stream, n, args));
  CHECK_DNNL(dnnl_stream_wait(ctx->stream));
}

/* bf16: tile by tile, round the tile's A (and B unless it is shared by every tile) into the
 * workspace, then multiply; a shared B (weights of a row tile, a broadcast B) is rounded once. */
static void exec_bf16(const mm_plan *p, const dnn_ctx *ctx, float *C, const float *A, const float *B, const float *bias) {
  const mm_desc *d = &p->d;
  uint16_t *a16 = ctx->ws->buf, *b16 = a16 + lv_round_up(p->a_elems, 32);
  const int b_shared = p->tiling == MM_TILE_ROWS || p->tiling == MM_TILE_NONE ||
                       (p->tiling == MM_TILE_BATCH && d->batch_stride_b < 0);
  view va0 = operand_view(d->batch, d->M, d->K, d->trans_a, d->lda, d->batch_stride_a);
  view vb0 = operand_view(d->batch, d->K, d->N, d->trans_b, d->ldb, d->batch_stride_b);
  const int64_t bs_c = d->batch_stride_c ? d->batch_stride_c : d->M * d->ldc;
  for (int64_t i = 0; i < p->n_tiles; i++) {
    const int64_t n = i + 1 < p->n_tiles ? p->tile : p->last, first = i * p->tile;
    mm_desc t = tile_desc(p, i, n);
    view va = operand_view(t.batch, t.M, t.K, t.trans_a, t.lda, t.batch_stride_a);
    view vb = operand_view(t.batch, t.K, t.N, t.trans_b, t.ldb, t.batch_stride_b);
    int64_t oa = 0, ob = 0, oc = 0;
    switch (p->tiling) {
      case MM_TILE_NONE: break;
      case MM_TILE_BATCH: /* whole matrices: batch strides */
        oa = d->batch_stride_a < 0 ? 0 : first * va0.bs;
        ob = d->batch_stride_b < 0 ? 0 : first * vb0.bs;
        oc = first * bs_c;
        break;
      case MM_TILE_ROWS: /* rows of A (not transposed) and of C */
        oa = first * d->lda;
        oc = first * d->ldc;
        break;
      case MM_TILE_DEPTH: /* rows of the transposed A; rows of B, or its columns if transposed */
        oa = first * d->lda;
        ob = d->trans_b ? first : first * d->ldb;
        break;
    }
    double t0 = ctx->ws->timing ? lv_now_s() : 0;
    view_to_bf16(a16, A + oa, va);
    if (!b_shared || i == 0) view_to_bf16(b16, B + ob, vb);
    if (ctx->ws->timing) ctx->ws->round_s += lv_now_s() - t0;
    kern_exec(&p->k[tile_kern(p, i)], ctx, C + oc, a16, b16, p->tiling != MM_TILE_DEPTH || i == 0 ? bias : NULL);
  }
}

void mm_exec(const mm_plan *p, const dnn_ctx *ctx, float *C, const float *A, const float *B, const float *bias) {
  double t0 = ctx->ws->timing ? lv_now_s() : 0;
  if (p->bf16) exec_bf16(p, ctx, C, A, B, bias);
  else kern_exec(&p->k[0], ctx, C, A, B, bias);
  if (ctx->ws->timing) ctx->ws->mm_s += lv_now_s() - t0;
}

void mm_plan_free(mm_plan *p) {
  for (int i = 0; i < 3; i++) kern_free(&p->k[i]);
}

double mm_flops(const mm_desc *d) { return 2.0 * (double)d->batch * (double)d->M * (double)d->N * (double)d->K; }
