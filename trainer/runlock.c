/* The run directory's lock: the protocol is in runlock.h. Everything here runs on rank 0 except
 * the agreement in runlock_acquire. */
#include "trainer/runlock.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "io/config.h"
#include "trainer/base/check.h"
#include "trainer/base/clock.h"
#include "trainer/base/dist.h"
#include "trainer/base/log.h"

#define REC_MAX 2048
#define TAKEOVER_STALE_S 30.0 /* a takeover mutex older than this was left by a taker that died */

/* One lock record as parsed; "" or 0 where the record lacks a field. */
typedef struct {
  char host[256], job[64], array[64], boot_id[64], pid_ns[64];
  long long pid, restart, proc_start;
  double started, heartbeat; /* wall-clock seconds */
  int complete;              /* host, pid and heartbeat were present */
} lock_rec;

/* Judgements of a lock found in place. */
enum { HELD, ALIVE, GONE, REQUEUED, STALE };

static struct {
  char path[LV_PATH_MAX], mutex_path[LV_PATH_MAX];
  int fd;             /* the lock file, open for the heartbeat's writes */
  lock_rec me;
  char text[REC_MAX]; /* the record as last written */
  size_t len;
  double interval_s;
  pthread_t thread;
  pthread_mutex_t mu; /* stop, lost, text, and the file's writes */
  pthread_cond_t cv;
  int held, stop, lost, thread_started, warned;
} g = {.fd = -1, .mu = PTHREAD_MUTEX_INITIALIZER};

static double wall_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void utc(char *out, size_t cap, double t) {
  time_t s = (time_t)t;
  struct tm tm;
  strftime(out, cap, "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&s, &tm));
}

/* The first word of `src` into out ("" for none or "-"): record values never hold blanks. */
static void word(char *out, size_t cap, const char *src) {
  size_t n = src ? strspn(src, " \t") : 0, k = 0;
  if (src)
    for (src += n; src[k] && k + 1 < cap && (unsigned char)src[k] > ' '; k++) out[k] = src[k];
  out[k] = 0;
  if (!strcmp(out, "-")) out[0] = 0;
}

/* Start time of process pid (clock ticks after boot, field 22 of /proc/<pid>/stat); -1 if there is
 * no such process or it is a zombie, -2 if that cannot be told (no /proc, no permission). */
static long long proc_start(long long pid) {
  char path[64], buf[1024];
  snprintf(path, sizeof path, "/proc/%lld/stat", pid);
  FILE *f = fopen(path, "r");
  if (!f) return errno == ENOENT ? -1 : -2;
  size_t n = fread(buf, 1, sizeof buf - 1, f);
  fclose(f);
  buf[n] = 0;
  char *p = strrchr(buf, ')'); /* the command name (field 2) may hold spaces and parentheses */
  if (!p || p[1] != ' ') return -2;
  if (p[2] == 'Z' || p[2] == 'X') return -1;
  for (int field = 3; field <= 22 && p; field++) p = strchr(p + 1, ' ');
  return p ? strtoll(p + 1, NULL, 10) : -2;
}

static void fill_self(lock_rec *r) {
  memset(r, 0, sizeof *r);
  if (gethostname(r->host, sizeof r->host - 1) != 0) snprintf(r->host, sizeof r->host, "unknown");
  word(r->host, sizeof r->host, r->host);
  r->pid = (long long)getpid();
  word(r->job, sizeof r->job, getenv("SLURM_JOB_ID"));
  const char *aj = getenv("SLURM_ARRAY_JOB_ID"), *at = getenv("SLURM_ARRAY_TASK_ID");
  if (aj && at && aj[0] && at[0]) {
    char a[sizeof r->array];
    snprintf(a, sizeof a, "%.30s_%.30s", aj, at);
    word(r->array, sizeof r->array, a);
  }
  const char *rc = getenv("SLURM_RESTART_COUNT");
  r->restart = rc ? strtoll(rc, NULL, 10) : 0;
  r->started = r->heartbeat = wall_s();
  FILE *f = fopen("/proc/sys/kernel/random/boot_id", "r");
  char line[128] = "";
  if (f) {
    if (!fgets(line, sizeof line, f)) line[0] = 0;
    fclose(f);
  }
  word(r->boot_id, sizeof r->boot_id, line);
  ssize_t n = readlink("/proc/self/ns/pid", line, sizeof line - 1);
  line[n > 0 ? n : 0] = 0;
  word(r->pid_ns, sizeof r->pid_ns, line);
  r->proc_start = proc_start(r->pid);
  if (r->proc_start < 0) r->proc_start = 0;
  r->complete = 1;
}

/* The record's text: the same length for every heartbeat (fixed-width fields). */
static size_t format_rec(char *out, size_t cap, const lock_rec *r) {
  char st[32], hb[32];
  utc(st, sizeof st, r->started);
  utc(hb, sizeof hb, r->heartbeat);
  int n = snprintf(out, cap,
                   "longvq run lock: one training per run.dir (docs/slurm.md, \"One run per run directory\")\n"
                   "host: %s\npid: %lld\nslurm_job: %s\nslurm_array: %s\nslurm_restart: %lld\n"
                   "started: %.3f %s\nheartbeat: %14.3f %s\nboot_id: %s\npid_ns: %s\nproc_start: %lld\n",
                   r->host, r->pid, r->job[0] ? r->job : "-", r->array[0] ? r->array : "-", r->restart,
                   r->started, st, r->heartbeat, hb, r->boot_id[0] ? r->boot_id : "-",
                   r->pid_ns[0] ? r->pid_ns : "-", r->proc_start);
  return n < 0 ? 0 : (size_t)n < cap ? (size_t)n : cap - 1;
}

static void parse_rec(const char *text, lock_rec *r) {
  memset(r, 0, sizeof *r);
  int have = 0;
  for (const char *line = text; *line;) {
    size_t n = strcspn(line, "\n");
    char buf[512];
    snprintf(buf, sizeof buf, "%.*s", (int)(n < sizeof buf ? n : sizeof buf - 1), line);
    line += n + (line[n] == '\n');
    char *v = strchr(buf, ':');
    if (!v) continue;
    *v++ = 0;
    if (!strcmp(buf, "host")) word(r->host, sizeof r->host, v), have |= r->host[0] ? 1 : 0;
    else if (!strcmp(buf, "pid")) r->pid = strtoll(v, NULL, 10), have |= r->pid > 0 ? 2 : 0;
    else if (!strcmp(buf, "heartbeat")) r->heartbeat = strtod(v, NULL), have |= r->heartbeat > 0 ? 4 : 0;
    else if (!strcmp(buf, "started")) r->started = strtod(v, NULL);
    else if (!strcmp(buf, "slurm_job")) word(r->job, sizeof r->job, v);
    else if (!strcmp(buf, "slurm_array")) word(r->array, sizeof r->array, v);
    else if (!strcmp(buf, "slurm_restart")) r->restart = strtoll(v, NULL, 10);
    else if (!strcmp(buf, "boot_id")) word(r->boot_id, sizeof r->boot_id, v);
    else if (!strcmp(buf, "pid_ns")) word(r->pid_ns, sizeof r->pid_ns, v);
    else if (!strcmp(buf, "proc_start")) r->proc_start = strtoll(v, NULL, 10);
  }
  r->complete = have == 7;
}

/* The lock file's bytes (NUL-terminated) and its mtime: 0, or -1 with errno (ENOENT: no lock). */
static int read_lock(char *buf, size_t cap, double *mtime) {
  int fd = open(g.path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  struct stat st;
  size_t n = 0;
  ssize_t r = 0;
  if (fstat(fd, &st) == 0) *mtime = (double)st.st_mtim.tv_sec + 1e-9 * (double)st.st_mtim.tv_nsec;
  while (n + 1 < cap && (r = read(fd, buf + n, cap - 1 - n)) > 0) n += (size_t)r;
  int e = errno;
  close(fd);
  buf[n] = 0;
  errno = e;
  return r < 0 ? -1 : 0;
}

/* What the lock found in place is (see runlock.h); age: seconds since its heartbeat. */
static int judge(const lock_rec *h, double age, double stale_s) {
  const lock_rec *me = &g.me;
  if (h->complete && !strcmp(h->host, me->host) && h->boot_id[0] && !strcmp(h->boot_id, me->boot_id) &&
      h->pid_ns[0] && !strcmp(h->pid_ns, me->pid_ns) && h->proc_start > 0) {
    long long st = proc_start(h->pid);
    if (st == h->proc_start) return ALIVE;
    if (st != -2) return GONE; /* no such process, a zombie, or the pid was reused */
  }
  if (h->complete && h->job[0] && !strcmp(h->job, me->job) && h->restart < me->restart) return REQUEUED;
  return age > stale_s ? STALE : HELD;
}

/* "host H, pid P (Slurm job J, array task A), started T, last heartbeat N s ago" */
static void describe(char *out, size_t cap, const lock_rec *h, double age) {
  if (!h->complete) {
    snprintf(out, cap, "an unreadable lock record, last written %.0f s ago", age);
    return;
  }
  char slurm[256] = "", st[32] = "?";
  if (h->job[0])
    snprintf(slurm, sizeof slurm, " (Slurm job %s%s%s, restart %lld)", h->job, h->array[0] ? ", array task " : "",
             h->array, h->restart);
  if (h->started > 0) utc(st, sizeof st, h->started);
  snprintf(out, cap, "host %s, pid %lld%s, started %s, last heartbeat %.0f s ago", h->host, h->pid, slurm, st, age);
}

/* mkdir -p: 0, or -1 with errno. */
static int make_dirs(const char *dir) {
  char buf[LV_PATH_MAX];
  snprintf(buf, sizeof buf, "%s", dir);
  for (char *p = buf + 1; *p; p++)
    if (*p == '/') {
      *p = 0;
      mkdir(buf, 0777);
      *p = '/';
    }
  return mkdir(buf, 0777) != 0 && errno != EEXIST ? -1 : 0;
}

static void sleep_s(double s) {
  struct timespec ts = {(time_t)s, (long)((s - (double)(time_t)s) * 1e9)};
  nanosleep(&ts, NULL);
}

/* The takeover mutex: 1 once taken; 0 if another taker keeps it for 5 s. */
static int take_mutex(void) {
  double t0 = lv_now_s();
  for (;;) {
    int fd = open(g.mutex_path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd >= 0) {
      dprintf(fd, "host: %s\npid: %lld\n", g.me.host, g.me.pid);
      close(fd);
      return 1;
    }
    if (errno != EEXIST) return 0;
    struct stat st;
    if (stat(g.mutex_path, &st) == 0 && wall_s() - (double)st.st_mtim.tv_sec > TAKEOVER_STALE_S) {
      log_warn("removing %s, left by a run that died while taking over the lock", g.mutex_path);
      unlink(g.mutex_path);
      continue;
    }
    if (lv_now_s() - t0 > 5.0) return 0;
    sleep_s(0.02);
  }
}

/* Writes the record with a fresh heartbeat over the old one; 0 or -1 with errno. Caller holds g.mu
 * (or runs before the heartbeat thread exists). */
static int write_rec(void) {
  g.me.heartbeat = wall_s();
  g.len = format_rec(g.text, sizeof g.text, &g.me);
  if (pwrite(g.fd, g.text, g.len, 0) != (ssize_t)g.len) return -1;
  return fsync(g.fd);
}

/* The reason a step failed, into msg (messages name paths of any length: cut, never overflowed). */
__attribute__((format(printf, 3, 4))) static int say(char *msg, size_t cap, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, cap, fmt, ap);
  va_end(ap);
  return 1;
}

/* Rank 0: takes the lock: 0, or 1 with the reason in msg. */
static int take(const char *dir, double stale_s, char *msg, size_t cap) {
  static const char *const how[] = {
      [GONE] = "its process no longer exists (it ran on this host)",
      [REQUEUED] = "it was left by an earlier run of this Slurm job, now requeued",
      [STALE] = "its heartbeat is older than run.lock_stale_s",
  };
  snprintf(g.path, sizeof g.path, "%s/.lock", dir);
  snprintf(g.mutex_path, sizeof g.mutex_path, "%s/.lock.takeover", dir);
  if (make_dirs(dir)) return say(msg, cap, "run.dir: cannot create %s: %s", dir, strerror(errno));
  fill_self(&g.me);
  for (int attempt = 0; attempt < 8; attempt++) {
    int fd = open(g.path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd >= 0) {
      g.fd = fd;
      if (write_rec() == 0) return 0;
      say(msg, cap, "run.dir: cannot write the lock file %s: %s", g.path, strerror(errno));
      close(fd);
      return unlink(g.path), 1;
    }
    if (errno != EEXIST) return say(msg, cap, "run.dir: cannot create the lock file %s: %s", g.path, strerror(errno));
    char seen[REC_MAX], again[REC_MAX];
    double mtime = 0, mtime2 = 0;
    if (read_lock(seen, sizeof seen, &mtime) != 0) {
      if (errno == ENOENT) continue; /* released meanwhile */
      return say(msg, cap, "run.dir: cannot read the lock file %s: %s", g.path, strerror(errno));
    }
    lock_rec h;
    parse_rec(seen, &h);
    double age = wall_s() - (h.complete ? h.heartbeat : mtime);
    int verdict = judge(&h, age, stale_s);
    char who[768];
    describe(who, sizeof who, &h, age);
    if (verdict == HELD || verdict == ALIVE)
      return say(msg, cap,
                 "run.dir: %s is in use by another training run: %s%s (lock file %s). Use another run.dir, or "
                 "wait for that run to end: a lock is taken over once its holder is gone (at once if it ran on "
                 "this host or was this Slurm job's earlier run, else %g s after its last heartbeat: "
                 "run.lock_stale_s)",
                 dir, who, verdict == ALIVE ? "; that process is running on this host" : "", g.path, stale_s);
    if (!take_mutex())
      return say(msg, cap, "run.dir: another run is taking over the lock %s of %s right now (%s)", g.path, who,
                 g.mutex_path);
    /* Only the record judged goes: a holder that refreshed it meanwhile, or a run that took it over
     * first, is judged again. */
    int same = read_lock(again, sizeof again, &mtime2) == 0 && !strcmp(again, seen);
    int failed = same && unlink(g.path) != 0 && errno != ENOENT ? errno : 0;
    unlink(g.mutex_path);
    if (failed) return say(msg, cap, "run.dir: cannot remove the abandoned lock %s of %s: %s", g.path, who, strerror(failed));
    if (same) {
      char limit[64] = "";
      if (verdict == STALE) snprintf(limit, sizeof limit, " (%g s)", stale_s);
      log_warn("run.dir: took over the lock %s of %s: %s%s", g.path, who, how[verdict], limit);
    }
  }
  return say(msg, cap, "run.dir: could not take the lock %s: other runs keep taking it at the same time", g.path);
}

/* The heartbeat, with g.mu held: 0, or 1 when the file no longer holds our record (msg says whose). */
static int refresh(char *msg, size_t cap) {
  char now[REC_MAX] = "", who[768] = "no run (the file was removed)";
  double mtime = 0;
  int r = read_lock(now, sizeof now, &mtime);
  if (r != 0 && errno != ENOENT) {
    if (!g.warned++) log_warn("run.dir: cannot read the lock file %s: %s (heartbeat goes on)", g.path, strerror(errno));
  } else if (r != 0 || strcmp(now, g.text)) {
    lock_rec h;
    parse_rec(now, &h);
    if (r == 0) describe(who, sizeof who, &h, wall_s() - (h.complete ? h.heartbeat : mtime));
    return say(msg, cap,
               "run.dir: lost the lock %s, which now names %s: another run judged this one gone (no heartbeat "
               "for run.lock_stale_s: was this job suspended or cut off?) and took over; stopping so that two "
               "runs do not write one run.dir", g.path, who);
  }
  if (write_rec() != 0 && !g.warned++)
    log_warn("run.dir: cannot refresh the heartbeat of %s: %s (another run may take the lock over after "
             "run.lock_stale_s)", g.path, strerror(errno));
  return 0;
}

static void *heartbeat_thread(void *arg) {
  (void)arg;
  char msg[1536];
  pthread_mutex_lock(&g.mu);
  while (!g.stop) {
    struct timespec until;
    clock_gettime(CLOCK_MONOTONIC, &until);
    double t = (double)until.tv_nsec * 1e-9 + g.interval_s;
    until.tv_sec += (time_t)t;
    until.tv_nsec = (long)((t - (double)(time_t)t) * 1e9);
    while (!g.stop && pthread_cond_timedwait(&g.cv, &g.mu, &until) != ETIMEDOUT) {}
    if (g.stop) break;
    if (refresh(msg, sizeof msg)) {
      g.lost = 1;
      pthread_mutex_unlock(&g.mu);
      DIE("%s", msg);
    }
  }
  pthread_mutex_unlock(&g.mu);
  return NULL;
}

static void start_heartbeat(double stale_s) {
  g.interval_s = stale_s / 4 < 60 ? stale_s / 4 : 60;
  pthread_condattr_t ca;
  pthread_condattr_init(&ca);
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
  pthread_cond_init(&g.cv, &ca);
  pthread_condattr_destroy(&ca);
  sigset_t all, old; /* signals (USR1, TERM) go to the other threads: the trainer's flag */
  sigfillset(&all);
  pthread_sigmask(SIG_BLOCK, &all, &old);
  int e = pthread_create(&g.thread, NULL, heartbeat_thread, NULL);
  if (e == 0) pthread_setname_np(g.thread, "lv-runlock"); /* named: tests and ps tell it from OpenMP's */
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  if (e) DIE("run.dir: cannot start the lock's heartbeat thread: %s", strerror(e));
  g.thread_started = 1;
}

void runlock_acquire(const char *run_dir, double stale_s) {
  struct {
    int bad;
    char msg[1536];
  } out;
  memset(&out, 0, sizeof out);
  if (dist_is_root()) out.bad = take(run_dir, stale_s, out.msg, sizeof out.msg);
  dist_bcast_from(&out, sizeof out, 0); /* every rank leaves with rank 0's verdict */
  if (out.bad) DIE_INPUT_ALL("%s", out.msg);
  if (!dist_is_root()) return;
  g.held = 1;
  atexit(runlock_release);
  lv_on_abort(runlock_release);
  start_heartbeat(stale_s);
}

void runlock_release(void) {
  if (!g.held) return;
  /* The heartbeat holds g.mu only around its write: 2 s without it means a write stuck in the file
   * system; then the lock stays (for the stale rules) rather than this exit hanging. */
  int locked = 0;
  for (int i = 0; i < 200 && !(locked = pthread_mutex_trylock(&g.mu) == 0); i++) sleep_s(0.01);
  if (!locked) {
    log_warn("run.dir: could not remove the lock %s (its heartbeat write is stuck)", g.path);
    return;
  }
  g.held = 0;
  g.stop = 1;
  if (g.thread_started) pthread_cond_signal(&g.cv);
  pthread_mutex_unlock(&g.mu);
  if (g.thread_started && !pthread_equal(pthread_self(), g.thread)) pthread_join(g.thread, NULL);
  char now[REC_MAX];
  double mtime;
  if (!g.lost && read_lock(now, sizeof now, &mtime) == 0 && !strcmp(now, g.text)) unlink(g.path);
  close(g.fd);
  g.fd = -1;
}
