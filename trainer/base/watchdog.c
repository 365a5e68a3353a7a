/* Stall watchdog: the phase board, the watchdog thread, its questions and answers (see watchdog.h). */
#include "trainer/base/watchdog.h"

#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "trainer/base/check.h"
#include "trainer/base/clock.h"

enum { TAG_PING = 1, TAG_ANSWER = 2 }; /* on the private communicator only */
#define WAIT_SPIN_S 1e-3      /* dist_wait: tests without sleeping this long */
#define WAIT_LONG_S 1.0       /* dist_wait: sleeps up to 1 ms before, 20 ms after this long */

/* The board (written by the trainer's thread, read by the watchdog thread, under mu). */
static struct {
  pthread_mutex_t mu;
  pthread_cond_t cv;
  lv_phase phase;
  long long step;
  double phase_t0;
  const char *what; /* the outermost wait (depth > 0) */
  double wait_t0;
  int depth;
  double timeout_s, slowest_step_s;
  int running, stop;
  pthread_t thread;
  MPI_Comm comm;
  int rank, world;
  watchdog_answer *reply;  /* [world]: the answer in flight to each rank */
  MPI_Request *reply_rq;   /* [world] */
} B = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, LV_PHASE_STARTUP, -1, 0, NULL, 0, 0, 0, 0, 0, 0,
       0, 0, 0, 0, NULL, NULL};

/* LONGVQ_TEST_STOP_AT="PHASE:RANK" (tests only, read once at start): rank RANK stops itself (SIGSTOP)
 * when it enters the phase whose text is PHASE, e.g. "checkpoint at step 10:1": a rank stuck at a
 * known place, which a SIGSTOP from outside cannot aim at. */
static char g_stop_phase[48];
static int g_stop_rank = -1;

static void test_stop_hook(void) {
  if (g_stop_rank != B.rank) return;
  char now[48];
  watchdog_phase_text(now, sizeof now, B.phase, B.step);
  if (!strcmp(now, g_stop_phase)) raise(SIGSTOP);
}

double watchdog_limit_s(double timeout_s, int in_step, double slowest_step_s) {
  if (timeout_s < 0) return 0;
  if (timeout_s > 0) return timeout_s;
  double floor = in_step ? WATCHDOG_STEP_FLOOR_S : WATCHDOG_OTHER_FLOOR_S;
  double scaled = WATCHDOG_STEP_FACTOR * slowest_step_s;
  return scaled > floor ? scaled : floor;
}

void watchdog_phase_text(char *buf, size_t cap, lv_phase phase, long long step) {
  static const char *const name[] = {"start-up", "step", "evaluation", "checkpoint", "end of run"};
  static const char *const join[] = {"", " ", " after step ", " at step ", ""};
  if (step < 0 || phase == LV_PHASE_STARTUP || phase == LV_PHASE_END)
    snprintf(buf, cap, "%s", name[phase]);
  else
    snprintf(buf, cap, "%s%s%lld", name[phase], join[phase], step);
}

/* Appends to buf[cap] at *len (snprintf semantics: never past cap). */
static void add(char *buf, size_t cap, size_t *len, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static void add(char *buf, size_t cap, size_t *len, const char *fmt, ...) {
  if (*len >= cap) return;
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(buf + *len, cap - *len, fmt, ap);
  va_end(ap);
  if (n > 0) *len += (size_t)n < cap - *len ? (size_t)n : cap - *len - 1;
}

char *watchdog_rank_list(char *buf, size_t cap, const int *ranks, int n) {
  size_t len = 0;
  buf[0] = '\0';
  add(buf, cap, &len, "%s", n == 1 ? "rank " : "ranks ");
  for (int i = 0; i < n;) {
    int j = i; /* ranks[i..j] consecutive */
    while (j + 1 < n && ranks[j + 1] == ranks[j] + 1) j++;
    if (len + 48 > cap) { /* keep room for the count of what is left */
      add(buf, cap, &len, " and %d more", n - i);
      break;
    }
    if (j == i) add(buf, cap, &len, "%s%d", i ? ", " : "", ranks[i]);
    else add(buf, cap, &len, "%s%d-%d", i ? ", " : "", ranks[i], ranks[j]);
    i = j + 1;
  }
  return buf;
}

static int same_wait(const watchdog_answer *a, const char *phase, const char *what) {
  return a->answered && a->waiting && !strcmp(a->phase, phase) && !strcmp(a->what, what);
}

void watchdog_describe(char *buf, size_t cap, int me, const char *phase, const char *what, double waited_s,
                       const watchdog_answer *ans, int world) {
  int *silent = malloc(sizeof(int) * (size_t)world), *arrived = malloc(sizeof(int) * (size_t)world);
  CHECK_ALLOC(silent);
  CHECK_ALLOC(arrived);
  int n_silent = 0, n_arrived = 0, n_elsewhere = 0;
  for (int r = 0; r < world; r++) {
    if (r == me || same_wait(&ans[r], phase, what)) arrived[n_arrived++] = r;
    else if (!ans[r].answered) silent[n_silent++] = r;
    else n_elsewhere++;
  }
  size_t len = 0;
  char list[512];
  buf[0] = '\0';
  add(buf, cap, &len, "%s: %s has not completed after %.0f s:", phase, what, waited_s);
  if (n_silent)
    add(buf, cap, &len, " %s did not arrive (no answer within %.0f s: stopped, hung or dead);",
        watchdog_rank_list(list, sizeof list, silent, n_silent), WATCHDOG_ANSWER_S);
  int shown = 0;
  for (int r = 0; r < world && shown < 8; r++) {
    const watchdog_answer *a = &ans[r];
    if (r == me || !a->answered || same_wait(a, phase, what)) continue;
    shown++;
    if (a->waiting)
      add(buf, cap, &len, " rank %d did not arrive: it waits in %s: %s for %.0f s;", r, a->phase, a->what, a->wait_s);
    else
      add(buf, cap, &len, " rank %d did not arrive: it is in %s for %.0f s (computing or blocked in I/O);", r,
          a->phase, a->phase_s);
  }
  if (n_elsewhere > shown) add(buf, cap, &len, " and %d more ranks elsewhere;", n_elsewhere - shown);
  if (!n_silent && !n_elsewhere)
    add(buf, cap, &len, " every rank arrived and waits: the collective itself is stuck (network or MPI);");
  else
    add(buf, cap, &len, " %s arrived and wait%s", watchdog_rank_list(list, sizeof list, arrived, n_arrived), n_arrived == 1 ? "s" : "");
  if (len > 0 && buf[len - 1] == ';') buf[len - 1] = '\0';
  free(silent);
  free(arrived);
}

/* This rank's answer, now (under mu). */
static void snapshot_locked(watchdog_answer *a) {
  double now = lv_now_s();
  memset(a, 0, sizeof *a);
  a->answered = 1;
  a->waiting = B.depth > 0;
  a->phase_s = now - B.phase_t0;
  a->wait_s = a->waiting ? now - B.wait_t0 : 0;
  watchdog_phase_text(a->phase, sizeof a->phase, B.phase, B.step);
  if (a->waiting) snprintf(a->what, sizeof a->what, "%s", B.what);
}

static void snapshot(watchdog_answer *a) {
  pthread_mutex_lock(&B.mu);
  snapshot_locked(a);
  pthread_mutex_unlock(&B.mu);
}

/* Answers every question that has arrived (watchdog thread). */
static void serve_pings(void) {
  for (;;) {
    int flag = 0, ping = 0;
    MPI_Status st;
    CHECK_MPI(MPI_Iprobe(MPI_ANY_SOURCE, TAG_PING, B.comm, &flag, &st));
    if (!flag) return;
    int p = st.MPI_SOURCE;
    CHECK_MPI(MPI_Recv(&ping, 1, MPI_INT, p, TAG_PING, B.comm, MPI_STATUS_IGNORE));
    int done = 1;
    if (B.reply_rq[p] != MPI_REQUEST_NULL) CHECK_MPI(MPI_Test(&B.reply_rq[p], &done, MPI_STATUS_IGNORE));
    if (!done) continue; /* the previous answer to p is still in flight: it has one */
    snapshot(&B.reply[p]);
    CHECK_MPI(MPI_Isend(&B.reply[p], (int)sizeof B.reply[p], MPI_BYTE, p, TAG_ANSWER, B.comm, &B.reply_rq[p]));
  }
}

static void sleep_s(double s) {
  struct timespec ts = {(time_t)s, (long)((s - (double)(time_t)s) * 1e9)};
  nanosleep(&ts, NULL);
}

/* This rank waited `waited_s` > `limit_s`: ask every other rank where it is, say who did not arrive,
 * end the job. The other ranks' watchdogs answer, also while they diagnose themselves. */
_Noreturn static void diagnose(double limit_s) {
  watchdog_answer mine;
  snapshot(&mine);
  int W = B.world, me = B.rank, ping = 1;
  watchdog_answer *ans = calloc((size_t)W, sizeof *ans), *buf = calloc((size_t)W, sizeof *buf);
  MPI_Request *rq = malloc(sizeof(MPI_Request) * (size_t)W), *sq = malloc(sizeof(MPI_Request) * (size_t)W);
  CHECK_ALLOC(ans);
  CHECK_ALLOC(buf);
  CHECK_ALLOC(rq);
  CHECK_ALLOC(sq);
  for (int p = 0; p < W; p++) {
    rq[p] = sq[p] = MPI_REQUEST_NULL;
    if (p == me) continue;
    CHECK_MPI(MPI_Irecv(&buf[p], (int)sizeof buf[p], MPI_BYTE, p, TAG_ANSWER, B.comm, &rq[p]));
    CHECK_MPI(MPI_Isend(&ping, 1, MPI_INT, p, TAG_PING, B.comm, &sq[p]));
  }
  int left = W - 1;
  for (double end = lv_now_s() + WATCHDOG_ANSWER_S; left > 0 && lv_now_s() < end;) {
    for (int p = 0; p < W; p++) {
      int done = 0;
      if (rq[p] == MPI_REQUEST_NULL) continue;
      CHECK_MPI(MPI_Test(&rq[p], &done, MPI_STATUS_IGNORE));
      if (done) { /* only a completed receive is read */
        ans[p] = buf[p];
        left--;
      }
    }
    serve_pings();
    sleep_s(0.02);
  }
  char line[2048];
  watchdog_describe(line, sizeof line, me, mine.phase, mine.what, mine.wait_s, ans, W);
  DIE("%s (the limit is %.0f s: dist.timeout_s; ending the job)", line, limit_s);
}

static void *watchdog_main(void *arg) {
  (void)arg;
  pthread_mutex_lock(&B.mu);
  while (!B.stop) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_nsec += (long)(WATCHDOG_PERIOD_S * 1e9);
    ts.tv_sec += ts.tv_nsec / 1000000000L;
    ts.tv_nsec %= 1000000000L;
    pthread_cond_timedwait(&B.cv, &B.mu, &ts);
    if (B.stop) break;
    double limit = B.depth ? watchdog_limit_s(B.timeout_s, B.phase == LV_PHASE_STEP, B.slowest_step_s) : 0;
    double waited = B.depth ? lv_now_s() - B.wait_t0 : 0;
    pthread_mutex_unlock(&B.mu);
    serve_pings();
    if (limit > 0 && waited > limit) diagnose(limit);
    pthread_mutex_lock(&B.mu);
  }
  pthread_mutex_unlock(&B.mu);
  return NULL;
}

void watchdog_start(void) {
  CHECK_MPI(MPI_Comm_dup(MPI_COMM_WORLD, &B.comm)); /* inherits MPI_ERRORS_RETURN */
  CHECK_MPI(MPI_Comm_rank(B.comm, &B.rank));
  CHECK_MPI(MPI_Comm_size(B.comm, &B.world));
  B.reply = calloc((size_t)B.world, sizeof *B.reply);
  B.reply_rq = malloc(sizeof(MPI_Request) * (size_t)B.world);
  CHECK_ALLOC(B.reply);
  CHECK_ALLOC(B.reply_rq);
  for (int p = 0; p < B.world; p++) B.reply_rq[p] = MPI_REQUEST_NULL;
  pthread_condattr_t ca; /* timed waits on the monotonic clock: immune to clock steps */
  pthread_condattr_init(&ca);
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
  pthread_cond_destroy(&B.cv);
  pthread_cond_init(&B.cv, &ca);
  pthread_condattr_destroy(&ca);
  B.phase_t0 = lv_now_s();
  B.stop = 0;
  const char *t = getenv("LONGVQ_TEST_STOP_AT"), *colon = t ? strrchr(t, ':') : NULL;
  if (colon && (size_t)(colon - t) < sizeof g_stop_phase) {
    snprintf(g_stop_phase, sizeof g_stop_phase, "%.*s", (int)(colon - t), t);
    g_stop_rank = atoi(colon + 1);
  }
  if (pthread_create(&B.thread, NULL, watchdog_main, NULL) != 0) DIE("cannot start the watchdog thread");
  pthread_setname_np(B.thread, "lv-watchdog"); /* named: tests/placement.sh and top -H tell it apart */
  B.running = 1;
}

void watchdog_stop(void) {
  if (!B.running) return;
  pthread_mutex_lock(&B.mu);
  B.stop = 1;
  pthread_cond_broadcast(&B.cv);
  pthread_mutex_unlock(&B.mu);
  pthread_join(B.thread, NULL);
  B.running = 0;
  for (int p = 0; p < B.world; p++)
    if (B.reply_rq[p] != MPI_REQUEST_NULL) CHECK_MPI(MPI_Wait(&B.reply_rq[p], MPI_STATUS_IGNORE));
  CHECK_MPI(MPI_Comm_free(&B.comm));
  free(B.reply);
  free(B.reply_rq);
  B.reply = NULL;
  B.reply_rq = NULL;
}

void watchdog_set_timeout(double timeout_s) {
  pthread_mutex_lock(&B.mu);
  B.timeout_s = timeout_s;
  pthread_mutex_unlock(&B.mu);
}

void watchdog_phase(lv_phase phase, long long step) {
  pthread_mutex_lock(&B.mu);
  B.phase = phase;
  B.step = step;
  B.phase_t0 = lv_now_s();
  pthread_mutex_unlock(&B.mu);
  if (g_stop_rank >= 0) test_stop_hook();
}

void watchdog_note_step(double seconds) {
  pthread_mutex_lock(&B.mu);
  if (seconds > B.slowest_step_s) B.slowest_step_s = seconds;
  pthread_mutex_unlock(&B.mu);
}

void watchdog_wait_begin(const char *what) {
  double now = lv_now_s();
  pthread_mutex_lock(&B.mu);
  if (B.depth++ == 0) {
    B.what = what;
    B.wait_t0 = now;
  }
  pthread_mutex_unlock(&B.mu);
}

void watchdog_wait_end(void) {
  pthread_mutex_lock(&B.mu);
  if (B.depth > 0) B.depth--;
  pthread_mutex_unlock(&B.mu);
}

void dist_arrive(const char *what) {
  if (what) watchdog_wait_begin(what);
  MPI_Request rq;
  CHECK_MPI(MPI_Ibarrier(MPI_COMM_WORLD, &rq));
  dist_wait(&rq, NULL);
}

/* Completes rq: MPI_Test without sleeping for spin_s, then sleeps of an eighth of the time waited
 * so far (a wait that ends mid-sleep overshoots by at most 12.5%), at most 1 ms while the wait is
 * shorter than WAIT_LONG_S, then at most 20 ms (a straggler or a stuck rank: ~50 tests a second cost
 * nothing, and a thread that wakes each millisecond is runnable most of the time on a loaded node). */
static void wait_request(MPI_Request *rq, double spin_s) {
  int done = 0;
  double t0 = lv_now_s(), el = 0;
  while (!done && (el = lv_now_s() - t0) < spin_s) CHECK_MPI(MPI_Test(rq, &done, MPI_STATUS_IGNORE));
  while (!done) {
    double cap = el < WAIT_LONG_S ? 1e-3 : 20e-3, s = el / 8 > cap ? cap : el / 8;
    struct timespec ts = {0, (long)(s * 1e9)};
    nanosleep(&ts, NULL);
    CHECK_MPI(MPI_Test(rq, &done, MPI_STATUS_IGNORE));
    el = lv_now_s() - t0;
  }
}

void dist_wait(MPI_Request *rq, const char *what) {
  int done = 0;
  CHECK_MPI(MPI_Test(rq, &done, MPI_STATUS_IGNORE));
  if (done) return;
  if (what) watchdog_wait_begin(what);
  /* Spin 1 ms first: most waits of a healthy step are shorter, and a sleep would add its length to
   * each (measured: 2x the step time of a communication-bound tiny model with sleeps from the
   * start). */
  wait_request(rq, WAIT_SPIN_S);
  if (what) watchdog_wait_end();
}
