/* Minimal test harness: a test binary counts failed expectations and exits non-zero if any. */
#ifndef LONGVQ_TEST_UTIL_H
#define LONGVQ_TEST_UTIL_H

#include <math.h>
#include <stdio.h>

static int tu_failures = 0, tu_checks = 0;

#define EXPECT(cond, ...) do { tu_checks++; if (!(cond)) { tu_failures++; \
    fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond); fprintf(stderr, __VA_ARGS__); \
    fputc('\n', stderr); } } while (0)

/* |got - want| <= atol + rtol * |want|; NaN never passes. */
#define EXPECT_NEAR(got, want, atol, rtol) do { double g_ = (got), w_ = (want); \
    EXPECT(fabs(g_ - w_) <= (atol) + (rtol) * fabs(w_), "got %.9g want %.9g (atol %g rtol %g)", \
           g_, w_, (double)(atol), (double)(rtol)); } while (0)

/* Call at the end of main: prints the plain closing line and returns the exit code. */
static inline int tu_finish(const char *name) {
  printf("%s: %d checks, %d passed, %d failed\n", name, tu_checks, tu_checks - tu_failures, tu_failures);
  return tu_failures ? 1 : 0;
}

#endif
