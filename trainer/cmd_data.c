#include <stdio.h>
#include "trainer/commands.h"
int cmd_data(int argc, char **argv) { (void)argc; (void)argv; fprintf(stderr, "TODO\n"); return 1; }
int cmd_inspect(int argc, char **argv) { (void)argc; (void)argv; fprintf(stderr, "TODO\n"); return 1; }
