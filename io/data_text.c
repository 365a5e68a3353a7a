/* Text files into a byte-level language-modelling dataset: vocab 256 (token = byte value), one
 * token stream per split. The files are concatenated as they are, in command-line order; the
 * stream is then cut into train | val | test, val and test being the last fractions of the bytes
 * (test last). LM samples are windows cut at read time (docs/dataset-format.md). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "io/data_convert.h"
#include "trainer/base/check.h"
#include "trainer/base/log.h"

int lv_data_text(int argc, char **argv) {
  lv_data_common c = {.shards = 1};
  double val_fraction = 0.05, test_fraction = 0.0;
  const lv_opt opts[] = {
      LV_DATA_COMMON_OPTS(c),
      {"--val-fraction", LV_OPT_F64, &val_fraction, "fraction of the bytes for val, cut after train (default 0.05)", 1},
      {"--test-fraction", LV_OPT_F64, &test_fraction, "fraction of the bytes for test, cut last (default 0)", 1},
      {NULL, 0, NULL, NULL, 0},
  };
  char prov[1024];
  char **files = malloc((size_t)argc * sizeof *files);
  CHECK_ALLOC(files);
  int n_files = 0;
  if (lv_opts_parse("text", "--out FILE.h5 [options] TEXTFILE...", argc, argv, opts, &n_files, &files, prov,
                    sizeof prov)) {
    free(files);
    return 0;
  }
  lv_data_check_common("text", &c);
  if (n_files == 0) DIE_INPUT("data text: no input files (longvq data text --out FILE.h5 TEXTFILE...)");
  if (!(val_fraction >= 0 && test_fraction >= 0 && val_fraction + test_fraction < 1))
    DIE_INPUT("data text: --val-fraction and --test-fraction must be >= 0 with a sum < 1");
  lv_u8vec all = {0};
  size_t src_cap = 1;
  for (int i = 0; i < n_files; i++) src_cap += strlen(files[i]) + 1;
  char *sources = calloc(src_cap, 1);
  CHECK_ALLOC(sources);
  for (int i = 0; i < n_files; i++) {
    int64_t len;
    char *data = lv_read_file(files[i], &len);
    if (len == 0) log_warn("%s: empty file", files[i]);
    lv_u8_push(&all, (const uint8_t *)data, len);
    free(data);
    strcat(sources, files[i]);
    if (i + 1 < n_files) strcat(sources, "\n");
  }
  int64_t total = all.n;
  int64_t n_test = (int64_t)floor((double)total * test_fraction), n_val = (int64_t)floor((double)total * val_fraction);
  int64_t n_train = total - n_val - n_test;
  /* A split must hold at least one window of the shortest sequence (2 tokens: input + target). */
  int64_t sizes[3] = {n_train, n_val, n_test};
  double fr[3] = {1, val_fraction, test_fraction};
  static const char *names[3] = {"train", "val", "test"};
  lv_split_data sp[3];
  int ns = 0;
  int64_t at = 0;
  for (int s = 0; s < 3; s++) {
    if (fr[s] > 0 && sizes[s] < 2)
      DIE_INPUT("data text: %s%s (%lld bytes): split '%s' would hold %lld bytes (need >= 2)", files[0],
                n_files > 1 ? " ..." : "", (long long)total, names[s], (long long)sizes[s]);
    if (sizes[s] > 0) sp[ns++] = (lv_split_data){names[s], 0, sizes[s], all.p + at, LV_DTYPE_U8, NULL, NULL, NULL};
    at += sizes[s];
  }
  lv_dataset_meta m = {LV_TASK_LM, 256, 0, "longvq data text", prov, c.seed, sources, NULL, NULL};
  lv_dataset_write(c.out, (int)c.shards, c.force, &m, ns, sp);
  log_info("text: %lld bytes from %d file(s): %lld train, %lld val, %lld test", (long long)total, n_files,
           (long long)n_train, (long long)n_val, (long long)n_test);
  free(all.p);
  free(sources);
  free(files);
  return 0;
}
