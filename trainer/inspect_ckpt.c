/* `longvq inspect ckpt.h5` for checkpoints (dispatched from trainer/cmd_inspect.c on the root
 * `format` attribute): run attributes, the config, a table of tensors with the L2 norms of the
 * parameters and of both AdamW moments, and the status of every dataset's chunk checksums and crc32
 * digest (all are read). Exit code 2 if anything is damaged. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "io/checkpoint.h"
#include "trainer/commands.h"
#include "trainer/base/check.h"

static void norm_cell(const lv_ckpt_tensor *t, int k) {
  if (t->read[k] == 1)
    printf(" %13.6g", t->l2[k]);
  else
    printf(" %13s", t->read[k] < 0 ? "FAILED" : "-");
}

/* A tensor's datasets' digests in one cell: BAD if any mismatches, none if the file has none, ok if
 * all read match, - if none was read. */
static const char *digest_cell(const lv_ckpt_tensor *t) {
  int bad = 0, ok = 0, none = 0;
  for (int k = 0; k < 3; k++) {
    bad += t->digest[k] < 0;
    ok += t->digest[k] > 0;
    none += t->read[k] == 1 && t->digest[k] == 0;
  }
  return bad ? "BAD" : none ? "none" : ok ? "ok" : "-";
}

static void print_config(const char *yaml) {
  printf("config:\n");
  for (const char *p = yaml; p && *p;) {
    const char *nl = strchr(p, '\n');
    int len = nl ? (int)(nl - p) : (int)strlen(p);
    printf("  %.*s\n", len, p);
    p += len + (nl ? 1 : 0);
  }
}

int inspect_checkpoint(const char *path) {
  lv_ckpt_meta meta;
  lv_ckpt_tensor *t = NULL;
  int n = 0;
  char err[1024];
  int bad = lv_ckpt_check(path, 0, 1, &meta, &t, &n, err, sizeof err);
  if (bad && n == 0) { /* attributes, /config or /model unreadable: nothing to tabulate */
    fprintf(stderr, "longvq: error: %s\n", err);
    free((void *)meta.config_yaml);
    free(t);
    return LV_EXIT_USAGE;
  }
  char build[256] = "?", created[64] = "?";
  lv_ckpt_attr_str(path, "build", build, sizeof build);
  lv_ckpt_attr_str(path, "created", created, sizeof created);
  struct stat st;
  double mib = stat(path, &st) == 0 ? (double)st.st_size / 1048576.0 : 0.0;
  printf("checkpoint    %s (%.1f MiB)\n", path, mib);
  printf("format        %s version %d\n", LV_CKPT_FORMAT, LV_CKPT_VERSION);
  printf("build         %s, created %s\n", build, created);
  printf("step          %lld\n", (long long)meta.step);
  printf("samples seen  %lld\n", (long long)meta.samples_seen);
  printf("seed          %llu\n", (unsigned long long)meta.seed);
  printf("world size    %d\n", meta.world_size);
  printf("zero          %d%s\n", meta.zero, meta.zero ? " (moments were sharded; any world size reads them)" : "");
  printf("restart count %lld\n", (long long)meta.restart_count);
  print_config(meta.config_yaml);
  int64_t nparam = 0, nstate = 0;
  int width = 24, failed = 0, datasets = 1, d_bad = 0, d_none = 0; /* datasets: /config too */
  for (int i = 0; i < n; i++) {
    int64_t numel = t[i].shape[0] * (t[i].ndim == 2 ? t[i].shape[1] : 1);
    *(t[i].has_moments ? &nparam : &nstate) += numel;
    if ((int)strlen(t[i].name) > width) width = (int)strlen(t[i].name);
  }
  printf("tensors       %d: %lld trained floats (with AdamW moments), %lld codebook floats\n", n, (long long)nparam,
         (long long)nstate);
  printf("  %-*s %-12s %13s %13s %13s  %-9s  %s\n", width, "name", "shape", "|param|", "|exp_avg|", "|exp_avg_sq|",
         "checksums", "crc32");
  for (int i = 0; i < n; i++) {
    char shape[64];
    if (t[i].ndim == 2)
      snprintf(shape, sizeof shape, "(%lld, %lld)", (long long)t[i].shape[0], (long long)t[i].shape[1]);
    else
      snprintf(shape, sizeof shape, "(%lld)", (long long)t[i].shape[0]);
    printf("  %-*s %-12s", width, t[i].name, shape);
    int f = 0;
    for (int k = 0; k < 3; k++) {
      norm_cell(&t[i], k);
      f += t[i].read[k] < 0;
      datasets += t[i].read[k] != 0;
      d_bad += t[i].digest[k] < 0;
      d_none += t[i].read[k] == 1 && t[i].digest[k] == 0;
    }
    printf("  %-9s  %s\n", f ? "FAILED" : "ok", digest_cell(&t[i]));
    failed += f;
  }
  if (failed)
    printf("checksums     FAILED in %d of %d datasets\n", failed, datasets);
  else
    printf("checksums     OK (%d datasets read, every chunk verified)\n", datasets);
  if (d_bad)
    printf("digests       FAILED: %d of %d datasets do not match their crc32\n", d_bad, datasets);
  else if (d_none)
    printf("digests       none: the file predates them (a chunk zeroed with its checksum would go unnoticed)\n");
  else
    printf("digests       OK (every dataset read matches its crc32)\n");
  if (bad) {
    printf("first problem %s\n", err);
    fprintf(stderr, "longvq: error: %s\n", err);
  }
  free((void *)meta.config_yaml);
  free(t);
  return bad ? LV_EXIT_USAGE : LV_EXIT_OK;
}
