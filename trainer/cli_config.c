/* `CONFIG [key=value ...]` on the command line (see cli_config.h). */
#include "trainer/cli_config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
