/* Helpers of the fast-vs-reference layer tests: float/double twins of the same inputs, and an
 * elementwise comparison with an atol + rtol*|ref| tolerance that reports the worst error. */
#ifndef LONGVQ_TEST_COMPARE_H
#define LONGVQ_TEST_COMPARE_H

#include <math.h>
#include <stdint.h>
#include <stdio.h>

#include "tests/gradcheck.h"
#include "tests/test_util.h"

/* The same deterministic values in float (f) and double (d): d holds exactly the float values. */
static inline void fill_pair(float *f, double *d, int64_t n, unsigned seed, double scale) {
  gc_fill(d, n, seed, scale);
  for (int64_t i = 0; i < n; i++) d[i] = f[i] = (float)d[i];
}

/* |got - want| <= atol + rtol |want| everywhere (NaN fails); prints the worst error. */
static inline void cmp(const char *name, const float *got, const double *want, int64_t n, double atol, double rtol) {
  double maxabs = 0;
  int64_t bad = 0, first = -1;
  for (int64_t i = 0; i < n; i++) {
    double e = fabs((double)got[i] - want[i]);
    if (e > maxabs || isnan(e)) maxabs = isnan(e) ? INFINITY : e;
    if (!(e <= atol + rtol * fabs(want[i]))) { if (first < 0) first = i; bad++; }
  }
  printf("%-44s max abs err %.3e (atol %.1e, rtol %.1e, n %lld)\n", name, maxabs, atol, rtol, (long long)n);
  EXPECT(bad == 0, "%s: %lld of %lld out of tolerance; first at %lld: got %.9g want %.9g", name, (long long)bad,
         (long long)n, (long long)first, first >= 0 ? got[first] : 0.0, first >= 0 ? want[first] : 0.0);
}

#endif
