/* One JSON object per line (metrics.jsonl), built in a fixed buffer and written whole.
 *
 * Numbers that are not finite are written as null (JSON has no NaN or Infinity, and parsers reject
 * them); strings are escaped. jsonl_write writes the line and flushes, and reports a failed write
 * (a full disk, a closed file) instead of losing the line silently. Local; not thread-safe. */
#ifndef LONGVQ_JSONL_H
#define LONGVQ_JSONL_H

#include <stddef.h>
#include <stdio.h>

typedef struct {
  char buf[8192];
  size_t n;
  int overflow; /* the object did not fit: jsonl_write refuses it */
} lv_jsonl;

void jsonl_begin(lv_jsonl *j);
/* "key": v formatted with fmt (a printf double format, e.g. "%.10g"), or null if v is not finite. */
void jsonl_num(lv_jsonl *j, const char *key, const char *fmt, double v);
void jsonl_int(lv_jsonl *j, const char *key, long long v);
/* "key": "s", escaped. */
void jsonl_str(lv_jsonl *j, const char *key, const char *s);
/* "key": [v0, v1, ...] with each element as in jsonl_num. */
void jsonl_num_array(lv_jsonl *j, const char *key, const char *fmt, const double *v, int n);
/* Ends the object and writes it with a newline to f, then flushes. 0, or -1 (errno set) if the line
 * could not be written whole. */
int jsonl_write(lv_jsonl *j, FILE *f);

#endif
