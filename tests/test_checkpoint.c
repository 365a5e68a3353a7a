/* Checkpoint files (io/checkpoint*.c) at any rank count. Every float written is a pure function of
 * (buffer, flat index, step), so any reader, in any decomposition, knows what it must get back.
 *
 *   test_checkpoint [DIR]                 in-process suite (default DIR work_ckpt_suite): round trips between decompositions,
 *                                         naming/list/rotate, corruption (tests/test_checkpoint_corrupt.c), digests
 *                                         and odd run-dir entries (tests/test_checkpoint_integrity.c)
 *   test_checkpoint write DIR STEP DECOMP [small|large]   one checkpoint (+ DIR/manifest.txt)
 *   test_checkpoint read FILE DECOMP [small|large]        read, verify every value
 *   test_checkpoint find DIR [small|large]                resume=auto pick + read + verify
 *   test_checkpoint loop DIR                              large checkpoints, steps 1, 2, ... (kill -9 test)
 *   test_checkpoint corrupt FILE H5PATH OUT                copy with a byte flipped in that dataset's chunk
 * CKPT_CHUNK_FLOATS=n in the environment sets the chunk size of the writes (default 1 << 20).
 * DECOMP: rep (no ZeRO: every rank all ranges), zero (the reducer's ZeRO-1 shard), cut (random
 * ranges cutting mid-row, in random order, dealt to ranks at random).
 */
#include "tests/test_checkpoint.h"

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "io/checkpoint_internal.h"
#include "trainer/base/dist.h"
#include "trainer/reducer.h"

static uint64_t mix(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

float ck_value(int buf, size_t i, int64_t step) {
  uint64_t h = mix(((uint64_t)buf << 56) ^ (uint64_t)i ^ mix((uint64_t)step));
  float x = (float)((double)(h >> 40) / 16777216.0 * 2.0 - 1.0);
  return buf == 3 ? x * x : x; /* exp_avg_sq is non-negative */
}

void ck_model_init(ck_model *c, int large) {
  lv_dims d = {0};
  d.decoder = 0, d.prenorm = 1, d.norm = 0, d.far_attention = 1;
  d.V = 30, d.K = 3, d.D = 24, d.Z = 8, d.E = 16, d.N = 4, d.S = 8, d.C = 8, d.F = 40, d.n_layers = 2;
  if (large) d.V = 256, d.D = 512, d.Z = 64, d.E = 512, d.F = 1024, d.n_layers = 8;
  char err[256];
  if (lv_layout_build(&c->lay, &d, err, sizeof err)) DIE("layout: %s", err);
  c->pad = reducer_grad_floats(c->lay.n_param_floats, dist_size());
  c->params = calloc(c->pad, sizeof(float));
  c->state = calloc(c->lay.n_state_floats + 1, sizeof(float));
  c->red = calloc(c->pad, sizeof(float));
  c->stats = calloc(reducer_stat_doubles(16, dist_size()), sizeof(double));
  CHECK_ALLOC(c->params);
  CHECK_ALLOC(c->state);
  CHECK_ALLOC(c->red);
  CHECK_ALLOC(c->stats);
  c->n = 0;
  c->m = c->v = NULL;
}

void ck_model_free(ck_model *c) {
  free(c->params);
  free(c->state);
  free(c->red);
  free(c->stats);
  free(c->m);
  free(c->v);
  lv_layout_free(&c->lay);
}

/* Ranges of decomposition `kind` for this rank; m, v sized for them (filled with junk). */
void ck_decomp(ck_model *c, const char *kind, uint64_t seed) {
  int W = dist_size(), r = dist_rank();
  c->n = 0;
  if (!strcmp(kind, "rep") || !strcmp(kind, "zero")) { /* what the trainer passes */
    reducer *rd = reducer_create(c->red, c->lay.n_param_floats, c->stats, 16, 4096, !strcmp(kind, "zero"), 0);
    c->n = reducer_shard(rd, c->ranges, CK_MAX_RANGES);
    reducer_free(rd);
  } else if (!strcmp(kind, "cut")) { /* random cuts over [0, pad), each piece to a random rank */
    size_t lo = 0;
    for (uint64_t k = 0; lo < c->pad; k++) {
      size_t len = 1 + (size_t)(mix(seed * 7919 + k) % (c->pad / 24 + 37));
      size_t hi = lo + len < c->pad ? lo + len : c->pad;
      if ((int)(mix(seed + 31 * k) % (uint64_t)W) == r && c->n < CK_MAX_RANGES) c->ranges[c->n++] = (lv_range){lo, hi};
      lo = hi;
    }
    for (int k = c->n - 1; k > 0; k--) { /* random order: the compact offsets do not follow lo */
      int j = (int)(mix(seed ^ (uint64_t)k) % (uint64_t)(k + 1));
      lv_range t = c->ranges[k];
      c->ranges[k] = c->ranges[j], c->ranges[j] = t;
    }
  } else {
    DIE("unknown decomposition '%s' (rep, zero, cut)", kind);
  }
  size_t off = 0;
  for (int k = 0; k < c->n; k++) c->off[k] = off, off += c->ranges[k].hi - c->ranges[k].lo;
  free(c->m);
  free(c->v);
  c->n_mom = off;
  c->m = malloc(sizeof(float) * (off + 1));
  c->v = malloc(sizeof(float) * (off + 1));
  CHECK_ALLOC(c->m);
  CHECK_ALLOC(c->v);
  for (size_t i = 0; i <= off; i++) c->m[i] = c->v[i] = 777.0f;
}

/* Is flat float i (of the param buffer) inside a tensor? */
static int in_tensor(const lv_layout *lay, size_t i) {
  for (int t = 0; t < lay->n_params; t++)
    if (i >= lay->params[t].offset && i < lay->params[t].offset + (size_t)lay->params[t].numel) return 1;
  return 0;
}

void ck_fill(ck_model *c, int64_t step) {
  memset(c->params, 0, sizeof(float) * c->pad);
  for (int t = 0; t < c->lay.n_params; t++)
    for (int64_t j = 0; j < c->lay.params[t].numel; j++) {
      size_t i = c->lay.params[t].offset + (size_t)j;
      c->params[i] = ck_value(0, i, step);
    }
  for (int t = 0; t < c->lay.n_state; t++) /* padding between codebooks: never read, never written */
    for (int64_t j = 0; j < c->lay.state[t].numel; j++) {
      size_t i = c->lay.state[t].offset + (size_t)j;
      c->state[i] = ck_value(1, i, step);
    }
  for (int k = 0; k < c->n; k++)
    for (size_t i = c->ranges[k].lo; i < c->ranges[k].hi; i++) { /* padding gets junk: it must be ignored */
      int in = in_tensor(&c->lay, i);
      c->m[c->off[k] + i - c->ranges[k].lo] = in ? ck_value(2, i, step) : 555.0f;
      c->v[c->off[k] + i - c->ranges[k].lo] = in ? ck_value(3, i, step) : 555.0f;
    }
}

/* Number of wrong values after a read of step `step` (moments of padding must be 0). */
int64_t ck_verify(const ck_model *c, int64_t step) {
  int64_t bad = 0;
  for (int t = 0; t < c->lay.n_params; t++)
    for (int64_t j = 0; j < c->lay.params[t].numel; j++) {
      size_t i = c->lay.params[t].offset + (size_t)j;
      bad += c->params[i] != ck_value(0, i, step);
    }
  for (int t = 0; t < c->lay.n_state; t++)
    for (int64_t j = 0; j < c->lay.state[t].numel; j++) {
      size_t i = c->lay.state[t].offset + (size_t)j;
      bad += c->state[i] != ck_value(1, i, step);
    }
  for (int k = 0; k < c->n; k++)
    for (size_t i = c->ranges[k].lo; i < c->ranges[k].hi; i++) {
      int in = in_tensor(&c->lay, i);
      size_t at = c->off[k] + i - c->ranges[k].lo;
      bad += c->m[at] != (in ? ck_value(2, i, step) : 0.0f);
      bad += c->v[at] != (in ? ck_value(3, i, step) : 0.0f);
    }
  return bad;
}

void ck_write(ck_model *c, const char *path, int64_t step, int zero) {
  ck_fill(c, step);
  lv_ckpt_meta meta = {step, 1000 * step + 7, 4242, dist_size(), zero, step / 10, CK_YAML, ""};
  lv_ckpt_write(path, &c->lay, c->params, c->state, c->m, c->v, c->ranges, c->off, c->n, &meta);
}

/* Reads path and checks every value and the metadata; returns the number of problems. */
int64_t ck_read_verify(ck_model *c, const char *path, int64_t step, char *err, size_t cap) {
  lv_ckpt_meta meta;
  memset(c->params, 0, sizeof(float) * c->pad);
  if (lv_ckpt_read(path, &c->lay, c->params, c->state, c->m, c->v, c->ranges, c->off, c->n, &meta, err, cap))
    return -1;
  if (step < 0) step = meta.step;
  int64_t bad = ck_verify(c, step);
  bad += meta.step != step || meta.samples_seen != 1000 * step + 7 || meta.seed != 4242 || meta.restart_count != step / 10;
  bad += meta.world_size < 1 || !meta.config_yaml || strcmp(meta.config_yaml, CK_YAML) != 0;
  free((void *)meta.config_yaml);
  int64_t all[1] = {bad};
  dist_sum_i64(all, 1);
  return all[0];
}

static void roundtrips(const char *dir) {
  const char *kinds[] = {"rep", "zero", "cut"};
  int64_t chunks[] = {(int64_t)1 << 20, 64, 37};
  char path[4096], err[1024];
  ck_model c;
  ck_model_init(&c, 0);
  int64_t step = 1;
  for (int ch = 0; ch < 3; ch++) {
    lv_ckpt_chunk_floats = chunks[ch];
    for (int w = 0; w < 3; w++)
      for (int r = 0; r < 3; r++, step++) {
        lv_ckpt_path(path, sizeof path, dir, step);
        ck_decomp(&c, kinds[w], 11 + (uint64_t)step);
        ck_write(&c, path, step, w == 1);
        ck_decomp(&c, kinds[r], 1000 + (uint64_t)step);
        int64_t bad = ck_read_verify(&c, path, step, err, sizeof err);
        EXPECT(bad == 0, "chunk %lld floats, written %s, read %s: %s (%lld wrong)", (long long)chunks[ch], kinds[w],
               kinds[r], bad < 0 ? err : "values", (long long)bad);
      }
  }
  lv_ckpt_chunk_floats = (int64_t)1 << 20;
  /* deflate: same values back */
  lv_ckpt_set_deflate(4);
  ck_decomp(&c, "zero", 5);
  lv_ckpt_path(path, sizeof path, dir, 999);
  ck_write(&c, path, 999, 1);
  lv_ckpt_set_deflate(0);
  ck_decomp(&c, "cut", 6);
  EXPECT(ck_read_verify(&c, path, 999, err, sizeof err) == 0, "deflate round trip: %s", err);
  /* model only (m = v = NULL), and lv_model_load reads a checkpoint's /model too */
  lv_ckpt_meta meta;
  EXPECT(lv_ckpt_read(path, &c.lay, c.params, c.state, NULL, NULL, NULL, NULL, 0, &meta, err, sizeof err) == 0,
         "model-only read: %s", err);
  free((void *)meta.config_yaml);
  EXPECT(lv_model_load(path, &c.lay, c.params, c.state, err, sizeof err) == 0, "lv_model_load: %s", err);
  char *yaml = lv_model_read_config(path);
  EXPECT(yaml && !strcmp(yaml, CK_YAML), "lv_model_read_config of a checkpoint: '%s'", yaml ? yaml : "(null)");
  free(yaml);
  /* layout-free check, split over the ranks, and the latest record */
  lv_ckpt_tensor *t = NULL;
  int nt = 0;
  EXPECT(lv_ckpt_check(path, dist_rank(), dist_size(), &meta, &t, &nt, err, sizeof err) == 0, "check: %s", err);
  EXPECT(nt == c.lay.n_params + c.lay.n_state, "check lists %d tensors, layout has %d", nt,
         c.lay.n_params + c.lay.n_state);
  EXPECT(nt > 0 && !strcmp(t[0].name, c.lay.params[0].name), "first tensor %s (creation order)", nt ? t[0].name : "");
  free(t);
  free((void *)meta.config_yaml);
  char latest[256] = "";
  EXPECT(lv_ckpt_latest(dir, latest, sizeof latest) && !strcmp(latest, "ckpt_00000999.h5"), "latest '%s'", latest);
  ck_model_free(&c);
}

static void touch(const char *dir, const char *name) {
  char p[8400];
  snprintf(p, sizeof p, "%s/%s", dir, name);
  FILE *f = fopen(p, "w");
  if (f) fclose(f);
}

static int exists(const char *dir, const char *name) {
  char p[8400];
  snprintf(p, sizeof p, "%s/%s", dir, name);
  return access(p, F_OK) == 0;
}

static void naming(const char *dir) {
  int64_t s = -1;
  EXPECT(lv_ckpt_parse_name("ckpt_00000012.h5", &s) == 1 && s == 12, "parse ckpt_00000012.h5");
  EXPECT(lv_ckpt_parse_name("ckpt_123456789.h5", &s) == 1 && s == 123456789, "parse 9 digits");
  EXPECT(lv_ckpt_parse_name("ckpt_00000012.h5.tmp", &s) == 2, "parse .tmp");
  EXPECT(lv_ckpt_parse_name("ckpt_.h5", &s) == 0 && lv_ckpt_parse_name("ckpt_12.h5x", &s) == 0 &&
             lv_ckpt_parse_name("xckpt_1.h5", &s) == 0 && lv_ckpt_parse_name("ckpt_1a.h5", &s) == 0,
         "bad names rejected");
  if (dist_is_root()) {
    char d[4300];
    snprintf(d, sizeof d, "%s/rot", dir);
    mkdir(d, 0755);
    for (int i = 1; i <= 10; i++) {
      char n[64];
      snprintf(n, sizeof n, "ckpt_%08d.h5", i);
      touch(d, n);
    }
    touch(d, "ckpt_00000011.h5.tmp");
    touch(d, "notes.txt");
    lv_ckpt_write_latest(d, "ckpt_00000002.h5");
    char names[16][LV_CKPT_NAME_MAX];
    int64_t steps[16];
    int n = lv_ckpt_list(d, names, steps, 16);
    EXPECT(n == 10 && steps[0] == 10 && steps[9] == 1 && !strcmp(names[0], "ckpt_00000010.h5"),
           "list: %d, newest %lld", n, n ? (long long)steps[0] : -1LL);
    lv_ckpt_rotate(d, 3, 4);
    const int kept[] = {0, 0, 1, 0, 1, 0, 0, 0, 1, 1, 1}; /* 10 9 8 newest, 4 and 8 every 4, 2 latest */
    for (int i = 1; i <= 10; i++) {
      char nm[64];
      snprintf(nm, sizeof nm, "ckpt_%08d.h5", i);
      EXPECT(exists(d, nm) == kept[i], "rotate: %s %s", nm, kept[i] ? "deleted" : "kept");
    }
    EXPECT(!exists(d, "ckpt_00000011.h5.tmp") && exists(d, "notes.txt"), "rotate: tmp removed, other files kept");
    lv_ckpt_rotate(d, 0, 0);
    EXPECT(lv_ckpt_list(d, names, steps, 16) == 5, "keep < 1 keeps all");
  }
}

static int run_mode(int argc, char **argv) {
  const char *mode = argv[1];
  if (getenv("CKPT_CHUNK_FLOATS")) lv_ckpt_chunk_floats = atoll(getenv("CKPT_CHUNK_FLOATS"));
  int large = argc > 3 && !strcmp(argv[argc - 1], "large");
  ck_model c;
  ck_model_init(&c, large || !strcmp(mode, "loop"));
  char err[1024], path[4096];
  int rc = 0;
  if (!strcmp(mode, "write") && argc >= 5) {
    int64_t step = atoll(argv[3]);
    ck_decomp(&c, argv[4], 77);
    lv_ckpt_path(path, sizeof path, argv[2], step);
    ck_write(&c, path, step, !strcmp(argv[4], "zero"));
    if (dist_is_root()) ck_manifest(&c, argv[2], step);
  } else if (!strcmp(mode, "read") && argc >= 4) {
    ck_decomp(&c, argv[3], 78);
    int64_t bad = ck_read_verify(&c, argv[2], -1, err, sizeof err);
    if (dist_is_root()) printf("read %s as %s on %d ranks: %s\n", argv[2], argv[3], dist_size(), bad ? "FAIL" : "ok");
    if (bad) rc = 1, fprintf(stderr, "%s (%lld wrong)\n", bad < 0 ? err : "values", (long long)bad);
  } else if (!strcmp(mode, "find") && argc >= 3) {
    ck_decomp(&c, "zero", 79);
    int r = lv_ckpt_find_resumable(argv[2], path, sizeof path);
    int64_t bad = r == 0 ? ck_read_verify(&c, path, -1, err, sizeof err) : -2;
    if (dist_is_root()) printf("find: %s (rc %d), verify %s\n", r == 0 ? path : "-", r, bad == 0 ? "ok" : "FAIL");
    rc = bad != 0;
  } else if (!strcmp(mode, "loop") && argc >= 3) {
    ck_decomp(&c, "zero", 80);
    char pidf[4096];
    snprintf(pidf, sizeof pidf, "%s/pid.%d", argv[2], dist_rank());
    FILE *f = fopen(pidf, "w");
    if (f) fprintf(f, "%d\n", (int)getpid()), fclose(f);
    for (int64_t step = 1; step < 1000; step++) {
      lv_ckpt_path(path, sizeof path, argv[2], step);
      ck_write(&c, path, step, 1);
      if (dist_is_root()) printf("wrote step %lld\n", (long long)step), fflush(stdout);
    }
  } else if (!strcmp(mode, "corrupt") && argc >= 5) {
    if (dist_is_root()) rc = ck_corrupt_chunk(argv[2], argv[3], argv[4]) != 0;
  } else {
    fprintf(stderr, "usage: see the comment at the top of tests/test_checkpoint.c\n");
    rc = 2;
  }
  ck_model_free(&c);
  return rc;
}

int main(int argc, char **argv) {
  dist_init(&argc, &argv);
  const char *modes[] = {"write", "read", "find", "loop", "corrupt"};
  int is_mode = 0;
  for (int i = 0; i < 5 && argc > 1; i++) is_mode |= !strcmp(argv[1], modes[i]);
  if (is_mode) {
    int rc = run_mode(argc, argv);
    dist_finalize();
    return rc;
  }
  char dir[4096];
  snprintf(dir, sizeof dir, "%s", argc > 1 ? argv[1] : "work_ckpt_suite");
  char sub[4200];
  snprintf(sub, sizeof sub, "%s/np%d", dir, dist_size());
  if (dist_is_root()) {
    mkdir(dir, 0755);
    mkdir(sub, 0755);
  }
  dist_barrier();
  roundtrips(sub);
  naming(sub);
  tu_failures += ck_corruption_suite(sub);
  tu_failures += ck_integrity_suite(sub);
  int64_t f[1] = {tu_failures};
  dist_sum_i64(f, 1);
  int rc = dist_is_root() ? tu_finish("test_checkpoint") : (f[0] != 0);
  if (dist_is_root() && f[0] != tu_failures) rc = 1, printf("failures on other ranks: %lld\n", (long long)(f[0] - tu_failures));
  dist_finalize();
  return rc;
}
