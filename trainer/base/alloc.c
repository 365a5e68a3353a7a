/* See alloc.h. */
#include "trainer/base/alloc.h"

#include <stdlib.h>
#include <string.h>

#include "trainer/base/check.h"

float *lv_alloc_floats(size_t n) {
  float *p = NULL;
  if (posix_memalign((void **)&p, 64, sizeof(float) * (n ? n : 1)) != 0) p = NULL;
  CHECK_ALLOC(p);
  memset(p, 0, sizeof(float) * n);
  return p;
}
