/* `longvq data <kind>`: convert raw data into a longvq HDF5 dataset (docs/dataset-format.md).
 * The converters live in io/data_*.c; rank 0 does the work, other ranks (if any) only wait. */
#include <stdio.h>
#include <string.h>

#include "io/data_convert.h"
#include "trainer/base/check.h"
#include "trainer/commands.h"
#include "trainer/base/dist.h"

typedef struct {
  const char *kind;
  int (*run)(int argc, char **argv);
  const char *summary;
} converter;

static const converter converters[] = {
    {"listops", lv_data_listops, "Long Range Arena ListOps, generated (10 classes, lengths 500..2000)"},
    {"fashion-mnist", lv_data_fmnist, "Fashion-MNIST IDX files -> 784-pixel sequences (10 classes)"},
    {"text", lv_data_text, "text files -> byte-level language-modelling stream (vocab 256)"},
    {"tsv", lv_data_tsv, "LABEL<TAB>TEXT lines -> byte-level classification (vocab 256)"},
    {"recall", lv_data_recall, "long-range associative recall, generated (answer >= 8 chunks from the query)"},
    {"mqar", lv_data_mqar, "multi-query associative recall as LM: near and far (>= 8 chunks) recalls, eval_mask"},
    {NULL, NULL, NULL},
};

void cmd_data_print_kinds(FILE *f) {
  for (const converter *c = converters; c->kind; c++) fprintf(f, "%s%s", c == converters ? "" : ", ", c->kind);
}

static void usage(FILE *f) {
  fprintf(f, "usage: longvq data <kind> --out FILE.h5 [--seed S] [--shards N] [--force] [options]\n\nkinds:\n");
  for (const converter *c = converters; c->kind; c++) fprintf(f, "  %-14s %s\n", c->kind, c->summary);
  fprintf(f, "\n`longvq data <kind> --help` for a kind's options. The format: docs/dataset-format.md.\n");
}

int cmd_data(int argc, char **argv) {
  int rc = LV_EXIT_USAGE;
  if (dist_is_root()) {
    const char *kind = argc > 1 ? argv[1] : NULL;
    if (!kind) {
      usage(stderr);
    } else if (!strcmp(kind, "--help") || !strcmp(kind, "-h")) {
      usage(stdout);
      rc = LV_EXIT_OK;
    } else {
      const converter *c = converters;
      while (c->kind && strcmp(c->kind, kind)) c++;
      if (c->kind) {
        rc = c->run(argc - 1, argv + 1);
      } else {
        fprintf(stderr, "longvq data: unknown kind '%s'\n\n", kind);
        usage(stderr);
      }
    }
  }
  /* Errors abort every rank (DIE_INPUT); on success the others learn the exit code here. */
  dist_bcast_from(&rc, sizeof rc, 0);
  return rc;
}
