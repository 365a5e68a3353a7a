/* The start-up placement log without MPI: CPU sets as compact ranges (placement_cpu_list), and
 * rank 0's report from hand-made records (placement_report): per-rank and per-host tables,
 * where the thread count comes from, and the oversubscription warning for cases this 2-core
 * machine cannot produce (several hosts, mixed thread counts, OpenMP-pinned ranks sharing CPUs). */
#include <stdlib.h>
#include <string.h>

#include "tests/test_util.h"
#include "trainer/placement.h"

static void expect_list(const int *cpus, int n, size_t cap, const char *want) {
  cpu_set_t s;
  CPU_ZERO(&s);
  for (int i = 0; i < n; i++) CPU_SET(cpus[i], &s);
  char out[4096];
  memset(out, 'x', sizeof out);
  placement_cpu_list(&s, out, cap);
  EXPECT(strcmp(out, want) == 0, "got '%s' want '%s' (cap %zu)", out, want, cap);
  EXPECT(strlen(out) < cap, "'%s' does not fit in %zu bytes", out, cap);
}

/* rec(rank, host, threads, bind, first cpu, last cpu) */
static placement_rank rec(int rank, const char *host, int threads, int bind, int lo, int hi) {
  placement_rank p;
  memset(&p, 0, sizeof p);
  p.rank = rank;
  p.pid = 1000 + rank;
  p.threads = threads;
  p.bind = bind;
  p.places = bind ? hi - lo + 1 : 0;
  snprintf(p.host, sizeof p.host, "%s", host);
  CPU_ZERO(&p.cpus);
  for (int c = lo; c <= hi; c++) CPU_SET(c, &p.cpus);
  return p;
}

/* Runs placement_report into a string; returns it (static buffer) and the warning in `warn`. */
static const char *report(const placement_rank *all, int world, int64_t threads, const char *env, int lines,
                          char *warn, int *over) {
  static char text[65536];
  FILE *f = fmemopen(text, sizeof text, "w");
  *over = placement_report(f, all, world, threads, env, lines, warn, 1024);
  fclose(f);
  return text;
}

#define EXPECT_HAS(text, part) EXPECT(strstr(text, part) != NULL, "'%s' not in:\n%s", part, text)

static void reports(void) {
  char warn[1024];
  int over;
  /* 2 ranks x 1 thread, one per core: no warning; the key overrides the environment. */
  placement_rank a[2] = {rec(0, "n1", 1, 0, 0, 0), rec(1, "n1", 1, 0, 1, 1)};
  const char *t = report(a, 2, 1, "2", 64, warn, &over);
  EXPECT_HAS(t, "placement: 2 ranks x 1 thread (train.threads=1; OMP_NUM_THREADS=2 overridden), 1 host\n");
  EXPECT_HAS(t, "     0  n1        1000  0           1  false\n");
  EXPECT_HAS(t, "     1  n1        1001  1           1  false\n");
  EXPECT(!over && warn[0] == 0, "no warning expected, got '%s'", warn);
  t = report(a, 2, 0, "1", 64, warn, &over);
  EXPECT_HAS(t, "(train.threads=0: OMP_NUM_THREADS=1)");
  t = report(a, 2, 0, NULL, 64, warn, &over);
  EXPECT_HAS(t, "(train.threads=0, OMP_NUM_THREADS unset: one per CPU of the rank)");

  /* 2 x 2 threads on 2 CPUs of one host, each rank free on both: the host is oversubscribed. */
  placement_rank b[2] = {rec(0, "n1", 2, 0, 0, 1), rec(1, "n1", 2, 0, 0, 1)};
  t = report(b, 2, 2, NULL, 64, warn, &over);
  EXPECT_HAS(t, "placement: 2 ranks x 2 threads (train.threads=2), 1 host");
  EXPECT(over, "2 x 2 on 2 CPUs must warn");
  EXPECT_HAS(warn, "host n1 runs 2 ranks x 2 threads = 4 threads on 2 CPUs (0-1); timings measure function, not speed");
  EXPECT(!strstr(warn, "rank 0 runs"), "no rank is oversubscribed on its own: '%s'", warn);

  /* Two hosts, one fine, one with a rank bound to one core running 2 threads; mixed counts. */
  placement_rank c[4] = {rec(0, "n1", 4, 0, 0, 3), rec(1, "n2", 2, 0, 0, 0), rec(2, "n1", 4, 0, 4, 7),
                         rec(3, "n2", 1, 0, 1, 1)};
  t = report(c, 4, 0, "4", 64, warn, &over);
  EXPECT_HAS(t, "placement: 4 ranks x 1-4 threads (train.threads=0: OMP_NUM_THREADS=4), 2 hosts");
  EXPECT_HAS(t, "     2  n1        1002  4-7         4  false\n");
  EXPECT(over, "a rank with 2 threads on 1 CPU must warn");
  EXPECT_HAS(warn, "host n2 runs 2 ranks x 1-2 threads = 3 threads on 2 CPUs (0-1); rank 1 runs 2 threads on 1 CPU (0)");
  EXPECT(!strstr(warn, "n1"), "host n1 is fine: '%s'", warn);

  /* Unbound ranks with OMP_PROC_BIND: both pinned to CPU 0; the warning says why. */
  placement_rank d[2] = {rec(0, "n1", 1, 3, 0, 0), rec(1, "n1", 1, 3, 0, 0)};
  t = report(d, 2, 1, NULL, 64, warn, &over);
  EXPECT_HAS(t, "     0  n1        1000  0           1  close (1 place)\n");
  EXPECT(over, "two ranks pinned to one CPU must warn");
  EXPECT_HAS(warn, "host n1 runs 2 ranks x 1 thread = 2 threads on 1 CPU (0); ranks pinned by OMP_PROC_BIND share CPUs");
  /* ... but OpenMP binding within bound ranks is fine. */
  placement_rank e[2] = {rec(0, "n1", 2, 3, 0, 1), rec(1, "n1", 2, 3, 2, 3)};
  report(e, 2, 2, NULL, 64, warn, &over);
  EXPECT(!over, "bound ranks with OpenMP binding: no warning, got '%s'", warn);

  /* Many ranks: one line per host instead of one per rank; 3 hosts x 40 ranks x 1 thread, the
   * last host with only 32 CPUs. */
  enum { W = 120 };
  placement_rank *m = malloc(sizeof *m * W);
  for (int r = 0; r < W; r++) m[r] = rec(r, r % 3 == 0 ? "a" : r % 3 == 1 ? "b" : "c", 1, 0, 0, r % 3 == 2 ? 31 : 63);
  t = report(m, W, 1, NULL, 64, warn, &over);
  EXPECT_HAS(t, "placement: 120 ranks x 1 thread (train.threads=1), 3 hosts\n");
  EXPECT_HAS(t, "  host a: 40 ranks from rank 0, 1 thread each, cpus 0-63\n");
  EXPECT_HAS(t, "  host c: 40 ranks from rank 2, 1 thread each, cpus 0-31\n");
  EXPECT(!strstr(t, "  rank "), "no per-rank table above the limit:\n%s", t);
  EXPECT_HAS(warn, "host c runs 40 ranks x 1 thread = 40 threads on 32 CPUs (0-31)");
  EXPECT(!strstr(warn, "more host"), "only host c: '%s'", warn);
  free(m);
}

int main(void) {
  reports();
  expect_list(NULL, 0, 64, "");
  expect_list((int[]){0}, 1, 64, "0");
  expect_list((int[]){0, 1}, 2, 64, "0-1");
  expect_list((int[]){0, 2, 3}, 3, 64, "0,2-3");
  expect_list((int[]){1, 3, 5, 6, 7, 9}, 6, 64, "1,3,5-7,9");
  expect_list((int[]){CPU_SETSIZE - 1}, 1, 64, "1023");
  expect_list((int[]){0, 1, 2, CPU_SETSIZE - 2, CPU_SETSIZE - 1}, 5, 64, "0-2,1022-1023");
  /* every CPU: one range */
  int all[CPU_SETSIZE];
  for (int i = 0; i < CPU_SETSIZE; i++) all[i] = i;
  expect_list(all, CPU_SETSIZE, 64, "0-1023");
  /* too long for the buffer: whole items, then "..." */
  int even[8] = {0, 2, 4, 6, 8, 10, 12, 14};
  expect_list(even, 8, 12, "0,2,4,6...");
  expect_list(even, 8, 4, "...");
  expect_list(even, 8, 64, "0,2,4,6,8,10,12,14");
  return tu_finish("test_placement");
}
