/* Subcommands of the `longvq` executable. Each runs after dist_init and returns an exit code
 * (see check.h); each prints its own --help. argv[0] is the command name. */
#ifndef LONGVQ_COMMANDS_H
#define LONGVQ_COMMANDS_H

#include <stdio.h>

typedef struct {
  const char *name;
  int (*run)(int argc, char **argv);
  const char *summary;
} lv_command;

int cmd_data(int argc, char **argv);    /* trainer/cmd_data.c */
/* `longvq inspect` of a checkpoint or model file (trainer/inspect_ckpt.c); returns an exit code. */
int inspect_checkpoint(const char *path);
/* Prints the converter kinds of `longvq data`, comma-separated (from its one table). */
void cmd_data_print_kinds(FILE *f);
int cmd_inspect(int argc, char **argv); /* trainer/cmd_inspect.c */
int cmd_train(int argc, char **argv);   /* trainer/cmd_train.c */
int cmd_eval(int argc, char **argv);    /* trainer/cmd_train.c */
int cmd_bench(int argc, char **argv);   /* trainer/cmd_bench.c */
int cmd_generate(int argc, char **argv); /* trainer/cmd_generate.c */
int cmd_profile(int argc, char **argv); /* trainer/cmd_profile.c */

/* The command table main() dispatches on; NULL-terminated. */
extern const lv_command lv_commands[];

#endif
