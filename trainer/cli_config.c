/* `CONFIG [key=value ...]` on the command line (see cli_config.h). */
#include "trainer/cli_config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/model_io.h"
#include "trainer/base/check.h"
#include "trainer/base/dist.h"

void lv_cli_config_init(lv_cli_config *a, int argc) {
  memset(a, 0, sizeof *a);
  a->over = calloc((size_t)argc + 1, sizeof(char *));
  CHECK_ALLOC(a->over);
}

void lv_cli_config_free(lv_cli_config *a) {
  free(a->over);
  a->over = NULL;
}

int lv_cli_config_arg(lv_cli_config *a, const char *cmd, char *arg) {
  if (arg[0] == '-' && arg[1] == '-') return 0;
  if (strchr(arg, '=')) {
    a->over[a->n_over++] = arg;
  } else if (!a->config) {
    a->config = arg;
  } else {
    if (dist_is_root())
      fprintf(stderr, "longvq %s: unexpected argument '%s' (one config file, then key=value)\n", cmd, arg);
    return -1;
  }
  return 1;
}

int lv_cli_config_build(lv_config *cfg, const lv_cli_config *a, const char *cmd) {
  if (!a->config) {
    if (dist_is_root()) fprintf(stderr, "longvq %s: missing CONFIG (see --help)\n", cmd);
    return 1;
  }
  /* Any rank's errors (an MPMD launch may give ranks different command lines) end the job with that
   * rank's list, printed once by rank 0. */
  char *text = NULL;
  size_t len = 0;
  FILE *mem = open_memstream(&text, &len);
  CHECK_ALLOC(mem);
  int errs = lv_config_build(cfg, a->config, a->n_over, a->over, mem);
  fclose(mem);
  while (len > 0 && text[len - 1] == '\n') text[--len] = 0;
  CHECK_INPUT_ALL(errs, "%s", text);
  free(text);
  return 0;
}

int lv_cli_config_build_model(lv_config *cfg, const lv_cli_config *a, const char *cmd, const char *model) {
  if (a->config && !model) {
    if (dist_is_root()) fprintf(stderr, "longvq %s: missing --model (see --help)\n", cmd);
    return 1;
  }
  return lv_cli_config_build(cfg, a, cmd);
}

void lv_cli_adopt_model_keys(lv_config *cfg, const lv_cli_config *a, const char *model, const char *cmd, FILE *out) {
  char *yaml = lv_model_read_config(model);
  if (!yaml) return; /* no stored config (a foreign file): the given config alone */
  lv_config stored, given = *cfg;
  lv_config_defaults(&stored);
  char src[LV_CONFIG_PATH_MAX + sizeof "<config of >"];
  snprintf(src, sizeof src, "<config of %s>", model);
  int bad = lv_config_load_string(&stored, yaml, strlen(yaml), src, dist_is_root() ? stderr : NULL);
  free(yaml);
  if (bad) DIE_INPUT("--model %s: its stored config does not load (see above)", model);
  const char *names[128];
  int n = lv_config_diff(&stored, cfg, 0, names, 128);
  for (int i = 0; i < n && i < 128; i++) {
    const lv_key *k = lv_config_find_key(names[i]);
    if (strncmp(names[i], "model.", 6) || (k->flags & LV_KEY_SHAPE)) continue;
    char v[256], problem[256];
    lv_config_format_value(&stored, k, v, sizeof v);
    if (lv_config_set_text(cfg, k, v, problem, sizeof problem)) DIE("%s: %s", names[i], problem);
  }
  if (lv_config_apply_overrides(cfg, a->n_over, a->over, NULL)) DIE("%s: re-applying the overrides failed", cmd);
  n = lv_config_diff(&given, cfg, 0, names, 128);
  for (int i = 0; i < n && i < 128 && dist_is_root(); i++) {
    const lv_key *k = lv_config_find_key(names[i]);
    char was[256], now[256];
    lv_config_format_value(cfg, k, now, sizeof now);
    lv_config_format_value(&given, k, was, sizeof was);
    fprintf(out, "%s: %s: %s as the model was trained (the config says %s; override with %s=...)\n", cmd, names[i], now,
            was, names[i]);
  }
}
