/* `longvq inspect FILE.h5 | SHARD-GLOB | F1,F2,...`: summarize a longvq file.
 * The kind of file is told by its root `format` attribute and dispatched through `kinds` below
 * (datasets here; checkpoints in trainer/inspect_ckpt.c). Rank 0 does the work. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/checkpoint.h"
#include "io/config.h" /* LV_MAX_SEQ_LEN */
#include "io/dataset.h"
#include "trainer/base/check.h"
#include "trainer/commands.h"
#include "trainer/base/dist.h"

/* What inspect prints is bounded whatever a file declares: class lines, vocab entries, bins. */
#define SHOW_CLASSES 64
#define SHOW_VOCAB 64

typedef struct {
  int verify;      /* check digests, read every sample / token and check ids */
  int64_t seq_len; /* LM: count windows of this length */
  int64_t bins;    /* length histogram bins */
} inspect_opts;

static void bar(int64_t count, int64_t max, int width) {
  int n = max > 0 ? (int)((double)count / (double)max * width + 0.5) : 0;
  for (int i = 0; i < n; i++) putchar('#');
}

static void class_balance(const lv_dataset *ds) {
  int64_t k = lv_dataset_num_classes(ds), n = lv_dataset_num_samples(ds), max = 0;
  int64_t *count = calloc((size_t)k, sizeof *count);
  CHECK_ALLOC(count);
  for (int64_t i = 0; i < n; i++) count[lv_dataset_label(ds, i)]++;
  for (int64_t c = 0; c < k; c++)
    if (count[c] > max) max = count[c];
  const char *const *names = lv_dataset_class_names(ds);
  printf("  class balance:\n");
  for (int64_t c = 0; c < k && c < SHOW_CLASSES; c++) {
    printf("    %4lld %-14.14s %9lld %6.2f%%  ", (long long)c, names ? names[c] : "", (long long)count[c],
           100.0 * (double)count[c] / (double)n);
    bar(count[c], max, 40);
    putchar('\n');
  }
  if (k > SHOW_CLASSES) printf("    ... %lld more classes\n", (long long)(k - SHOW_CLASSES));
  free(count);
}

static void length_histogram(const lv_dataset *ds, int64_t bins) {
  int64_t n = lv_dataset_num_samples(ds), lo = lv_dataset_min_length(ds), hi = lv_dataset_max_length(ds);
  int64_t width = (hi - lo + bins) / bins, max = 0; /* ceil((hi - lo + 1) / bins) */
  int64_t *count = calloc((size_t)bins, sizeof *count);
  CHECK_ALLOC(count);
  double sum = 0;
  for (int64_t i = 0; i < n; i++) {
    int64_t len = lv_dataset_length(ds, i);
    sum += (double)len;
    count[(len - lo) / width]++;
  }
  for (int64_t b = 0; b < bins; b++)
    if (count[b] > max) max = count[b];
  printf("  length: min %lld, mean %.1f, max %lld\n  length histogram:\n", (long long)lo, sum / (double)n,
         (long long)hi);
  for (int64_t b = 0; b < bins; b++) {
    int64_t a = lo + b * width, z = a + width - 1;
    if (a > hi) break;
    printf("    %6lld..%-6lld %9lld  ", (long long)a, (long long)(z < hi ? z : hi), (long long)count[b]);
    bar(count[b], max, 40);
    putchar('\n');
  }
  free(count);
}

/* The digests (format version 2): every array of every shard read and its CRC-32 compared. */
static void verify_digests(lv_dataset *ds) {
  lv_verify_stats st;
  char err[1024];
  int rc = lv_dataset_verify(ds, &st, err, sizeof err);
  if (rc > 0) DIE_INPUT("%s", err);
  if (rc < 0) {
    printf("  digests: none (format version 1): only the structure and the ids below are checked\n");
    return;
  }
  printf("  digests: %d arrays, %.1f MB, crc32 match (%.2f s, %.0f MB/s)\n", st.n_arrays, (double)st.bytes / 1e6,
         st.seconds, (double)st.bytes / 1e6 / (st.seconds > 1e-9 ? st.seconds : 1e-9));
}

/* Read everything through the reader, so the ids of every token get checked: the token stream in
 * blocks, or with --seq-len L the samples at length L as the trainer reads them (over-long samples
 * are errors). Buffers are bounded whatever the file declares. */
static void verify(lv_dataset *ds, int64_t seq_len) {
  verify_digests(ds);
  int lm = lv_dataset_task(ds) == LV_TASK_LM;
  if (lm || seq_len == 0) {
    int64_t total = lv_dataset_num_tokens(ds), block = 1 << 20;
    int32_t *buf = malloc((size_t)block * sizeof *buf);
    CHECK_ALLOC(buf);
    for (int64_t t = 0; t < total; t += block)
      lv_dataset_read_tokens(ds, t, total - t < block ? total - t : block, buf);
    free(buf);
    if (lm)
      printf("  verified: all %lld tokens read, ids < %lld\n", (long long)total, (long long)lv_dataset_vocab_size(ds));
    else
      printf("  verified: all %lld samples (%lld tokens) read, token ids < %lld, labels < %lld\n",
             (long long)lv_dataset_num_samples(ds), (long long)total, (long long)lv_dataset_vocab_size(ds),
             (long long)lv_dataset_num_classes(ds));
    return;
  }
  /* seq_len <= LV_MAX_SEQ_LEN (2^24): at most 4 Mi tokens (16 MiB) per batch, or one row. */
  int64_t n = lv_dataset_num_samples(ds), len = seq_len, batch = ((int64_t)1 << 22) / len;
  if (batch > 256) batch = 256;
  if (batch < 1) batch = 1;
  int32_t *tok = malloc((size_t)(batch * len) * sizeof *tok), *lbl = malloc((size_t)batch * sizeof *lbl);
  int64_t *idx = malloc((size_t)batch * sizeof *idx);
  CHECK_ALLOC(tok); CHECK_ALLOC(lbl); CHECK_ALLOC(idx);
  for (int64_t i = 0; i < n; i += batch) {
    int64_t m = n - i < batch ? n - i : batch;
    for (int64_t j = 0; j < m; j++) idx[j] = i + j;
    lv_dataset_read(ds, m, idx, tok, NULL, NULL, lbl, len, 0);
  }
  free(tok); free(lbl); free(idx);
  printf("  verified: all %lld samples read at length %lld, token ids < %lld, labels < %lld\n", (long long)n,
         (long long)len, (long long)lv_dataset_vocab_size(ds), (long long)lv_dataset_num_classes(ds));
}

static void header(const lv_dataset *ds, const char *spec) {
  int ns = lv_dataset_num_shards(ds);
  printf("dataset    %s (%d shard%s)\n", spec, ns, ns == 1 ? "" : "s");
  for (int k = 0; ns > 1 && k < ns; k++) printf("  shard %d  %s\n", k, lv_dataset_shard_path(ds, k));
  printf("format     %s version %d (%s)\n", lv_dataset_attr(ds, "format"), lv_dataset_format_version(ds),
         lv_dataset_has_digests(ds) ? "crc32 digests of every array"
                                    : "no digests: written before version 2, its contents cannot be verified");
  if (lv_dataset_task(ds) == LV_TASK_LM)
    printf("task       lm, vocab %lld\n", (long long)lv_dataset_vocab_size(ds));
  else
    printf("task       classification, vocab %lld, classes %lld\n", (long long)lv_dataset_vocab_size(ds),
           (long long)lv_dataset_num_classes(ds));
  printf("generator  %s (seed %llu)\n", lv_dataset_attr(ds, "generator"), (unsigned long long)lv_dataset_seed(ds));
  printf("options    %s\n", lv_dataset_attr(ds, "options"));
  const char *src = lv_dataset_attr(ds, "sources");
  printf("sources    %s", src[0] ? "" : "(generated)\n");
  for (const char *p = src; *p;) {
    const char *nl = strchr(p, '\n');
    int len = nl ? (int)(nl - p) : (int)strlen(p);
    printf("%s%.*s\n", p == src ? "" : "           ", len, p);
    p += len + (nl ? 1 : 0);
  }
  printf("created by %s\n", lv_dataset_attr(ds, "created_by"));
  const char *const *vt = lv_dataset_vocab_tokens(ds);
  if (vt) {
    printf("vocab     ");
    int64_t v = lv_dataset_vocab_size(ds);
    for (int64_t i = 0; i < v && i < SHOW_VOCAB; i++) printf(" %lld=%.32s", (long long)i, vt[i]);
    if (v > SHOW_VOCAB) printf(" ... (%lld more)", (long long)(v - SHOW_VOCAB));
    printf("\n");
  }
}

static int inspect_dataset(const char *spec, const inspect_opts *o) {
  char names[16][64];
  int n = lv_dataset_splits(spec, names, 16);
  if (n == 0) DIE_INPUT("%s: the dataset has no splits", spec);
  for (int s = 0; s < n; s++) {
    lv_dataset_opts opts = {names[s], o->seq_len, 0};
    lv_dataset *ds = lv_dataset_open(spec, &opts);
    if (s == 0) header(ds, spec);
    if (lv_dataset_task(ds) == LV_TASK_LM) {
      printf("split %s: %lld tokens", names[s], (long long)lv_dataset_num_tokens(ds));
      if (o->seq_len > 0)
        printf(", %lld windows of seq_len %lld (%lld tokens each)", (long long)lv_dataset_num_samples(ds),
               (long long)o->seq_len, (long long)(o->seq_len + 1));
      if (lv_dataset_has_eval_mask(ds)) printf("; has an eval_mask (evaluation scores only the marked targets)");
      printf("\n");
    } else {
      printf("split %s: %lld samples, %lld tokens\n", names[s], (long long)lv_dataset_num_samples(ds),
             (long long)lv_dataset_num_tokens(ds));
      class_balance(ds);
      length_histogram(ds, o->bins);
    }
    if (o->verify) verify(ds, o->seq_len);
    lv_dataset_close(ds);
  }
  return LV_EXIT_OK;
}

/* Checkpoints: trainer/inspect_ckpt.c (every dataset is read: the options do not apply). */
static int inspect_ckpt(const char *spec, const inspect_opts *o) {
  (void)o;
  if (strchr(spec, ',')) DIE_INPUT("%s: inspect one checkpoint at a time", spec);
  return inspect_checkpoint(spec);
}

/* File kinds by root `format` attribute. */
static const struct {
  const char *format;
  int (*summarize)(const char *spec, const inspect_opts *o);
} kinds[] = {
    {LV_DATASET_FORMAT, inspect_dataset},
    {LV_CKPT_FORMAT, inspect_ckpt},
    {NULL, NULL},
};

static void usage(FILE *f) {
  fprintf(f, "usage: longvq inspect [--verify] [--seq-len L] [--bins N] FILE.h5 | 'SHARD-GLOB' | F1,F2,...\n\n"
             "  --verify     check the digests of every array, read every sample and check token ids\n"
             "               and labels (reads every array twice: about 1 s per 50 MB stored)\n"
             "  --seq-len L  LM sets: count the windows of L (+1) tokens; with --verify, read\n"
             "               classification samples at length L (longer ones are an error)\n"
             "  --bins N     length histogram bins (default 10)\n");
}

static int run(int argc, char **argv) {
  inspect_opts o = {0, 0, 10};
  char spec[8192] = "";
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
      usage(stdout);
      return LV_EXIT_OK;
    } else if (!strcmp(a, "--verify")) {
      o.verify = 1;
    } else if ((!strcmp(a, "--seq-len") || !strcmp(a, "--bins")) && i + 1 < argc) {
      char *end;
      long long v = strtoll(argv[++i], &end, 10);
      if (*end || v < 1) DIE_INPUT("inspect: %s '%s': need a positive integer", a, argv[i]);
      if (!strcmp(a, "--seq-len") && v > LV_MAX_SEQ_LEN)
        DIE_INPUT("inspect: --seq-len %lld is more than the limit %lld (of data.seq_len)", v,
                  (long long)LV_MAX_SEQ_LEN);
      if (!strcmp(a, "--bins")) o.bins = v > 1000 ? 1000 : v;
      else o.seq_len = v;
    } else if (a[0] == '-') {
      fprintf(stderr, "longvq inspect: unknown option '%s'\n\n", a);
      usage(stderr);
      return LV_EXIT_USAGE;
    } else {
      size_t len = strlen(spec);
      snprintf(spec + len, sizeof spec - len, "%s%s", len ? "," : "", a);
    }
  }
  if (!spec[0]) {
    usage(stderr);
    return LV_EXIT_USAGE;
  }
  char format[256];
  lv_file_format(spec, format, sizeof format);
  for (int k = 0; kinds[k].format; k++)
    if (!strcmp(kinds[k].format, format)) return kinds[k].summarize(spec, &o);
  if (!format[0]) DIE_INPUT("%s: not a longvq dataset or checkpoint (no root attribute 'format')", spec);
  DIE_INPUT("%s: not a longvq dataset or checkpoint (format '%s' is not one inspect knows)", spec, format);
}

int cmd_inspect(int argc, char **argv) {
  int rc = LV_EXIT_OK;
  if (dist_is_root()) rc = run(argc, argv);
  dist_bcast_from(&rc, sizeof rc, 0);
  return rc;
}
