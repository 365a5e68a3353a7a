#include "trainer/signals.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static volatile sig_atomic_t g_signal = 0;

static void on_signal(int sig) {
  if (sig == SIGINT && g_signal) { /* the second Ctrl-C: the default action, now (async-signal-safe) */
    struct sigaction dfl = {.sa_handler = SIG_DFL};
    sigemptyset(&dfl.sa_mask);
    sigaction(SIGINT, &dfl, NULL);
    raise(SIGINT); /* delivered when this handler returns (SIGINT is blocked while it runs) */
    return;
  }
  if (!g_signal) g_signal = sig;
}

/* LONGVQ_TEST_SIGNAL_AT, read once at install (not on every step): -1 = unset. */
static long long g_test_step = -1;
static int g_test_rank = -1;

void lv_signals_install(void) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGUSR1, &sa, NULL);
  sigaction(SIGINT, &sa, NULL);
  const char *v = getenv("LONGVQ_TEST_SIGNAL_AT");
  if (!v || sscanf(v, "%lld:%d", &g_test_step, &g_test_rank) != 2) g_test_step = -1;
}

int lv_signal_pending(void) { return g_signal != 0; }
int lv_signal_number(void) { return (int)g_signal; }

void lv_signal_test_hook(long long step, int rank) {
  if (step == g_test_step && rank == g_test_rank) raise(SIGUSR1);
}
