/* See jsonl.h. */
#include "trainer/jsonl.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <string.h>

static void put(lv_jsonl *j, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(lv_jsonl *j, const char *fmt, ...) {
  if (j->overflow) return;
  va_list ap;
  va_start(ap, fmt);
  int k = vsnprintf(j->buf + j->n, sizeof j->buf - j->n, fmt, ap);
  va_end(ap);
  if (k < 0 || (size_t)k >= sizeof j->buf - j->n) j->overflow = 1;
  else j->n += (size_t)k;
}

static void key(lv_jsonl *j, const char *k) { put(j, "%s\"%s\": ", j->n > 1 ? ", " : "", k); }

static void number(lv_jsonl *j, const char *fmt, double v) {
  if (!isfinite(v)) {
    put(j, "null");
    return;
  }
  char b[64];
  snprintf(b, sizeof b, fmt, v);
  put(j, "%s", b);
}

void jsonl_begin(lv_jsonl *j) {
  j->n = 0;
  j->overflow = 0;
  put(j, "{");
}

void jsonl_num(lv_jsonl *j, const char *k, const char *fmt, double v) {
  key(j, k);
  number(j, fmt, v);
}

void jsonl_int(lv_jsonl *j, const char *k, long long v) {
  key(j, k);
  put(j, "%lld", v);
}

void jsonl_str(lv_jsonl *j, const char *k, const char *s) {
  key(j, k);
  put(j, "\"");
  for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
    if (*p == '"' || *p == '\\') put(j, "\\%c", *p);
    else if (*p < 0x20) put(j, "\\u%04x", *p);
    else put(j, "%c", *p);
  }
  put(j, "\"");
}

void jsonl_num_array(lv_jsonl *j, const char *k, const char *fmt, const double *v, int n) {
  key(j, k);
  put(j, "[");
  for (int i = 0; i < n; i++) {
    if (i) put(j, ",");
    number(j, fmt, v[i]);
  }
  put(j, "]");
}

int jsonl_write(lv_jsonl *j, FILE *f) {
  put(j, "}\n");
  if (j->overflow) {
    errno = EOVERFLOW;
    return -1;
  }
  if (fwrite(j->buf, 1, j->n, f) != j->n || fflush(f) != 0) return -1;
  return 0;
}
