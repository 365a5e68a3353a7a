/* The run directory's checkpoints: naming, listing, the latest record, resume=auto, rotation, and
 * the names later checkpoints will take. Only regular files are ever opened: an entry of another kind
 * under a checkpoint's name (a FIFO would block the reader for ever, a directory would make the
 * rename of a new checkpoint fail) is skipped with a warning, and refused before training starts if
 * a later checkpoint of this run would be written under its name. */
#include <ctype.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "io/config.h" /* LV_PATH_MAX */
#include "io/checkpoint_internal.h"
#include "io/model_io.h"
#include "trainer/base/check.h"
#include "trainer/base/dist.h"
#include "trainer/base/dist_io.h"
#include "trainer/base/log.h"

void lv_ckpt_path(char *out, size_t cap, const char *run_dir, int64_t step) {
  snprintf(out, cap, "%s/ckpt_%08lld.h5", run_dir, (long long)step);
}

int lv_ckpt_parse_name(const char *name, int64_t *step) {
  if (strncmp(name, "ckpt_", 5) != 0 || !isdigit((unsigned char)name[5])) return 0;
  const char *p = name + 5;
  int64_t s = 0;
  for (; isdigit((unsigned char)*p); p++) {
    if (s > (INT64_MAX - 9) / 10) return 0;
    s = 10 * s + (*p - '0');
  }
  if (strlen(name) >= LV_CKPT_NAME_MAX) return 0;
  if (!strcmp(p, ".h5")) return *step = s, 1;
  if (!strcmp(p, ".h5.tmp")) return *step = s, 2;
  return 0;
}

typedef struct {
  char name[LV_CKPT_NAME_MAX];
  int64_t step;
} entry;

static int newest_first(const void *x, const void *y) {
  const entry *a = x, *b = y;
  if (a->step != b->step) return a->step < b->step ? 1 : -1;
  return strcmp(a->name, b->name); /* ckpt_5.h5 and ckpt_00000005.h5: a fixed order */
}

/* NULL if name (in directory fd dfd) is absent or a regular file (symbolic links followed), else
 * what it is ("a FIFO", "a directory", ...). */
static const char *odd_kind(int dfd, const char *name) {
  struct stat st;
  if (fstatat(dfd, name, &st, 0) != 0 || S_ISREG(st.st_mode)) return NULL;
  return lv_file_kind(st.st_mode);
}

/* Entries of kind (1 complete, 2 tmp) in run_dir that are regular files, newest first; malloc'd,
 * count in *n. Entries of other kinds under such names are left out (reported if warn). */
static entry *scan(const char *run_dir, int kind, int warn, int *n) {
  *n = 0;
  DIR *d = opendir(run_dir);
  if (!d) return NULL;
  int cap = 64;
  entry *e = malloc(sizeof(entry) * (size_t)cap);
  CHECK_ALLOC(e);
  for (struct dirent *de; (de = readdir(d));) {
    int64_t step;
    if (lv_ckpt_parse_name(de->d_name, &step) != kind) continue;
    const char *odd = odd_kind(dirfd(d), de->d_name);
    if (odd) {
      if (warn) log_warn("ignoring %s/%s: %s, not a regular file", run_dir, de->d_name, odd);
      continue;
    }
    if (*n == cap) {
      e = realloc(e, sizeof(entry) * (size_t)(cap *= 2));
      CHECK_ALLOC(e);
    }
    snprintf(e[*n].name, sizeof e[*n].name, "%s", de->d_name);
    e[(*n)++].step = step;
  }
  closedir(d);
  qsort(e, (size_t)*n, sizeof *e, newest_first);
  return e;
}

int lv_ckpt_list(const char *run_dir, char names[][LV_CKPT_NAME_MAX], int64_t *steps, int cap) {
  int n;
  entry *e = scan(run_dir, 1, 0, &n);
  for (int i = 0; i < n && i < cap; i++) {
    memcpy(names[i], e[i].name, LV_CKPT_NAME_MAX);
    if (steps) steps[i] = e[i].step;
  }
  free(e);
  return n;
}

int lv_ckpt_latest(const char *run_dir, char *name, size_t cap) {
  char path[LV_PATH_MAX], buf[LV_CKPT_NAME_MAX + 2] = "";
  snprintf(path, sizeof path, "%s/latest", run_dir);
  struct stat st;
  if (stat(path, &st) != 0 || !S_ISREG(st.st_mode)) return 0; /* fopen of a FIFO would block */
  FILE *f = fopen(path, "r");
  if (!f) return 0;
  int ok = fgets(buf, sizeof buf, f) != NULL;
  fclose(f);
  buf[strcspn(buf, "\r\n")] = '\0';
  if (!ok || !buf[0] || strchr(buf, '/')) return 0;
  snprintf(name, cap, "%s", buf);
  return 1;
}

void lv_ckpt_write_latest(const char *dir, const char *name) {
  char path[LV_PATH_MAX], tmp[LV_PATH_MAX + sizeof ".tmp"];
  snprintf(path, sizeof path, "%s/latest", dir);
  snprintf(tmp, sizeof tmp, "%s.tmp", path);
  FILE *f = fopen(tmp, "w");
  if (!f) DIE("%s: cannot create the latest-checkpoint record", tmp);
  if (fprintf(f, "%s\n", name) < 0 || fflush(f) != 0 || fsync(fileno(f)) != 0) DIE("%s: cannot write", tmp);
  if (fclose(f) != 0) DIE("%s: cannot close", tmp);
  lv_rename_durable(tmp, path);
}

/* Rank 0 looks, every rank gets the same candidate list. */
static entry *candidates(const char *run_dir, int *n) {
  entry *e = NULL;
  int64_t cnt = 0;
  if (dist_is_root()) {
    int k;
    e = scan(run_dir, 1, 1, &k);
    cnt = k;
    int nt;
    entry *t = scan(run_dir, 2, 1, &nt);
    for (int i = 0; i < nt; i++)
      log_warn("ignoring %s/%s: left by an interrupted checkpoint write", run_dir, t[i].name);
    free(t);
    char latest[LV_CKPT_NAME_MAX];
    if (lv_ckpt_latest(run_dir, latest, sizeof latest)) {
      int found = 0;
      for (int i = 0; i < k; i++) found |= !strcmp(e[i].name, latest);
      if (!found) log_warn("%s/latest names %s, which does not exist: ignoring the record", run_dir, latest);
    }
  }
  dist_bcast_from(&cnt, sizeof cnt, 0);
  if (!dist_is_root()) {
    e = malloc(sizeof(entry) * (size_t)(cnt > 0 ? cnt : 1));
    CHECK_ALLOC(e);
  }
  if (cnt > 0) dist_bcast_from(e, sizeof(entry) * (size_t)cnt, 0);
  *n = (int)cnt;
  return e;
}

int lv_ckpt_find_resumable(const char *run_dir, char *path, size_t cap) {
  int n;
  entry *e = candidates(run_dir, &n);
  int rc = n == 0 ? 1 : 2;
  for (int i = 0; i < n && rc != 0; i++) {
    char p[LV_PATH_MAX], err[1024];
    snprintf(p, sizeof p, "%s/%s", run_dir, e[i].name);
    lv_ckpt_meta meta;
    int bad = lv_ckpt_check(p, dist_rank(), dist_size(), &meta, NULL, NULL, err, sizeof err);
    free((void *)meta.config_yaml);
    if (dist_first_error(bad, err, sizeof err, NULL) < 0) {
      snprintf(path, cap, "%s", p);
      rc = 0;
    } else if (dist_is_root()) {
      log_warn("skipping checkpoint: %s", err);
    }
  }
  free(e);
  return rc;
}

void lv_ckpt_rotate(const char *run_dir, int64_t keep, int64_t keep_every) {
  if (!dist_is_root()) return;
  int n, nt;
  entry *e = scan(run_dir, 1, 0, &n), *t = scan(run_dir, 2, 0, &nt);
  char latest[LV_CKPT_NAME_MAX] = "", p[4200];
  lv_ckpt_latest(run_dir, latest, sizeof latest);
  int removed = 0;
  for (int i = 0; i < n && keep >= 1; i++) {
    if (i < keep || (keep_every > 0 && e[i].step % keep_every == 0) || !strcmp(e[i].name, latest)) continue;
    snprintf(p, sizeof p, "%s/%s", run_dir, e[i].name);
    if (unlink(p) != 0) log_warn("cannot delete old checkpoint %s", p);
    removed++;
  }
  for (int i = 0; i < nt; i++) { /* no write is in progress: rotation follows a completed write */
    snprintf(p, sizeof p, "%s/%s", run_dir, t[i].name);
    if (unlink(p) == 0) removed++;
  }
  if (removed) lv_fsync_path(run_dir);
  free(e);
  free(t);
}

/* Rank 0: the first entry a later checkpoint (steps (from, to]) or the latest record would be
 * written under that is not a regular file: 1 + err, or 0. */
static int odd_target(const char *run_dir, int64_t from, int64_t to, char *err, size_t cap) {
  DIR *d = opendir(run_dir);
  if (!d) return 0; /* created later, empty */
  int bad = 0;
  for (struct dirent *de; !bad && (de = readdir(d));) {
    int64_t step = 0;
    int kind = lv_ckpt_parse_name(de->d_name, &step);
    char want[LV_CKPT_NAME_MAX] = "";
    if (kind > 0) snprintf(want, sizeof want, "ckpt_%08lld.h5%s", (long long)step, kind == 2 ? ".tmp" : "");
    int ckpt = kind > 0 && step > from && step <= to && !strcmp(de->d_name, want); /* lv_ckpt_path's name */
    int record = !strcmp(de->d_name, "latest") || !strcmp(de->d_name, "latest.tmp");
    const char *odd = ckpt || record ? odd_kind(dirfd(d), de->d_name) : NULL;
    if (!odd) continue;
    bad = 1;
    if (ckpt)
      snprintf(err, cap, "%s/%s is %s, not a regular file, and this run may save its step-%lld checkpoint under "
               "that name: move it away", run_dir, de->d_name, odd, (long long)step);
    else
      snprintf(err, cap, "%s/%s is %s, not a regular file, and this run writes its latest-checkpoint record "
               "there: move it away", run_dir, de->d_name, odd);
  }
  closedir(d);
  return bad;
}

int lv_ckpt_check_targets(const char *run_dir, int64_t from, int64_t to, char *err, size_t cap) {
  int bad = dist_is_root() ? odd_target(run_dir, from, to, err, cap) : 0;
  return dist_first_error(bad, err, cap, NULL) >= 0;
}
