/* Bounded fuzz of the config loader (issue 13 point 4; docs/config.md "Input limits"): mutated
 * copies of the YAML files in configs/ plus random key=value overrides, each through lv_config_build (what
 * `longvq train/eval/bench` call to build their config) in a forked child with a time limit.
 *
 * Mutations (1 to 4 per case, deterministic from the seed): bit flips, truncations, insertions of
 * YAML syntax characters, deep nesting (flow and block, around the depth limit and far beyond),
 * huge scalars, odd UTF-8 (overlong, surrogates, beyond U+10FFFF, BOM, NEL/LS breaks, cut
 * sequences), NUL bytes (raw and escaped), anchors, aliases and a billion-laughs block, duplicated
 * lines, odd values (1e999, .inf, 2^64, ~), and now and then growth past the size limit. Overrides
 * take table keys and near-misses with values from the same pool, control characters, overlong
 * values and assignments around the override length limit.
 *
 * Verdict per case (the exit code of this program is the overall verdict):
 *   - the child ends by itself (no signal; SIGALRM after LV_FUZZ_CASE_S seconds = a hang) with 0
 *     (config built; it prints and loads back to the same values) or 2 (errors);
 *   - exit 0 prints nothing; exit 2 prints one or more lines, each in a form of io/config.h:
 *     `FILE:line:col: ...` with line and col within the file, `override '<the override, cut short>':
 *     ...` naming one of the case's overrides, or `key: ...` (cross-field rules, only when nothing
 *     else failed) with a key of the table.
 * A failing case is kept as fail_<n>.yaml (+ its overrides in fail_<n>.txt) in the work directory,
 * which is printed. LONGVQ_FUZZ_TRIALS (default 1500) and LONGVQ_FUZZ_SEED (default 1) change the
 * run, LONGVQ_FUZZ_VERBOSE prints every case; argument 1 is the configs directory (default LV_SOURCE_DIR/configs). */
#include <dirent.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "io/config.h"
#include "trainer/base/clock.h"
#include "trainer/base/rng.h"

enum { LV_FUZZ_CASE_S = 10, MAX_SEEDS = 32, MAX_OVER = 4, MAX_FAIL_SHOWN = 10 };

/* ---- randomness ------------------------------------------------------------------------------- */

static rng_stream g_rng;
static uint64_t g_idx;
static size_t R(size_t n) { return n ? (size_t)rng_u32(&g_rng, g_idx++) % n : 0; }

/* ---- a growable byte buffer ------------------------------------------------------------------- */

typedef struct {
  char *p;
  size_t len, cap;
} buf;

static void reserve(buf *b, size_t extra) {
  if (b->len + extra + 1 <= b->cap) return;
  b->cap = 2 * (b->len + extra + 1);
  b->p = realloc(b->p, b->cap);
  if (!b->p) { perror("realloc"); exit(1); }
}

/* Insert n bytes of s at position at. */
static void insert(buf *b, size_t at, const char *s, size_t n) {
  reserve(b, n);
  memmove(b->p + at + n, b->p + at, b->len - at);
  memcpy(b->p + at, s, n);
  b->len += n;
  b->p[b->len] = '\0';
}

static void insert_rep(buf *b, size_t at, const char *unit, size_t times) {
  size_t u = strlen(unit);
  reserve(b, u * times);
  memmove(b->p + at + u * times, b->p + at, b->len - at);
  for (size_t i = 0; i < times; i++) memcpy(b->p + at + i * u, unit, u);
  b->len += u * times;
  b->p[b->len] = '\0';
}

/* ---- mutations -------------------------------------------------------------------------------- */

static const char syntax_chars[] = "[]{}:,-?&*!|>'\"#%@`\n\t \r\\";
static const char *const odd_utf8[] = {
    "\xC0\x80", "\xED\xA0\x80", "\xF4\x90\x80\x80", "\xEF\xBB\xBF", "\xC2\x85", "\xE2\x80\xA8",
    "\xE2\x80\xA9", "\xFF", "\x80", "\xF0\x9F\x98", "\xEF\xBF\xBE", "\xC3\xA9", "\xF0\x9F\x98\x80"};
static const char *const odd_values[] = {
    "1e999", "-1e999", ".inf", ".nan", "nan", "18446744073709551616", "-9223372036854775809", "0x10",
    "1_000", "~", "null", "", "\"\"", "''", "!!str 5", "!!binary aGk=", "yes", "off", "-0", "1.", "+5",
    "\"\\0\"", "\"a\\x01b\"", "\"\\uD800\"", "&a 5", "*a", "[1, 2]", "{a: 1}", "|\n    text\n",
    "\"\\U0010FFFF\"", "\"unterminated", "'it''s'", "? complex\n  : key"};
static const char bomb[] =
    "lol: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n"
    "lol2: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\nlol3: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]\n"
    "lol4: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]\nlol5: [*d, *d, *d, *d, *d, *d, *d, *d, *d]\n";

/* Somewhere inside a value of an existing line, or anywhere. */
static size_t spot(const buf *b) {
  size_t at = R(b->len + 1);
  if (R(2)) {
    const char *colon = memchr(b->p + at, ':', b->len - at);
    if (colon) at = (size_t)(colon - b->p) + 1 + (colon[1] == ' ');
  }
  return at;
}

static const char *mutate(buf *b) {
  size_t at = spot(b);
  switch (R(12)) {
  case 0:
    if (b->len) {
      size_t byte = R(b->len);
      b->p[byte] ^= (char)(1u << R(8));
    }
    return "bit flip";
  case 1:
    b->len = R(b->len + 1), b->p[b->len] = '\0';
    return "truncation";
  case 2:
    for (size_t n = 1 + R(8); n > 0; n--) {
      size_t where = spot(b); /* one draw per statement: argument order is unspecified */
      insert(b, where, &syntax_chars[R(sizeof syntax_chars - 1)], 1);
    }
    return "syntax characters";
  case 3: {
    static const size_t depth[] = {2, 62, 63, 64, 65, 300, 20000, 300000};
    static const char *const open[] = {"[", "{", "{a: ", "[[", "- "};
    size_t d = depth[R(8)];
    const char *u = open[R(5)];
    if (!strcmp(u, "- ")) { /* block nesting: one more space each line */
      for (size_t i = 0; i < d && i < 2000; i++) {
        char line[4096];
        snprintf(line, sizeof line, "\n%*s- ", (int)(i % 4000), "");
        insert(b, b->len, line, strlen(line));
      }
    } else {
      insert_rep(b, at, u, d);
      if (R(2)) insert_rep(b, at + strlen(u) * d, u[0] == '[' ? "]" : "}", d);
    }
    return "deep nesting";
  }
  case 4: {
    static const size_t size[] = {1000, 5000, 70000, 900000};
    static const char *const unit[] = {"a", "\"", "'", "\\", "é", " ", "a b ", "\\x41"};
    const char *u = unit[R(8)];
    size_t n = size[R(4)];
    insert_rep(b, at, u, n / (1 + R(3)));
    return "huge scalar";
  }
  case 5:
    for (size_t n = 1 + R(3); n > 0; n--) {
      const char *s = odd_utf8[R(sizeof odd_utf8 / sizeof *odd_utf8)];
      insert(b, spot(b), s, strlen(s));
    }
    return "odd UTF-8";
  case 6:
    if (R(2)) insert(b, at, "\0", 1);
    else insert(b, at, "\"\\0\"", 4);
    return "NUL byte";
  case 7:
    if (R(2)) insert(b, R(2) ? 0 : b->len, bomb, strlen(bomb));
    else insert(b, at, R(2) ? "&x " : "*x ", 3);
    return "anchors and aliases";
  case 8: { /* duplicate a line */
    size_t s = R(b->len + 1);
    while (s > 0 && b->p[s - 1] != '\n') s--;
    const char *nl = memchr(b->p + s, '\n', b->len - s);
    size_t e = nl ? (size_t)(nl - b->p) + 1 : b->len;
    char *line = strndup(b->p + s, e - s);
    insert(b, R(2) ? s : b->len, line, e - s);
    free(line);
    return "duplicated line";
  }
  case 9: {
    const char *v = odd_values[R(sizeof odd_values / sizeof *odd_values)];
    size_t e = at;
    while (e < b->len && b->p[e] != '\n' && b->p[e] != '#') e++;
    memmove(b->p + at, b->p + e, b->len - e + 1);
    b->len -= e - at;
    insert(b, at, v, strlen(v));
    return "odd value";
  }
  case 10:
    if (R(4) == 0) { /* just past the size limit (or just under it) */
      size_t target = LV_CONFIG_MAX_BYTES + (R(2) ? 1 : 0);
      insert(b, b->len, "\n#", 2);
      if (b->len < target) insert_rep(b, b->len, "x", target - b->len);
    }
    return "size limit";
  default: {
    static const char *const lines[] = {
        "\n  extra: 1\n", "\nmodel:\n", "\n  \"d_mo\\ndel\\r\\t\": 1\n", "\n\"mo\\ndel\": 1\n",
        "\n  ? [a, b]\n  : 1\n", "\n? {a: 1}\n: 1\n", "\n  !!str d_model: 5\n", "\n---\nmodel: {}\n",
        "\n%YAML 1.1\n---\n", "\n...\n", "\n  <<: {d_model: 4}\n", "\ntrain.lr: 1\n"};
    const char *l = lines[R(sizeof lines / sizeof *lines)];
    insert(b, at, l, strlen(l));
    return "keys and sections";
  }
  }
}

/* ---- overrides -------------------------------------------------------------------------------- */

static char *make_override(void) {
  size_t nk;
  const lv_key *keys = lv_config_keys(&nk);
  buf b = {0};
  reserve(&b, 64);
  const char *name = keys[R(nk)].name;
  switch (R(6)) {
  case 0: insert(&b, 0, "=", 1); break;                          /* no name */
  case 1: insert(&b, 0, name, strlen(name)); break;              /* no '=' */
  case 2: insert(&b, 0, name + 1, strlen(name + 1)), insert(&b, b.len, "=1", 2); break; /* near miss */
  default: insert(&b, 0, name, strlen(name)), insert(&b, b.len, "=", 1);
  }
  switch (R(5)) {
  case 0: {
    const char *v = odd_values[R(sizeof odd_values / sizeof *odd_values)];
    insert(&b, b.len, v, strlen(v));
    break;
  }
  case 1: {
    const char *v = odd_utf8[R(sizeof odd_utf8 / sizeof *odd_utf8)];
    insert(&b, b.len, v, strlen(v));
    break;
  }
  case 2: { /* around the length limit, and around the fields' sizes */
    static const size_t len[] = {255, 256, 4095, 4096, LV_CONFIG_MAX_OVERRIDE, LV_CONFIG_MAX_OVERRIDE + 1, 100000};
    size_t n = len[R(7)];
    insert_rep(&b, b.len, "v", n > b.len ? n - b.len : 1);
    break;
  }
  case 3:
    for (size_t n = 1 + R(6); n > 0; n--) {
      char c = (char)(1 + R(255)); /* any byte but NUL: argv cannot hold one */
      insert(&b, b.len, &c, 1);
    }
    break;
  default: insert(&b, b.len, R(2) ? "1" : "0", 1);
  }
  return b.p;
}

/* ---- one case ------------------------------------------------------------------------------------ */

/* The child: build, then (if clean) print and reload. Exit 0 / 2, or 3 if the round trip differs. */
static _Noreturn void child(const char *path, int n_over, char **over, const char *err_path) {
  alarm(LV_FUZZ_CASE_S);
  FILE *err = fopen(err_path, "w");
  if (!err) _exit(4);
  lv_config cfg, back;
  int errors = lv_config_build(&cfg, path, n_over, over, err);
  if (!errors) {
    char *yaml = lv_config_to_yaml_string(&cfg);
    lv_config_defaults(&back);
    if (!yaml || lv_config_load_string(&back, yaml, strlen(yaml), "<printed>", err) ||
        lv_config_diff(&cfg, &back, 0, NULL, 0))
      _exit(3);
    free(yaml);
  }
  fclose(err);
  _exit(errors ? 2 : 0);
}

/* Whole small file (the child's messages) into a NUL-terminated buffer. */
static char *slurp(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  buf b = {0};
  reserve(&b, 4096);
  size_t n;
  while (f && (n = fread(b.p + b.len, 1, b.cap - b.len - 1, f)) > 0) {
    b.len += n;
    reserve(&b, 4096);
  }
  if (f) fclose(f);
  b.p[b.len] = '\0';
  *len = b.len;
  return b.p;
}

/* Line breaks as libyaml counts them (\n, \r\n, \r, NEL, LS, PS): an upper bound for line numbers. */
static size_t count_breaks(const buf *b) {
  size_t n = 0;
  for (size_t i = 0; i < b->len; i++) {
    const unsigned char *p = (const unsigned char *)b->p + i;
    n += *p == '\n' || *p == '\r' || (p[0] == 0xC2 && p[1] == 0x85) ||
         (p[0] == 0xE2 && p[1] == 0x80 && (p[2] == 0xA8 || p[2] == 0xA9));
  }
  return n;
}

/* NULL if every message line has one of the forms of io/config.h, else why not. */
static const char *judge_lines(char *msgs, const char *path, const buf *text, int n_over, char **over) {
  static char why[256];
  size_t plen = strlen(path), max_line = count_breaks(text) + 1;
  int n_lines = 0, n_cross = 0;
  for (char *line = strtok(msgs, "\n"); line; line = strtok(NULL, "\n"), n_lines++) {
    unsigned long ln, col;
    char *end;
    if (!strncmp(line, path, plen) && line[plen] == ':') {
      ln = strtoul(line + plen + 1, &end, 10);
      if (*end != ':') return "FILE: without line:col";
      col = strtoul(end + 1, &end, 10);
      /* libyaml places the end of a file without a final line break at the start of the line after */
      int end_of_file = ln == max_line + 1 && col == 1;
      if (strncmp(end, ": ", 2) || ln < 1 || col < 1 || (ln > max_line && !end_of_file) || col > text->len + 1) {
        snprintf(why, sizeof why, "bad place %lu:%lu (file of %zu bytes, %zu lines)", ln, col, text->len, max_line);
        return why;
      }
      continue;
    }
    int named = 0;
    for (int i = 0; i < n_over && !named; i++) {
      char sh[120], want[140];
      snprintf(want, sizeof want, "override %s: ", lv_config_shown(over[i], sh, sizeof sh));
      named = !strncmp(line, want, strlen(want));
    }
    if (named) continue;
    char *colon = strstr(line, ": ");
    if (colon) *colon = '\0';
    int cross = colon && lv_config_find_key(line);
    if (colon) *colon = ':';
    if (!cross) {
      snprintf(why, sizeof why, "a line naming no file:line:col, no override and no key: '%.160s'", line);
      return why;
    }
    n_cross++;
  }
  if (n_lines == 0) return "exit 2 without a message";
  if (n_cross && n_cross != n_lines) return "a cross-field message next to load errors";
  return NULL;
}

/* Runs one case; NULL if it passed, else why not. *code receives the exit code (or -signal). */
static const char *run_case(const char *dir, const buf *text, int n_over, char **over, int *code) {
  static char why[1024];
  char path[512], err_path[512];
  snprintf(path, sizeof path, "%s/case.yaml", dir);
  snprintf(err_path, sizeof err_path, "%s/case.err", dir);
  FILE *f = fopen(path, "wb");
  if (!f || fwrite(text->p, 1, text->len, f) != text->len || fclose(f)) { perror(path); exit(1); }
  fflush(NULL);
  pid_t pid = fork();
  if (pid < 0) { perror("fork"); exit(1); }
  if (pid == 0) child(path, n_over, over, err_path);
  int st;
  if (waitpid(pid, &st, 0) != pid) { perror("waitpid"); exit(1); }
  size_t len;
  char *msgs = slurp(err_path, &len);
  const char *bad = NULL;
  *code = WIFEXITED(st) ? WEXITSTATUS(st) : -WTERMSIG(st);
  if (WIFSIGNALED(st))
    bad = WTERMSIG(st) == SIGALRM ? "hung (killed after the per-case limit)" : "killed by a signal";
  else if (*code == 3) bad = "built, but the printed config does not load back to the same values";
  else if (*code == 0 && len) bad = "exit 0 with messages";
  else if (*code == 2) bad = judge_lines(msgs, path, text, n_over, over);
  else if (*code != 0) bad = "exit code neither 0 nor 2";
  if (bad) snprintf(why, sizeof why, "%s (exit %d): %.300s", bad, *code, msgs);
  free(msgs);
  return bad ? why : NULL;
}

/* ---- the run --------------------------------------------------------------------------------------- */

/* The YAML files of dir in name order (readdir's order depends on the file system). */
static int load_seeds(const char *dir, buf *seeds) {
  struct dirent **list;
  int n_list = scandir(dir, &list, NULL, alphasort), n = 0;
  for (int i = 0; i < n_list; i++) {
    const char *name = list[i]->d_name;
    size_t l = strlen(name);
    if (n < MAX_SEEDS && l > 5 && !strcmp(name + l - 5, ".yaml")) {
      char path[1024];
      snprintf(path, sizeof path, "%s/%s", dir, name);
      size_t len;
      seeds[n].p = slurp(path, &len);
      seeds[n].len = len;
      seeds[n].cap = len + 1;
      n++;
    }
    free(list[i]);
  }
  if (n_list >= 0) free(list);
  return n;
}

int main(int argc, char **argv) {
  const char *cfg_dir = argc > 1 ? argv[1] : LV_SOURCE_DIR "/configs";
  const char *t = getenv("LONGVQ_FUZZ_TRIALS"), *s = getenv("LONGVQ_FUZZ_SEED");
  int trials = t ? atoi(t) : 1500, verbose = getenv("LONGVQ_FUZZ_VERBOSE") != NULL;
  uint64_t seed = s ? strtoull(s, NULL, 10) : 1;
  g_rng = rng_make(seed, "config_fuzz", 0, 0);
  buf seeds[MAX_SEEDS];
  int n_seeds = load_seeds(cfg_dir, seeds);
  char dir[] = "/tmp/lv_config_fuzz_XXXXXX";
  if (n_seeds == 0 || !mkdtemp(dir)) { fprintf(stderr, "config_fuzz: no configs in %s or no temp dir\n", cfg_dir); return 1; }
  int failed = 0, exit0 = 0, exit2 = 0;
  double t0 = lv_now_s(), slowest = 0;
  for (int i = 0; i < trials; i++) {
    /* First every seed as it is (it must build: the mutations, not the seeds, make the errors). */
    const buf *from = &seeds[i < n_seeds ? i : (int)R((size_t)n_seeds)];
    buf b = {malloc(from->len + 1), from->len, from->len + 1};
    if (!b.p) { perror("malloc"); return 1; }
    memcpy(b.p, from->p, from->len + 1);
    const char *what[4] = {"none"};
    size_t n_mut = i < n_seeds ? 0 : 1 + R(4);
    for (size_t m = 0; m < n_mut; m++) what[m] = mutate(&b);
    int n_over = i < n_seeds || R(3) == 0 ? 0 : (int)R(MAX_OVER + 1), code;
    char *over[MAX_OVER];
    for (int k = 0; k < n_over; k++) over[k] = make_override();
    double c0 = lv_now_s();
    const char *bad = run_case(dir, &b, n_over, over, &code);
    double dt = lv_now_s() - c0;
    slowest = dt > slowest ? dt : slowest;
    if (i < n_seeds && code != 0) bad = bad ? bad : "an unmutated config does not build";
    exit0 += code == 0, exit2 += code == 2;
    if (verbose)
      printf("case %d: %zu bytes, %zu mutations (%s ...), %d overrides: exit %d\n", i, b.len, n_mut, what[0], n_over,
             code);
    if (bad) {
      char keep[600];
      snprintf(keep, sizeof keep, "%s/fail_%d.yaml", dir, i);
      FILE *f = fopen(keep, "wb");
      if (f) fwrite(b.p, 1, b.len, f), fclose(f);
      snprintf(keep, sizeof keep, "%s/fail_%d.txt", dir, i);
      f = fopen(keep, "wb");
      for (int k = 0; f && k < n_over; k++) fprintf(f, "%s\n", over[k]);
      if (f) fclose(f);
      if (failed++ < MAX_FAIL_SHOWN)
        fprintf(stderr, "FAIL case %d (%zu bytes; %s, %s, %s, %s; %d overrides): %s\n", i, b.len, what[0],
                n_mut > 1 ? what[1] : "-", n_mut > 2 ? what[2] : "-", n_mut > 3 ? what[3] : "-", n_over, bad);
    }
    for (int k = 0; k < n_over; k++) free(over[k]);
    free(b.p);
  }
  char tmp[600];
  snprintf(tmp, sizeof tmp, "%s/case.yaml", dir), remove(tmp);
  snprintf(tmp, sizeof tmp, "%s/case.err", dir), remove(tmp);
  if (!failed) rmdir(dir);
  for (int k = 0; k < n_seeds; k++) free(seeds[k].p);
  printf("config_fuzz: %d cases (seed %llu, %d seed configs) in %.1f s, slowest %.3f s: exit 0: %d, exit 2: %d, "
         "failed: %d%s%s\n", trials, (unsigned long long)seed, n_seeds, lv_now_s() - t0, slowest, exit0, exit2,
         failed, failed ? "; failing inputs kept in " : "", failed ? dir : "");
  return failed ? 1 : 0;
}
