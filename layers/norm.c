/* Layer/RMS/Scale norms and lnz (see norm.h). Threads over rows; reductions in double. */
#include "layers/norm.h"

#include <math.h>

#include "trainer/base/check.h"

#define PAR_MIN 32768 /* elements from which loops use OpenMP threads */
#define NCHUNK 256    /* fixed row chunks for the scalar (dscale) reduction */
#define CB 64         /* column block of the weight/bias gradient pass */

size_t norm_saved_floats(int64_t rows) { return (size_t)(2 * rows); }

int64_t norm_param_floats(norm_kind kind, int64_t D) {
  switch (kind) {
    case NORM_LAYERNORM: return 2 * D;
    case NORM_RMSNORM: return D;
    case NORM_SCALENORM: return 1;
  }
  DIE("norm: unknown kind %d", (int)kind);
}

/* y = (x - mean) rstd * (w[j] or ws) (+ b[j]); center = 0 gives mean 0 (RMS statistics). */
static void forward_impl(float *y, const float *x, const float *w, float ws, const float *b, int center,
                         float *saved, int64_t rows, int64_t D) {
  float *mean = saved, *rstd = saved + rows;
#pragma omp parallel for schedule(static) if (rows * D >= PAR_MIN)
  for (int64_t r = 0; r < rows; r++) {
    const float *xr = x + r * D;
    float *yr = y + r * D;
    double m = 0;
    if (center) {
      double s = 0;
#pragma omp simd reduction(+ : s)
      for (int64_t j = 0; j < D; j++) s += xr[j];
      m = s / (double)D;
    }
    double v = 0;
#pragma omp simd reduction(+ : v)
    for (int64_t j = 0; j < D; j++) {
      double c = xr[j] - m;
      v += c * c;
    }
    float mf = (float)m, rf = (float)(1.0 / sqrt(v / (double)D + NORM_EPS));
    mean[r] = mf;
    rstd[r] = rf;
    if (w && b) {
#pragma omp simd
      for (int64_t j = 0; j < D; j++) yr[j] = (xr[j] - mf) * rf * w[j] + b[j];
    } else if (w) {
#pragma omp simd
      for (int64_t j = 0; j < D; j++) yr[j] = (xr[j] - mf) * rf * w[j];
    } else {
#pragma omp simd
      for (int64_t j = 0; j < D; j++) yr[j] = (xr[j] - mf) * rf * ws;
    }
  }
}

/* dx += rstd (g - center*mean(g) - xhat mean(g xhat)), g = dy * (w[j] or ws). If part != NULL,
 * part[c] = sum over chunk c's rows of sum_j dy xhat (the scale gradient, reduced in fixed order). */
static void backward_dx(float *dx, const float *dy, const float *x, const float *w, float ws, int center,
                        const float *saved, int64_t rows, int64_t D, double *part) {
  const float *mean = saved, *rstd = saved + rows;
#pragma omp parallel for schedule(static) if (rows * D >= PAR_MIN)
  for (int64_t c = 0; c < NCHUNK; c++) {
    int64_t r0 = c * rows / NCHUNK, r1 = (c + 1) * rows / NCHUNK;
    double pacc = 0;
    for (int64_t r = r0; r < r1; r++) {
      const float *xr = x + r * D, *gr = dy + r * D;
      float mf = mean[r], rf = rstd[r];
      double sg = 0, sgx = 0, sdx = 0;
      if (w) {
#pragma omp simd reduction(+ : sg, sgx, sdx)
        for (int64_t j = 0; j < D; j++) {
          float xh = (xr[j] - mf) * rf, g = gr[j] * w[j];
          sg += g;
          sgx += (double)g * xh;
          sdx += (double)gr[j] * xh;
        }
      } else {
#pragma omp simd reduction(+ : sg, sgx, sdx)
        for (int64_t j = 0; j < D; j++) {
          float xh = (xr[j] - mf) * rf, g = gr[j] * ws;
          sg += g;
          sgx += (double)g * xh;
          sdx += (double)gr[j] * xh;
        }
      }
      pacc += sdx;
      if (!dx) continue;
      float a = center ? (float)(sg / (double)D) : 0.0f, cc = (float)(sgx / (double)D);
      float *dr = dx + r * D;
      if (w) {
#pragma omp simd
        for (int64_t j = 0; j < D; j++) {
          float xh = (xr[j] - mf) * rf;
          dr[j] += rf * (gr[j] * w[j] - a - xh * cc);
        }
      } else {
#pragma omp simd
        for (int64_t j = 0; j < D; j++) {
          float xh = (xr[j] - mf) * rf;
          dr[j] += rf * (gr[j] * ws - a - xh * cc);
        }
      }
    }
    if (part) part[c] = pacc;
  }
}

/* dw[j] += sum_r dy xhat, db[j] += sum_r dy (db may be NULL): threads over column blocks, rows in
 * order inside, double sums. */
static void param_grads(float *dw, float *db, const float *dy, const float *x, const float *saved, int64_t rows,
                        int64_t D) {
  const float *mean = saved, *rstd = saved + rows;
  int64_t nb = (D + CB - 1) / CB;
#pragma omp parallel for schedule(static) if (rows * D >= PAR_MIN && nb > 1)
  for (int64_t blk = 0; blk < nb; blk++) {
    int64_t c0 = blk * CB, nc = D - c0 < CB ? D - c0 : CB;
    double aw[CB] = {0}, ab[CB] = {0};
    for (int64_t r = 0; r < rows; r++) {
      const float *xr = x + r * D + c0, *gr = dy + r * D + c0;
      float mf = mean[r], rf = rstd[r];
#pragma omp simd
      for (int64_t j = 0; j < nc; j++) {
        float xh = (xr[j] - mf) * rf;
        aw[j] += (double)gr[j] * xh;
        ab[j] += gr[j];
      }
    }
    for (int64_t j = 0; j < nc; j++) {
      dw[c0 + j] += (float)aw[j];
      if (db) db[c0 + j] += (float)ab[j];
    }
  }
}

void norm_forward(norm_kind kind, float *y, const float *x, const float *weight, const float *bias, float *saved,
                  int64_t rows, int64_t D) {
  switch (kind) {
    case NORM_LAYERNORM: forward_impl(y, x, weight, 0, bias, 1, saved, rows, D); return;
    case NORM_RMSNORM: forward_impl(y, x, weight, 0, NULL, 0, saved, rows, D); return;
    case NORM_SCALENORM: forward_impl(y, x, NULL, weight[0], NULL, 0, saved, rows, D); return;
  }
  DIE("norm_forward: unknown kind %d", (int)kind);
}

void norm_backward(norm_kind kind, float *dx, float *dweight, float *dbias, const float *dy, const float *x,
                   const float *weight, const float *saved, int64_t rows, int64_t D) {
  switch (kind) {
    case NORM_LAYERNORM:
      if (dx) backward_dx(dx, dy, x, weight, 0, 1, saved, rows, D, NULL);
      if (dweight) param_grads(dweight, dbias, dy, x, saved, rows, D);
      return;
    case NORM_RMSNORM:
      if (dx) backward_dx(dx, dy, x, weight, 0, 0, saved, rows, D, NULL);
      if (dweight) param_grads(dweight, NULL, dy, x, saved, rows, D);
      return;
    case NORM_SCALENORM: {
      double part[NCHUNK];
      backward_dx(dx, dy, x, NULL, weight[0], 0, saved, rows, D, part);
      double s = 0;
      for (int c = 0; c < NCHUNK; c++) s += part[c];
      if (dweight) dweight[0] += (float)s;
      return;
    }
  }
  DIE("norm_backward: unknown kind %d", (int)kind);
}

void lnz_forward(float *y, const float *x, float scale, float *saved, int64_t rows, int64_t Z) {
  forward_impl(y, x, NULL, scale, NULL, 1, saved, rows, Z);
}

void lnz_backward(float *dx, const float *dy, const float *x, float scale, const float *saved, int64_t rows,
                  int64_t Z) {
  backward_dx(dx, dy, x, NULL, scale, 1, saved, rows, Z, NULL);
}
