/* longvq: train LongVQ sequence models data-parallel over MPI.
 * main() only dispatches; each subcommand lives in trainer/cmd_<name>.c. */
#include <stdio.h>
#include <string.h>

#include "trainer/base/check.h"
#include "trainer/commands.h"
#include "trainer/base/dist.h"

const lv_command lv_commands[] = {
    {"data", cmd_data, "convert raw data to an HDF5 dataset; kinds: "},
    {"inspect", cmd_inspect, "summarize an HDF5 dataset or checkpoint"},
    {"train", cmd_train, "train a model from a YAML config (key=value overrides)"},
    {"eval", cmd_eval, "evaluate a saved model on a split"},
    {"generate", cmd_generate, "sample text from a decoder model, token by token in constant memory"},
    {"bench", cmd_bench, "speed and memory of a config's model's training step here (docs/performance.md)"},
    {"profile", cmd_profile, "what one training step is made of here, as JSON for projections (docs/scaling.md)"},
    {NULL, NULL, NULL},
};

static void usage(FILE *f) {
  fprintf(f, "usage: longvq <command> [options]   (run under mpirun/srun for many ranks)\n\ncommands:\n");
  for (const lv_command *c = lv_commands; c->name; c++) {
    fprintf(f, "  %-10s %s", c->name, c->summary);
    if (c->run == cmd_data) cmd_data_print_kinds(f); /* listed from the converters' own table */
    fputc('\n', f);
  }
  fprintf(f, "\n`longvq <command> --help` for a command's options. `longvq --version` for the build.\n");
}

int main(int argc, char **argv) {
  dist_init(&argc, &argv);
  int rc = LV_EXIT_USAGE;
  const char *name = argc > 1 ? argv[1] : NULL;
  if (!name) {
    if (dist_is_root()) usage(stderr);
  } else if (!strcmp(name, "--help") || !strcmp(name, "-h") || !strcmp(name, "help")) {
    if (dist_is_root()) usage(stdout);
    rc = LV_EXIT_OK;
  } else if (!strcmp(name, "--version")) {
    if (dist_is_root()) printf("longvq %s (git %s)\n", LONGVQ_VERSION, LONGVQ_GIT);
    rc = LV_EXIT_OK;
  } else {
    const lv_command *c = lv_commands;
    while (c->name && strcmp(c->name, name) != 0) c++;
    if (c->name) {
      rc = c->run(argc - 1, argv + 1);
    } else if (dist_is_root()) {
      fprintf(stderr, "longvq: unknown command '%s'\n\n", name);
      usage(stderr);
    }
  }
  dist_finalize();
  return rc;
}
