#include "trainer/base/procstat.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

double lv_proc_status_bytes(const char *field) {
  FILE *f = fopen("/proc/self/status", "r");
  if (!f) return 0;
  char line[256];
  double v = 0;
  size_t n = strlen(field);
  while (fgets(line, sizeof line, f))
    if (!strncmp(line, field, n)) {
      v = atof(line + n) * 1024.0; /* "VmRSS:   12345 kB" */
      break;
    }
  fclose(f);
  return v;
}

double lv_proc_loadavg(void) {
  FILE *f = fopen("/proc/loadavg", "r");
  double load = -1;
  if (!f) return -1;
  if (fscanf(f, "%lf", &load) != 1) load = -1;
  fclose(f);
  return load;
}
