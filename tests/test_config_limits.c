/* The config loader's input limits (io/config.h, docs/config.md "Input limits"): size, nesting
 * depth, override length; alias bombs; the largest printable config loads back under the limit.
 * Each refusal is checked for its exact place (source:line:col, or the override) and the limit.
 * The nested inputs of issue 13 (200 and 600 KB of `[` in one value, 16 s and 138 s before the
 * limit) are refused here; their times are printed, not judged (a regression to quadratic time
 * would run into the ctest timeout). */
#include <stdlib.h>
#include <string.h>

#include "io/config.h"
#include "tests/test_util.h"
#include "trainer/base/clock.h"

/* Load text as source "t.yaml" on top of defaults: the error count, *msgs the messages (free). */
static int load(lv_config *cfg, const char *text, size_t len, char **msgs) {
  size_t n;
  FILE *f = open_memstream(msgs, &n);
  if (!f) { perror("open_memstream"); exit(1); }
  lv_config_defaults(cfg);
  int errors = lv_config_load_string(cfg, text, len, "t.yaml", f);
  fclose(f);
  return errors;
}

/* A buffer of `head`, then `n` copies of `unit`, then `tail`; *len its length (free it). */
static char *repeat(const char *head, const char *unit, size_t n, const char *tail, size_t *len) {
  size_t h = strlen(head), u = strlen(unit), t = strlen(tail);
  char *s = malloc(h + n * u + t + 1);
  if (!s) { perror("malloc"); exit(1); }
  memcpy(s, head, h);
  for (size_t i = 0; i < n; i++) memcpy(s + h + i * u, unit, u);
  memcpy(s + h + n * u, tail, t + 1);
  *len = h + n * u + t;
  return s;
}

static const char depth_msg[] = "nested more than 64 levels deep, the limit";

/* Depth: the root mapping is level 1, so `x: ` followed by 63 `[` is at the limit (a value error,
 * no limit message) and 64 `[` is one over it, refused at the 64th `[` (column 4 + 63). */
static void test_depth(void) {
  lv_config c;
  char *msgs, want[160];
  size_t len;
  char *at = repeat("x: ", "[", 63, "", &len);
  int e = load(&c, at, len, &msgs);
  EXPECT(e >= 1 && !strstr(msgs, "nested more"), "63 [ under the root: %s", msgs);
  free(msgs), free(at);

  char *over = repeat("x: ", "[", 64, "", &len);
  e = load(&c, over, len, &msgs);
  snprintf(want, sizeof want, "t.yaml:1:1: x: unknown section (sections: model, data, train, checkpoint, dist, "
           "log, run)\nt.yaml:1:67: %s", depth_msg);
  EXPECT(e == 2 && !strncmp(msgs, want, strlen(want)), "64 [ under the root (%d errors): %s", e, msgs);
  free(msgs), free(over);

  /* Block style: each level a mapping indented one more space. */
  char block[64 * 70] = "";
  for (int i = 0; i < 65; i++) {
    size_t n = strlen(block);
    snprintf(block + n, sizeof block - n, "%*sk%d:\n", i, "", i);
  }
  e = load(&c, block, strlen(block), &msgs);
  EXPECT(strstr(msgs, "t.yaml:65:") && strstr(msgs, depth_msg), "65 nested block mappings: %s", msgs);
  free(msgs);
}

/* Issue 13's inputs: N KB of `[` (and of `{a: `) in one value. Refused at the limit; time printed. */
static void test_issue_inputs(void) {
  static const size_t kb[] = {200, 600};
  static const char *const unit[] = {"[", "{a: "};
  for (int u = 0; u < 2; u++)
    for (int i = 0; i < 2; i++) {
      lv_config c;
      char *msgs;
      size_t len;
      char *text = repeat("model:\n  d_model: ", unit[u], kb[i] * 1024 / strlen(unit[u]), "\n", &len);
      double t0 = lv_now_s();
      int e = load(&c, text, len, &msgs);
      double dt = lv_now_s() - t0;
      EXPECT(e == 2 && strstr(msgs, "t.yaml:2:12: model.d_model: expected a value, got") &&
             strstr(msgs, depth_msg), "%zu KB of '%s': %s", kb[i], unit[u], msgs);
      printf("%4zu KB of '%s' in one value: refused in %.4f s\n", kb[i], unit[u], dt);
      free(msgs), free(text);
    }
}

/* Size: a valid config padded with a comment to exactly the limit loads; one byte more is refused
 * before parsing, pointing at the first byte beyond the limit; the same through a file. */
static void test_size(void) {
  lv_config c;
  char *msgs;
  size_t n = LV_CONFIG_MAX_BYTES, len;
  const char *head = "model:\n  d_model: 64\n#";
  char *text = repeat(head, "x", n - strlen(head) - 1, "\n", &len);
  EXPECT(len == n, "built %zu bytes", len);
  int e = load(&c, text, len, &msgs);
  EXPECT(e == 0 && c.model.d_model == 64, "a config of exactly the limit: %s", msgs);
  free(msgs), free(text);

  text = repeat(head, "x", n - strlen(head), "\n", &len); /* the final newline is byte n + 1 */
  e = load(&c, text, len, &msgs);
  char want[200];
  snprintf(want, sizeof want, "t.yaml:3:%zu: more than 1048576 bytes (1 MiB), the limit for a config",
           n - strlen("model:\n  d_model: 64\n") + 1);
  EXPECT(e == 1 && !strncmp(msgs, want, strlen(want)) && c.model.d_model == 128, "one byte over: %s", msgs);
  free(msgs);

  char path[] = "/tmp/lv_config_limits_XXXXXX";
  int fd = mkstemp(path);
  FILE *f = fd >= 0 ? fdopen(fd, "wb") : NULL;
  EXPECT(f != NULL, "temporary file");
  if (!f) return free(text);
  for (int i = 0; i < 3; i++) fwrite(text, 1, len, f); /* 3 MiB: read_file stops after the limit */
  fclose(f);
  size_t mlen;
  FILE *m = open_memstream(&msgs, &mlen);
  lv_config_defaults(&c);
  e = lv_config_load_file(&c, path, m);
  fclose(m);
  snprintf(want, sizeof want, "%s:3:%zu: more than", path, n - strlen("model:\n  d_model: 64\n") + 1);
  EXPECT(e == 1 && !strncmp(msgs, want, strlen(want)), "a 3 MiB file: %s", msgs);
  remove(path);
  free(msgs), free(text);
}

/* The printer's largest output (every string key filled with a control character, printed as the
 * 4-byte escape \x01) is under the size limit and loads back identically: a checkpoint's stored
 * config can never be refused by the limit. */
static void test_largest_printed(void) {
  size_t nk;
  const lv_key *keys = lv_config_keys(&nk);
  lv_config c, back;
  lv_config_defaults(&c);
  for (size_t i = 0; i < nk; i++)
    if (keys[i].type == LV_T_STRING) {
      char *s = (char *)&c + keys[i].offset;
      memset(s, 1, keys[i].size - 1);
      s[keys[i].size - 1] = '\0';
    }
  char *yaml = lv_config_to_yaml_string(&c), *msgs;
  EXPECT(yaml != NULL, "printed");
  if (!yaml) return;
  size_t len = strlen(yaml);
  EXPECT(len < LV_CONFIG_MAX_BYTES / 4, "the largest printed config is %zu bytes", len);
  int e = load(&back, yaml, len, &msgs);
  EXPECT(e == 0 && lv_config_diff(&c, &back, 0, NULL, 0) == 0, "it loads back: %s", msgs);
  printf("largest printed config: %zu bytes (limit %zu)\n", len, LV_CONFIG_MAX_BYTES);
  free(msgs), free(yaml);
}

/* Billion laughs: anchors and aliases are events, never expanded by the loader; an alias as a value
 * is an error, and the whole walk stays linear in the text. */
static void test_alias_bomb(void) {
  char bomb[4096] = "x:\n  a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n";
  for (int i = 1; i < 10; i++) {
    size_t n = strlen(bomb);
    n += (size_t)snprintf(bomb + n, sizeof bomb - n, "  a%d: &a%d [", i, i);
    for (int j = 0; j < 9; j++) n += (size_t)snprintf(bomb + n, sizeof bomb - n, "*a%d%s", i - 1, j < 8 ? ", " : "");
    snprintf(bomb + n, sizeof bomb - n, "]\n");
  }
  size_t n = strlen(bomb);
  snprintf(bomb + n, sizeof bomb - n, "model:\n  d_model: *a9\n");
  lv_config c;
  char *msgs;
  double t0 = lv_now_s();
  int e = load(&c, bomb, strlen(bomb), &msgs);
  double dt = lv_now_s() - t0;
  EXPECT(e == 2 && strstr(msgs, "t.yaml:1:1: x: unknown section") &&
         strstr(msgs, "t.yaml:13:12: model.d_model: expected a value, got an alias (aliases are not supported)"),
         "billion laughs: %s", msgs);
  printf("billion laughs (10^9 lols if expanded): refused in %.4f s\n", dt);
  free(msgs);
}

/* Overrides: exactly the limit reaches the key's own check; one byte more is refused, the message
 * one line, the override quoted and cut short. A control character in a name stays on one line. */
static void test_override_length(void) {
  lv_config c;
  char *msgs;
  size_t len, mlen;
  const char *head = "run.name=";
  char *ok = repeat(head, "n", LV_CONFIG_MAX_OVERRIDE - strlen(head), "", &len);
  char *over = repeat(head, "n", LV_CONFIG_MAX_OVERRIDE - strlen(head) + 1, "", &len);
  char *assign[] = {ok, over, "run.na\nme=1"};
  for (int i = 0; i < 3; i++) {
    lv_config_defaults(&c);
    FILE *f = open_memstream(&msgs, &mlen);
    int e = lv_config_apply_override(&c, assign[i], f);
    fclose(f);
    const char *want = i == 0 ? "run.name: value is 8183 bytes long" : i == 1 ? "': longer than 8192 bytes, the limit for an override\n"
                                                            : "override 'run.na me=1': run.na me: unknown key";
    EXPECT(e == 1 && strstr(msgs, want) && strchr(msgs, '\n') == msgs + mlen - 1 && mlen < 400,
           "override %d: %s", i, msgs);
    free(msgs);
  }
  free(ok), free(over);
}

int main(void) {
  test_depth();
  test_issue_inputs();
  test_size();
  test_largest_printed();
  test_alias_bomb();
  test_override_length();
  return tu_finish("test_config_limits");
}
