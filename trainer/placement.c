/* Threads per rank and the start-up placement log (see placement.h). */
#include "trainer/placement.h"

#include <omp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "trainer/base/check.h"
#include "trainer/base/dist.h"
#include "trainer/base/log.h"

/* Ranks of one host (rank 0's view). */
typedef struct {
  const char *host;
  int ranks, first, threads, tmin, tmax;
  int omp_overlap;      /* two ranks with OpenMP binding (OMP_PROC_BIND) share CPUs */
  cpu_set_t cpus;       /* union of its ranks' CPU lists */
  cpu_set_t omp_cpus;   /* union of the CPU lists of its ranks with OpenMP binding */
} host_place;

static int g_threads = 0; /* measured by placement_setup; 0 before */
static cpu_set_t g_cpus;   /* this rank's CPUs (union of its OpenMP threads'), valid when g_threads > 0 */

int placement_threads(void) { return g_threads > 0 ? g_threads : omp_get_max_threads(); }

char *placement_cpu_list(const cpu_set_t *set, char *out, size_t cap) {
  size_t len = 0;
  out[0] = '\0';
  for (int c = 0; c < CPU_SETSIZE; c++) {
    if (!CPU_ISSET(c, set)) continue;
    int e = c;
    while (e + 1 < CPU_SETSIZE && CPU_ISSET(e + 1, set)) e++;
    char r[32];
    const char *sep = len ? "," : "";
    int n = e > c ? snprintf(r, sizeof r, "%s%d-%d", sep, c, e) : snprintf(r, sizeof r, "%s%d", sep, c);
    if (len + (size_t)n + 4 > cap) { /* keep room for "..." and the terminator */
      snprintf(out + len, cap - len, "...");
      return out;
    }
    memcpy(out + len, r, (size_t)n + 1);
    len += (size_t)n;
    c = e;
  }
  return out;
}

/* Runs one parallel region (the pool then exists, as oneDNN will use it) and returns the threads it
 * really got (after omp_set_num_threads, OMP_THREAD_LIMIT, ...); `cpus` = the union of the threads'
 * affinity masks: the process binding (mpirun, srun), narrowed by OpenMP's own binding if any
 * (with OMP_PROC_BIND libgomp pins the main thread to the first place and each worker to its own). */
static int measure_threads(cpu_set_t *cpus) {
  int n = 0, failed = 0;
  CPU_ZERO(cpus);
#pragma omp parallel
  {
    cpu_set_t mine;
    int bad = sched_getaffinity(0, sizeof mine, &mine) != 0; /* 0: this thread */
#pragma omp critical
    {
      if (bad) failed = 1;
      else CPU_OR(cpus, cpus, &mine);
    }
#pragma omp single
    n = omp_get_num_threads();
  }
  if (failed) DIE("sched_getaffinity failed in an OpenMP thread");
  return n;
}

static const char *bind_name(int b) {
  static const char *names[] = {"false", "true", "primary", "close", "spread"};
  return b >= 0 && b < 5 ? names[b] : "?";
}

static const char *plural(int n, const char *one, const char *many) { return n == 1 ? one : many; }

/* "1" or "1-2": the thread counts of a set of ranks. */
static void thread_range(char *out, size_t cap, int tmin, int tmax) {
  if (tmin == tmax) snprintf(out, cap, "%d", tmin);
  else snprintf(out, cap, "%d-%d", tmin, tmax);
}

/* Groups the records by host name (in order of first appearance). Returns the host count. */
static int group_hosts(const placement_rank *all, int world, host_place *hosts) {
  int nh = 0;
  for (int r = 0; r < world; r++) {
    int h = 0;
    while (h < nh && strcmp(hosts[h].host, all[r].host)) h++;
    if (h == nh) {
      memset(&hosts[h], 0, sizeof hosts[h]);
      hosts[h].host = all[r].host;
      hosts[h].first = r;
      hosts[h].tmin = hosts[h].tmax = all[r].threads;
      CPU_ZERO(&hosts[h].cpus);
      CPU_ZERO(&hosts[h].omp_cpus);
      nh++;
    }
    host_place *p = &hosts[h];
    p->ranks++;
    p->threads += all[r].threads;
    if (all[r].bind) {
      cpu_set_t both;
      CPU_AND(&both, &p->omp_cpus, &all[r].cpus);
      if (CPU_COUNT(&both)) p->omp_overlap = 1;
      CPU_OR(&p->omp_cpus, &p->omp_cpus, &all[r].cpus);
    }
    if (all[r].threads < p->tmin) p->tmin = all[r].threads;
    if (all[r].threads > p->tmax) p->tmax = all[r].threads;
    CPU_OR(&p->cpus, &p->cpus, &all[r].cpus);
  }
  return nh;
}

/* Where the thread count comes from, as rank 0 sees it. */
static void thread_source(char *out, size_t cap, int64_t threads, const char *env) {
  if (threads > 0 && env && *env)
    snprintf(out, cap, "train.threads=%lld; OMP_NUM_THREADS=%s overridden", (long long)threads, env);
  else if (threads > 0)
    snprintf(out, cap, "train.threads=%lld", (long long)threads);
  else if (env && *env)
    snprintf(out, cap, "train.threads=0: OMP_NUM_THREADS=%s", env);
  else
    snprintf(out, cap, "train.threads=0, OMP_NUM_THREADS unset: one per CPU of the rank");
}

static void print_ranks(FILE *out, const placement_rank *all, int world) {
  int hw = 4, cw = 4;
  char cpus[256];
  for (int r = 0; r < world; r++) {
    int n = (int)strlen(all[r].host);
    if (n > hw) hw = n;
    n = (int)strlen(placement_cpu_list(&all[r].cpus, cpus, sizeof cpus));
    if (n > cw) cw = n;
  }
  fprintf(out, "  %4s  %-*s  %8s  %-*s  %7s  %s\n", "rank", hw, "host", "pid", cw, "cpus", "threads", "bind");
  for (int r = 0; r < world; r++) {
    char bind[48];
    if (all[r].bind)
      snprintf(bind, sizeof bind, "%s (%d %s)", bind_name(all[r].bind), all[r].places,
               plural(all[r].places, "place", "places"));
    else
      snprintf(bind, sizeof bind, "false");
    fprintf(out, "  %4d  %-*s  %8d  %-*s  %7d  %s\n", all[r].rank, hw, all[r].host, all[r].pid, cw,
            placement_cpu_list(&all[r].cpus, cpus, sizeof cpus), all[r].threads, bind);
  }
}

static void print_hosts(FILE *out, const host_place *hosts, int nh) {
  char cpus[256], thr[32];
  for (int h = 0; h < nh; h++) {
    thread_range(thr, sizeof thr, hosts[h].tmin, hosts[h].tmax);
    fprintf(out, "  host %s: %d %s from rank %d, %s %s each, cpus %s\n", hosts[h].host, hosts[h].ranks,
            plural(hosts[h].ranks, "rank", "ranks"), hosts[h].first, thr, plural(hosts[h].tmax, "thread", "threads"),
            placement_cpu_list(&hosts[h].cpus, cpus, sizeof cpus));
  }
}

/* printf at the end of buf (cap bytes in all); truncates quietly. */
static void append(char *buf, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void append(char *buf, size_t cap, const char *fmt, ...) {
  size_t len = strlen(buf);
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf + len, cap - len, fmt, ap);
  va_end(ap);
}

/* One warning for all oversubscription found (the first host and the first rank, with counts) into
 * msg (""  if none). */
static void oversubscribed(const placement_rank *all, int world, const host_place *hosts, int nh, char *msg,
                           size_t cap) {
  char cpus[256], thr[32];
  msg[0] = '\0';
  int bad_hosts = 0, bad_ranks = 0, omp_pinned = 0;
  for (int h = 0; h < nh; h++) {
    int ncpu = CPU_COUNT(&hosts[h].cpus);
    if (hosts[h].threads <= ncpu) continue;
    if (hosts[h].omp_overlap) omp_pinned = 1;
    if (bad_hosts++) continue;
    thread_range(thr, sizeof thr, hosts[h].tmin, hosts[h].tmax);
    append(msg, cap, "host %s runs %d %s x %s %s = %d threads on %d %s (%s)", hosts[h].host, hosts[h].ranks,
           plural(hosts[h].ranks, "rank", "ranks"), thr, plural(hosts[h].tmax, "thread", "threads"), hosts[h].threads,
           ncpu, plural(ncpu, "CPU", "CPUs"), placement_cpu_list(&hosts[h].cpus, cpus, sizeof cpus));
  }
  if (bad_hosts > 1) append(msg, cap, " (and %d more %s)", bad_hosts - 1, plural(bad_hosts - 1, "host", "hosts"));
  for (int r = 0; r < world; r++) {
    int ncpu = CPU_COUNT(&all[r].cpus);
    if (all[r].threads <= ncpu || bad_ranks++) continue;
    append(msg, cap, "%srank %d runs %d threads on %d %s (%s)", msg[0] ? "; " : "", r, all[r].threads, ncpu,
           plural(ncpu, "CPU", "CPUs"), placement_cpu_list(&all[r].cpus, cpus, sizeof cpus));
  }
  if (bad_ranks > 1) append(msg, cap, " (and %d more %s)", bad_ranks - 1, plural(bad_ranks - 1, "rank", "ranks"));
  if (omp_pinned) /* OpenMP binding without rank binding: every rank pins to the same first places */
    append(msg, cap, "; ranks pinned by OMP_PROC_BIND share CPUs: bind each rank to its own cores "
           "(mpirun --map-by slot:PE=T, srun --cpu-bind=cores) or unset OMP_PROC_BIND");
  if (bad_hosts || bad_ranks) append(msg, cap, "; timings measure function, not speed");
}

int placement_report(FILE *out, const placement_rank *all, int world, int64_t threads, const char *omp_env,
                     int rank_lines, char *warning, size_t cap) {
  host_place *hosts = malloc(sizeof *hosts * (size_t)world);
  CHECK_ALLOC(hosts);
  int nh = group_hosts(all, world, hosts);
  int tmin = all[0].threads, tmax = all[0].threads;
  for (int r = 1; r < world; r++) {
    if (all[r].threads < tmin) tmin = all[r].threads;
    if (all[r].threads > tmax) tmax = all[r].threads;
  }
  char thr[32], src[160];
  thread_range(thr, sizeof thr, tmin, tmax);
  thread_source(src, sizeof src, threads, omp_env);
  fprintf(out, "placement: %d %s x %s %s (%s), %d %s\n", world, plural(world, "rank", "ranks"), thr,
          plural(tmax, "thread", "threads"), src, nh, plural(nh, "host", "hosts"));
  if (world <= rank_lines) print_ranks(out, all, world);
  else print_hosts(out, hosts, nh);
  oversubscribed(all, world, hosts, nh, warning, cap);
  free(hosts);
  return warning[0] != '\0';
}

void placement_setup(int64_t threads) {
  placement_rank me;
  memset(&me, 0, sizeof me);
  if (threads > 0) omp_set_num_threads((int)threads);
  g_threads = measure_threads(&me.cpus);
  g_cpus = me.cpus;
  me.rank = dist_rank();
  me.pid = (int32_t)getpid();
  me.threads = g_threads;
  me.bind = (int32_t)omp_get_proc_bind();
  me.places = omp_get_num_places();
  if (gethostname(me.host, sizeof me.host - 1)) snprintf(me.host, sizeof me.host, "?");

  int world = dist_size();
  placement_rank *all = NULL;
  if (dist_is_root()) {
    all = malloc(sizeof *all * (size_t)world);
    CHECK_ALLOC(all);
  }
  dist_gather_bytes(&me, all, sizeof me);
  if (!dist_is_root()) return;
  char warning[1024];
  int over = placement_report(stdout, all, world, threads, getenv("OMP_NUM_THREADS"), PLACEMENT_RANK_LINES, warning,
                              sizeof warning);
  fflush(stdout);
  for (int r = 0; r < world; r++)
    if (threads > 0 && all[r].threads != threads) {
      log_warn("train.threads=%lld, but rank %d runs %d OpenMP threads (OMP_THREAD_LIMIT? OMP_DYNAMIC?)",
               (long long)threads, r, all[r].threads);
      break;
    }
  if (over) log_warn("oversubscribed: %s (docs/distributed.md, \"Placing ranks and threads\")", warning);
  free(all);
}

const cpu_set_t *placement_cpus(void) { return g_threads > 0 ? &g_cpus : NULL; }
