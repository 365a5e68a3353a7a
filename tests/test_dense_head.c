/* Heads: gradcheck of the double twins (encoder head: x, dense.weight/bias, out.weight/bias with a
 * padded mask; LM head: x, E), float paths vs twins, tied-embedding accumulation, and the error on
 * a sequence without valid tokens. */
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "layers/head.h"
#include "layers/ref/head_ref.h"
#include "tests/gradcheck.h"
#include "tests/compare.h"
#include "tests/test_util.h"


/* ---- encoder head gradcheck ------------------------------------------------------------- */
enum { GB = 2, GL = 5, GD = 4, GK = 3 };
typedef struct {
  double *x, *m, *dw, *db, *ow, *ob, *logits, *saved, *R;
} gc_head;

static double loss_head(void *p) {
  gc_head *c = p;
  head_forward_ref(c->logits, c->x, c->m, c->dw, c->db, c->ow, c->ob, c->saved, GB, GL, GD, GK);
  double s = 0;
  for (int i = 0; i < GB * GK; i++) s += c->R[i] * c->logits[i];
  return s;
}

static void gradcheck_head(void) {
  double x[GB * GL * GD], m[GB * GL] = {1, 1, 1, 0, 0, 1, 1, 1, 1, 1}, dw[GD * GD], db[GD], ow[GK * GD], ob[GK];
  double logits[GB * GK], saved[3 * GB * GD + GB], R[GB * GK];
  double gx[GB * GL * GD] = {0}, gdw[GD * GD] = {0}, gdb[GD] = {0}, gow[GK * GD] = {0}, gob[GK] = {0};
  gc_fill(x, GB * GL * GD, 91, 2.0);
  gc_fill(dw, GD * GD, 92, 1.0);
  gc_fill(db, GD, 93, 0.5);
  gc_fill(ow, GK * GD, 94, 1.0);
  gc_fill(ob, GK, 95, 0.5);
  gc_fill(R, GB * GK, 96, 1.0);
  gc_head c = {x, m, dw, db, ow, ob, logits, saved, R};
  loss_head(&c);
  head_backward_ref(gx, gdw, gdb, gow, gob, R, m, dw, ow, saved, GB, GL, GD, GK);
  struct { const char *n; double *v, *g; int64_t k; } t[] = {
      {"head_ref dx (padded)", x, gx, GB * GL * GD}, {"head_ref d dense.weight", dw, gdw, GD * GD},
      {"head_ref d dense.bias", db, gdb, GD},         {"head_ref d out.weight", ow, gow, GK * GD},
      {"head_ref d out.bias", ob, gob, GK}};
  for (int i = 0; i < 5; i++) {
    double e = gc_check(t[i].n, loss_head, &c, t[i].v, t[i].g, t[i].k, 1e-5);
    EXPECT(e < 1e-6, "%s rel err %.3e", t[i].n, e);
  }
  /* Padded positions get exactly zero gradient. */
  for (int j = 0; j < GD; j++) EXPECT(gx[3 * GD + j] == 0 && gx[4 * GD + j] == 0, "padding gets gradient");
}

/* ---- LM head gradcheck ---------------------------------------------------------------------- */
enum { LR = 3, LD = 4, LV = 5 };
typedef struct {
  double *x, *E, *logits, *R;
} gc_lm;

static double loss_lm(void *p) {
  gc_lm *c = p;
  lm_head_forward_ref(c->logits, c->x, c->E, LR, LD, LV);
  double s = 0;
  for (int i = 0; i < LR * LV; i++) s += c->R[i] * c->logits[i];
  return s;
}

static void gradcheck_lm(void) {
  double x[LR * LD], E[LV * LD], logits[LR * LV], R[LR * LV], gx[LR * LD] = {0}, gE[LV * LD] = {0};
  gc_fill(x, LR * LD, 97, 1.0);
  gc_fill(E, LV * LD, 98, 1.0);
  gc_fill(R, LR * LV, 99, 1.0);
  gc_lm c = {x, E, logits, R};
  lm_head_backward_ref(gx, gE, R, x, E, LR, LD, LV);
  double e = gc_check("lm_head_ref dx", loss_lm, &c, x, gx, LR * LD, 1e-5);
  EXPECT(e < 1e-6, "lm dx %.3e", e);
  e = gc_check("lm_head_ref dE", loss_lm, &c, E, gE, LV * LD, 1e-5);
  EXPECT(e < 1e-6, "lm dE %.3e", e);
}

/* ---- float vs twin ------------------------------------------------------------------------ */
static void compare_head(const dnn_ctx *ctx, int64_t B, int64_t L, int64_t D, int64_t K) {
  head_plan p;
  head_plan_init(&p, ctx, B, L, D, K);
  int64_t nx = B * L * D;
  float *x = malloc(4 * nx), *m = malloc(4 * B * L), *dw = malloc(4 * D * D), *db = malloc(4 * D);
  float *ow = malloc(4 * K * D), *ob = malloc(4 * K), *logits = malloc(4 * B * K), *dl = malloc(4 * B * K);
  float *saved = malloc(4 * head_saved_floats(B, D)), *scratch = malloc(4 * head_scratch_floats(B, D));
  float *gx = malloc(4 * nx), *gdw = malloc(4 * D * D), *gdb = malloc(4 * D), *gow = malloc(4 * K * D), *gob = malloc(4 * K);
  double *xd = malloc(8 * nx), *md = malloc(8 * B * L), *dwd = malloc(8 * D * D), *dbd = malloc(8 * D);
  double *owd = malloc(8 * K * D), *obd = malloc(8 * K), *logitsd = malloc(8 * B * K), *dld = malloc(8 * B * K);
  double *savedd = malloc(8 * (3 * B * D + B)), *gxd = malloc(8 * nx), *gdwd = malloc(8 * D * D);
  double *gdbd = malloc(8 * D), *gowd = malloc(8 * K * D), *gobd = malloc(8 * K);
  fill_pair(x, xd, nx, 101, 1.0);
  for (int64_t b = 0; b < B; b++) /* sequence b has L - 3b valid tokens (at least 1) */
    for (int64_t t = 0; t < L; t++) md[b * L + t] = m[b * L + t] = t < (L - 3 * b > 1 ? L - 3 * b : 1) ? 1.0f : 0.0f;
  fill_pair(dw, dwd, D * D, 102, 0.3);
  fill_pair(db, dbd, D, 103, 0.5);
  fill_pair(ow, owd, K * D, 104, 0.3);
  fill_pair(ob, obd, K, 105, 0.5);
  fill_pair(dl, dld, B * K, 106, 1.0);
  fill_pair(gx, gxd, nx, 107, 1.0);
  fill_pair(gdw, gdwd, D * D, 108, 1.0);
  fill_pair(gdb, gdbd, D, 109, 1.0);
  fill_pair(gow, gowd, K * D, 110, 1.0);
  fill_pair(gob, gobd, K, 111, 1.0);
  head_forward(&p, ctx, logits, x, m, dw, db, ow, ob, saved);
  head_forward_ref(logitsd, xd, md, dwd, dbd, owd, obd, savedd, B, L, D, K);
  head_backward(&p, ctx, gx, gdw, gdb, gow, gob, dl, m, dw, ow, saved, scratch);
  head_backward_ref(gxd, gdwd, gdbd, gowd, gobd, dld, md, dwd, owd, savedd, B, L, D, K);
  /* Values are O(1); the longest float reductions are the two D-term matmul sums (|w| <= 0.3):
   * worst-case D eps; pooling is a double sum rounded once. */
  double at = FLT_EPSILON * D + 1e-6, rt = 4e-6;
  char nm[96];
  snprintf(nm, sizeof nm, "head B %lld L %lld D %lld K %lld: pooled", (long long)B, (long long)L, (long long)D, (long long)K);
  cmp(nm, saved, savedd, B * D, 1e-7, 2 * FLT_EPSILON);
  snprintf(nm, sizeof nm, "head B %lld L %lld D %lld K %lld: logits", (long long)B, (long long)L, (long long)D, (long long)K);
  cmp(nm, logits, logitsd, B * K, at, rt);
  snprintf(nm, sizeof nm, "head: dx");
  cmp(nm, gx, gxd, nx, at, rt);
  snprintf(nm, sizeof nm, "head: d dense.weight");
  cmp(nm, gdw, gdwd, D * D, at, rt);
  snprintf(nm, sizeof nm, "head: d dense.bias");
  cmp(nm, gdb, gdbd, D, at, rt);
  snprintf(nm, sizeof nm, "head: d out.weight");
  cmp(nm, gow, gowd, K * D, at, rt);
  snprintf(nm, sizeof nm, "head: d out.bias");
  cmp(nm, gob, gobd, K, at, rt);
  head_plan_free(&p);
  free(x); free(m); free(dw); free(db); free(ow); free(ob); free(logits); free(dl); free(saved); free(scratch);
  free(gx); free(gdw); free(gdb); free(gow); free(gob); free(xd); free(md); free(dwd); free(dbd); free(owd);
  free(obd); free(logitsd); free(dld); free(savedd); free(gxd); free(gdwd); free(gdbd); free(gowd); free(gobd);
}

static void compare_lm(const dnn_ctx *ctx, int64_t rows, int64_t D, int64_t V) {
  lm_head_plan p;
  lm_head_plan_init(&p, ctx, rows, D, V);
  float *x = malloc(4 * rows * D), *E = malloc(4 * V * D), *lg = malloc(4 * rows * V), *dl = malloc(4 * rows * V);
  float *gx = malloc(4 * rows * D), *gE = malloc(4 * V * D);
  double *xd = malloc(8 * rows * D), *Ed = malloc(8 * V * D), *lgd = malloc(8 * rows * V), *dld = malloc(8 * rows * V);
  double *gxd = malloc(8 * rows * D), *gEd = malloc(8 * V * D);
  fill_pair(x, xd, rows * D, 121, 1.0);
  fill_pair(E, Ed, V * D, 122, 0.5);
  fill_pair(dl, dld, rows * V, 123, 1.0 / V);
  fill_pair(gx, gxd, rows * D, 124, 1.0);
  fill_pair(gE, gEd, V * D, 125, 1.0); /* tied: the embedding's scatter already added here */
  lm_head_forward(&p, ctx, lg, x, E);
  lm_head_forward_ref(lgd, xd, Ed, rows, D, V);
  lm_head_backward(&p, ctx, gx, gE, dl, x, E);
  lm_head_backward_ref(gxd, gEd, dld, xd, Ed, rows, D, V);
  /* Float matmul sums of K terms with |terms| <= 0.5 (forward K = D), <= 0.5/V (dx, K = V),
   * <= 1/V (dE, K = rows): worst-case K eps max|term|, plus the O(1) values accumulated onto. */
  char nm[96];
  snprintf(nm, sizeof nm, "lm_head rows %lld D %lld V %lld: logits", (long long)rows, (long long)D, (long long)V);
  cmp(nm, lg, lgd, rows * V, 0.5 * FLT_EPSILON * D, 4e-6);
  snprintf(nm, sizeof nm, "lm_head rows %lld D %lld V %lld: dx", (long long)rows, (long long)D, (long long)V);
  cmp(nm, gx, gxd, rows * D, 2 * FLT_EPSILON, 4e-6);
  snprintf(nm, sizeof nm, "lm_head rows %lld D %lld V %lld: dE (+= tied)", (long long)rows, (long long)D, (long long)V);
  cmp(nm, gE, gEd, V * D, FLT_EPSILON * ((double)rows / V + 2), 4e-6);
  lm_head_plan_free(&p);
  free(x); free(E); free(lg); free(dl); free(gx); free(gE); free(xd); free(Ed); free(lgd); free(dld); free(gxd); free(gEd);
}

/* A sequence with no valid token stops with exit code 1 (no division by zero). */
static void check_empty_sequence(void) {
  fflush(stdout);
  pid_t pid = fork();
  if (pid == 0) {
    dnn_ctx ctx;
    dnn_ctx_init(&ctx);
    head_plan p;
    head_plan_init(&p, &ctx, 2, 3, 2, 2);
    float x[12] = {0}, m[6] = {1, 1, 0, 0, 0, 0}, w[4] = {0}, b[2] = {0}, lg[4], saved[14];
    head_forward(&p, &ctx, lg, x, m, w, b, w, b, saved);
    _exit(0);
  }
  int st = 0;
  waitpid(pid, &st, 0);
  EXPECT(WIFEXITED(st) && WEXITSTATUS(st) == 1, "empty sequence: child status %d (want exit 1)", st);
}

int main(void) {
  check_empty_sequence();
  gradcheck_head();
  gradcheck_lm();
  dnn_ctx ctx;
  dnn_ctx_init(&ctx);
  compare_head(&ctx, 3, 7, 5, 4);
  compare_head(&ctx, 8, 200, 80, 10); /* threads in pooling, D > one 64-column block */
  compare_lm(&ctx, 7, 8, 11);
  compare_lm(&ctx, 1024, 128, 256);
  dnn_ctx_free(&ctx);
  return tu_finish("test_dense_head");
}
