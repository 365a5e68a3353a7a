/* Metrics lines (trainer/jsonl.h): valid JSON whatever the numbers (NaN/Inf -> null), escaped
 * strings, and a write that cannot complete (a full disk: /dev/full) reported, never silent. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "test_util.h"
#include "trainer/jsonl.h"

static void test_values(void) {
  lv_jsonl j;
  jsonl_begin(&j);
  jsonl_int(&j, "step", 12);
  jsonl_num(&j, "loss", "%.4f", 1.25);
  jsonl_num(&j, "nan", "%.4f", NAN);
  jsonl_num(&j, "inf", "%.4f", -INFINITY);
  double a[3] = {1.5, NAN, 2};
  jsonl_num_array(&j, "ppl", "%.1f", a, 3);
  jsonl_str(&j, "run", "a \"b\"\\c\n");
  FILE *f = tmpfile();
  EXPECT(f && jsonl_write(&j, f) == 0, "write to a file");
  rewind(f);
  char line[512] = "";
  EXPECT(fgets(line, sizeof line, f) != NULL, "read back");
  fclose(f);
  const char *want = "{\"step\": 12, \"loss\": 1.2500, \"nan\": null, \"inf\": null, \"ppl\": [1.5,null,2.0], "
                     "\"run\": \"a \\\"b\\\"\\\\c\\u000a\"}\n";
  EXPECT(!strcmp(line, want), "line:\n%s\nwant:\n%s", line, want);
}

static void test_failures(void) {
  lv_jsonl j;
  jsonl_begin(&j);
  jsonl_int(&j, "step", 1);
  FILE *full = fopen("/dev/full", "w");
  if (full) {
    errno = 0;
    EXPECT(jsonl_write(&j, full) == -1 && errno == ENOSPC, "a full disk is reported (errno %d)", errno);
    fclose(full);
  }
  jsonl_begin(&j);
  char big[1000];
  memset(big, 'x', sizeof big - 1);
  big[sizeof big - 1] = 0;
  for (int i = 0; i < 20; i++) jsonl_str(&j, "k", big); /* 20 kB: more than the line buffer */
  FILE *f = tmpfile();
  EXPECT(jsonl_write(&j, f) == -1 && errno == EOVERFLOW, "an object that does not fit is refused, not cut");
  EXPECT(ftell(f) == 0, "nothing written for it");
  fclose(f);
}

int main(void) {
  test_values();
  test_failures();
  return tu_finish("test_jsonl");
}
