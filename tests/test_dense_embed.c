/* Embedding: gradcheck of the double twin (dW, repeated tokens, masked rows), float gather and
 * scatter vs twin, bitwise determinism of the scatter (runs and thread counts), and the error on a
 * token id outside the vocabulary (in a child process: the layer exits). */
#include <float.h>
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "layers/embed.h"
#include "layers/ref/embed_ref.h"
#include "tests/gradcheck.h"
#include "tests/compare.h"
#include "tests/test_util.h"


typedef struct {
  const int32_t *tok;
  const double *m;
  double *W, *x, *R;
  int64_t BT, V, D;
} gc_ctx;

static double loss_embed(void *p) {
  gc_ctx *c = p;
  embed_forward_ref(c->x, c->tok, c->m, c->W, c->BT, c->V, c->D);
  double s = 0;
  for (int64_t i = 0; i < c->BT * c->D; i++) s += c->R[i] * c->x[i];
  return s;
}

static void gradcheck_embed(void) {
  enum { BT = 7, V = 5, D = 3 };
  int32_t tok[BT] = {1, 3, 1, 0, 4, 1, 3}; /* repeats; token 2 unused (zero gradient) */
  double m[BT] = {1, 1, 1, 1, 1, 0, 0};    /* padded tail */
  double W[V * D], x[BT * D], R[BT * D], dW[V * D] = {0};
  gc_fill(W, V * D, 51, 1.0);
  gc_fill(R, BT * D, 52, 1.0);
  gc_ctx c = {tok, m, W, x, R, BT, V, D};
  embed_backward_ref(dW, R, tok, m, BT, V, D);
  double e = gc_check("embed_ref dW (masked)", loss_embed, &c, W, dW, V * D, 1e-5);
  EXPECT(e < 1e-6, "embed dW rel err %.3e", e);
  c.m = NULL;
  memset(dW, 0, sizeof dW);
  embed_backward_ref(dW, R, tok, NULL, BT, V, D);
  e = gc_check("embed_ref dW (no mask)", loss_embed, &c, W, dW, V * D, 1e-5);
  EXPECT(e < 1e-6, "embed dW rel err %.3e", e);
}

static void compare_embed(int64_t BT, int64_t V, int64_t D, int masked) {
  float *W = malloc(4 * V * D), *x = malloc(4 * BT * D), *dx = malloc(4 * BT * D), *dW = malloc(4 * V * D);
  float *m = malloc(4 * BT);
  double *Wd = malloc(8 * V * D), *xd = malloc(8 * BT * D), *dxd = malloc(8 * BT * D), *dWd = malloc(8 * V * D);
  double *md = malloc(8 * BT);
  int32_t *tok = malloc(4 * BT);
  for (int64_t r = 0; r < BT; r++) {
    tok[r] = (int32_t)((r * 7919 + r / 3) % V);
    md[r] = m[r] = (r % 10) < 8 ? 1.0f : 0.0f;
  }
  fill_pair(W, Wd, V * D, 53, 1.0);
  fill_pair(dx, dxd, BT * D, 54, 1.0);
  fill_pair(dW, dWd, V * D, 55, 1.0);
  embed_forward(x, tok, masked ? m : NULL, W, BT, V, D);
  embed_forward_ref(xd, tok, masked ? md : NULL, Wd, BT, V, D);
  embed_backward(dW, dx, tok, masked ? m : NULL, BT, V, D);
  embed_backward_ref(dWd, dxd, tok, masked ? md : NULL, BT, V, D);
  char nm[96];
  snprintf(nm, sizeof nm, "embed BT %lld V %lld D %lld%s: x", (long long)BT, (long long)V, (long long)D,
           masked ? " masked" : "");
  cmp(nm, x, xd, BT * D, 0, 0); /* a gather times 0/1: exact */
  /* dW row v sums its c_v ~ BT/V occurrences (terms |dx| <= 1) in float, in token order: the
   * worst-case bound of recursive summation is c_v eps/2 * sum|terms| <= eps/2 c_v^2. */
  double reps = (double)BT / (double)V + 1;
  snprintf(nm, sizeof nm, "embed BT %lld V %lld D %lld%s: dW", (long long)BT, (long long)V, (long long)D,
           masked ? " masked" : "");
  cmp(nm, dW, dWd, V * D, 0.5 * FLT_EPSILON * reps * reps, FLT_EPSILON);
  free(W); free(x); free(dx); free(dW); free(m); free(Wd); free(xd); free(dxd); free(dWd); free(md); free(tok);
}

/* Same bits on every run and for 1 or 2 threads: no atomics, fixed order per dW entry. */
static void check_determinism(void) {
  int64_t BT = 8192, V = 37, D = 200;
  float *dx = malloc(4 * BT * D), *m = malloc(4 * BT), *a = calloc(V * D, 4), *b = calloc(V * D, 4), *c = calloc(V * D, 4);
  int32_t *tok = malloc(4 * BT);
  for (int64_t r = 0; r < BT; r++) { tok[r] = (int32_t)((r * r + 3 * r) % V); m[r] = 1.0f; }
  for (int64_t i = 0; i < BT * D; i++) dx[i] = (float)sin(0.77 * (double)i) * 100.0f;
  int nt = omp_get_max_threads();
  omp_set_num_threads(1);
  embed_backward(a, dx, tok, m, BT, V, D);
  omp_set_num_threads(nt > 1 ? nt : 2);
  embed_backward(b, dx, tok, m, BT, V, D);
  embed_backward(c, dx, tok, m, BT, V, D);
  omp_set_num_threads(nt);
  EXPECT(memcmp(a, b, 4 * V * D) == 0, "embed_backward differs between 1 and 2 threads");
  EXPECT(memcmp(b, c, 4 * V * D) == 0, "embed_backward differs between runs");
  free(dx); free(m); free(a); free(b); free(c); free(tok);
}

/* A token id >= V must stop with exit code 1 and a message, not read out of bounds. */
static void check_bad_token(void) {
  fflush(stdout);
  pid_t pid = fork();
  if (pid == 0) {
    float W[4 * 2], x[3 * 2];
    int32_t tok[3] = {0, 4, 1};
    for (int i = 0; i < 8; i++) W[i] = 0;
    embed_forward(x, tok, NULL, W, 3, 4, 2);
    _exit(0); /* not reached if the check works */
  }
  int st = 0;
  waitpid(pid, &st, 0);
  EXPECT(WIFEXITED(st) && WEXITSTATUS(st) == 1, "bad token id: child status %d (want exit 1)", st);
}

int main(void) {
  check_bad_token();
  gradcheck_embed();
  compare_embed(10, 4, 5, 1);
  compare_embed(4096, 256, 96, 1);
  compare_embed(3000, 50, 130, 0);
  check_determinism();
  return tu_finish("test_dense_embed");
}
