/* Shared pieces of the converters: a table-driven option parser that also records the options
 * that shape the content (provenance), whole-file reads, growable arrays. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/data_convert.h"
#include "trainer/base/check.h"

static void print_help(const char *kind, const char *usage, const lv_opt *opts) {
  printf("usage: longvq data %s %s\n\n%s options:\n", kind, usage, kind);
  for (const lv_opt *o = opts; o->name; o++) {
    const char *arg = o->kind == LV_OPT_FLAG ? "" : o->kind == LV_OPT_STR ? " S" : o->kind == LV_OPT_F64 ? " X" : " N";
    char left[64];
    snprintf(left, sizeof left, "%s%s", o->name, arg);
    printf("  %-20s %s\n", left, o->help);
  }
  printf("  %-20s %s\n", "--help", "this text");
}

static void parse_value(const char *kind, const lv_opt *o, const char *v) {
  char *end = NULL;
  errno = 0;
  switch (o->kind) {
    case LV_OPT_I64: {
      long long x = strtoll(v, &end, 10);
      if (errno || !*v || *end) DIE_INPUT("data %s: %s '%s': not an integer", kind, o->name, v);
      *(int64_t *)o->dst = x;
      break;
    }
    case LV_OPT_U64: {
      unsigned long long x = strtoull(v, &end, 0);
      if (errno || !*v || *end || v[0] == '-') DIE_INPUT("data %s: %s '%s': not a non-negative integer", kind, o->name, v);
      *(uint64_t *)o->dst = x;
      break;
    }
    case LV_OPT_F64: {
      double x = strtod(v, &end);
      if (errno || !*v || *end) DIE_INPUT("data %s: %s '%s': not a number", kind, o->name, v);
      *(double *)o->dst = x;
      break;
    }
    case LV_OPT_STR: *(char **)o->dst = (char *)v; break;
    case LV_OPT_FLAG: *(int *)o->dst = 1; break;
  }
}

static void append(char *buf, size_t cap, const char *s) {
  size_t len = strlen(buf);
  if (len + 1 < cap) snprintf(buf + len, cap - len, "%s%s", len ? " " : "", s);
}

int lv_opts_parse(const char *kind, const char *usage, int argc, char **argv, const lv_opt *opts, int *n_pos,
                  char ***pos, char *prov, size_t cap) {
  if (n_pos) *n_pos = 0;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
      print_help(kind, usage, opts);
      return 1;
    }
    if (a[0] != '-' || a[1] != '-') {
      if (!n_pos) DIE_INPUT("data %s: unexpected argument '%s' (see longvq data %s --help)", kind, a, kind);
      (*pos)[(*n_pos)++] = argv[i];
      continue;
    }
    const lv_opt *o = opts;
    while (o->name && strcmp(o->name, a)) o++;
    if (!o->name) DIE_INPUT("data %s: unknown option '%s' (see longvq data %s --help)", kind, a, kind);
    if (o->kind != LV_OPT_FLAG) {
      if (i + 1 >= argc) DIE_INPUT("data %s: %s needs a value", kind, a);
      parse_value(kind, o, argv[++i]);
    } else {
      parse_value(kind, o, NULL);
    }
  }
  /* Provenance: every content-shaping option with its effective value, in table order. */
  prov[0] = 0;
  for (const lv_opt *o = opts; o->name; o++) {
    if (!o->provenance) continue;
    char v[512];
    switch (o->kind) {
      case LV_OPT_I64: snprintf(v, sizeof v, "%s %lld", o->name, (long long)*(int64_t *)o->dst); break;
      case LV_OPT_U64: snprintf(v, sizeof v, "%s %llu", o->name, (unsigned long long)*(uint64_t *)o->dst); break;
      case LV_OPT_F64: snprintf(v, sizeof v, "%s %.17g", o->name, *(double *)o->dst); break;
      case LV_OPT_STR:
        if (!*(char **)o->dst) continue;
        snprintf(v, sizeof v, "%s %s", o->name, *(char **)o->dst);
        break;
      case LV_OPT_FLAG:
        if (!*(int *)o->dst) continue;
        snprintf(v, sizeof v, "%s", o->name);
        break;
    }
    append(prov, cap, v);
  }
  return 0;
}

void lv_data_check_common(const char *kind, const lv_data_common *c) {
  if (!c->out || !c->out[0]) DIE_INPUT("data %s: --out FILE.h5 is required", kind);
  if (c->shards < 1 || c->shards > 99999) DIE_INPUT("data %s: --shards %lld: must be in [1, 99999]", kind, (long long)c->shards);
}

void lv_data_check_generated(const char *kind, const int64_t n[3], int64_t L, int64_t C) {
  for (int s = 0; s < 3; s++)
    if (n[s] < 0 || n[s] > ((int64_t)1 << 32)) DIE_INPUT("data %s: split sizes must be in [0, 2^32]", kind);
  if (n[0] < 1) DIE_INPUT("data %s: --train must be >= 1", kind);
  if (C < 2 || C % 2) DIE_INPUT("data %s: --chunk %lld: must be even and >= 2", kind, (long long)C);
  if (L < C || L % C)
    DIE_INPUT("data %s: --seq-len %lld: must be a positive multiple of --chunk %lld", kind, (long long)L, (long long)C);
}

char *lv_read_file(const char *path, int64_t *len) {
  FILE *f = fopen(path, "rb");
  if (!f) DIE_INPUT("%s: cannot open: %s", path, strerror(errno));
  lv_u8vec v = {0};
  uint8_t buf[1 << 16];
  size_t got;
  while ((got = fread(buf, 1, sizeof buf, f)) > 0) lv_u8_push(&v, buf, (int64_t)got);
  if (ferror(f)) DIE_INPUT("%s: read error: %s", path, strerror(errno));
  fclose(f);
  uint8_t nul = 0;
  lv_u8_push(&v, &nul, 1);
  *len = v.n - 1;
  return (char *)v.p;
}

static void *grow(void *p, int64_t *cap, int64_t need, size_t elem) {
  if (need <= *cap) return p;
  int64_t c = *cap ? *cap : 1024;
  while (c < need) c *= 2;
  void *np = realloc(p, (size_t)c * elem);
  CHECK_ALLOC(np);
  *cap = c;
  return np;
}

void lv_u8_push(lv_u8vec *v, const uint8_t *src, int64_t n) {
  v->p = grow(v->p, &v->cap, v->n + n, 1);
  memcpy(v->p + v->n, src, (size_t)n);
  v->n += n;
}

void lv_i64_push(lv_i64vec *v, int64_t x) {
  v->p = grow(v->p, &v->cap, v->n + 1, sizeof x);
  v->p[v->n++] = x;
}

void lv_i32_push(lv_i32vec *v, int32_t x) {
  v->p = grow(v->p, &v->cap, v->n + 1, sizeof x);
  v->p[v->n++] = x;
}
