/* The config part of a command line, `CONFIG [key=value ...]`, shared by `train`, `eval` and
 * `bench`: one YAML file and key=value overrides (applied after the file, in order), anywhere among
 * the command's own `--options`. The options stay each command's own; this only classifies the
 * other arguments and builds the config from them (io/config.h, lv_config_build). */
#ifndef LONGVQ_CLI_CONFIG_H
#define LONGVQ_CLI_CONFIG_H

#include <stdio.h>

#include "io/config.h"

typedef struct {
  const char *config; /* CONFIG, or NULL if not given */
  int n_over;
  char **over;        /* key=value overrides in command-line order (argc + 1 slots) */
} lv_cli_config;

/* Empty, with room for argc overrides (a command may append its own, e.g. train's --resume). */
void lv_cli_config_init(lv_cli_config *a, int argc);
void lv_cli_config_free(lv_cli_config *a);

/* One argument of command `cmd`: a key=value override or, the first time, CONFIG (returns 1); an
 * option `--...`, left to the command (returns 0); a second CONFIG (returns -1, message on rank 0). */
int lv_cli_config_arg(lv_cli_config *a, const char *cmd, char *arg);

/* Collective: cfg = defaults, CONFIG, the overrides, validation (lv_config_build) on every rank.
 * Returns 0; 1 for a missing CONFIG (rank 0 says so; exit with LV_EXIT_USAGE). Any other problem on
 * any rank ends the job here (CHECK_INPUT_ALL: rank 0 prints that rank's list of problems, naming
 * the file/line or the key, and every rank exits with LV_EXIT_USAGE). */
int lv_cli_config_build(lv_config *cfg, const lv_cli_config *a, const char *cmd);

/* Collective: lv_cli_config_build for a command that also needs `--model FILE` (eval, generate):
 * CONFIG given without it is refused first (rank 0 says so; returns 1: exit with LV_EXIT_USAGE). A
 * missing CONFIG is reported by the build, as for every command. */
int lv_cli_config_build_model(lv_config *cfg, const lv_cli_config *a, const char *cmd, const char *model);

/* `eval` and `generate`: the model is used as it was trained. Every non-shape model.* key is taken
 * from the model file's stored config (if it has one), then the command line's key=value overrides
 * are applied again, so they still win; each key that ends up changed is printed to `out` ("<cmd>:
 * key: ..."). Shape keys must already agree, or loading the parameters fails. */
void lv_cli_adopt_model_keys(lv_config *cfg, const lv_cli_config *a, const char *model, const char *cmd, FILE *out);

#endif
