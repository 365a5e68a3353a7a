#include "trainer/base/log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "trainer/base/check.h"
#include "trainer/base/dist.h"

/* The log is part of what a run leaves: a write that fails (a full disk under the job's output
 * file) stops the run with a message on stderr instead of losing lines silently. */
static void flush_stdout(void) {
  if (ferror(stdout) || fflush(stdout) != 0) DIE("writing the log to stdout failed: %s", strerror(errno));
}

void log_info(const char *fmt, ...) {
  if (dist_rank() != 0) return;
  va_list ap;
  va_start(ap, fmt);
  vfprintf(stdout, fmt, ap);
  va_end(ap);
  fputc('\n', stdout);
  flush_stdout();
}

static void log_ranked(const char *kind, const char *fmt, va_list ap) {
  char buf[2048];
  vsnprintf(buf, sizeof buf, fmt, ap);
  fprintf(stderr, "[rank %d] %s: %s\n", dist_rank(), kind, buf);
  fflush(stderr);
}

void log_warn(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  log_ranked("warning", fmt, ap);
  va_end(ap);
}

void log_error(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  log_ranked("error", fmt, ap);
  va_end(ap);
}

/* Launchers that hand their ranks a pseudo-terminal of their own (Open MPI's mpirun and its daemon). */
static int parent_is_mpi_launcher(pid_t ppid) {
  static const char *const names[] = {"mpirun", "mpiexec", "orterun", "orted", "prterun", "prted"};
  char path[64], comm[64] = "";
  snprintf(path, sizeof path, "/proc/%d/comm", (int)ppid);
  FILE *f = fopen(path, "r");
  if (!f) return 0;
  if (!fgets(comm, sizeof comm, f)) comm[0] = 0;
  fclose(f);
  comm[strcspn(comm, "\n")] = 0;
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
    if (!strcmp(comm, names[i])) return 1;
  return 0;
}

/* The launcher's stdout is a terminal device (a pty or a console), not a file, pipe or /dev/null. */
static int parent_stdout_is_terminal(pid_t ppid) {
  char path[64], target[256];
  snprintf(path, sizeof path, "/proc/%d/fd/1", (int)ppid);
  ssize_t n = readlink(path, target, sizeof target - 1);
  if (n <= 0) return 0; /* unknown: plain lines are the safe choice */
  target[n] = 0;
  return !strncmp(target, "/dev/pts/", 9) || !strncmp(target, "/dev/tty", 8) || !strncmp(target, "/dev/console", 12);
}

int log_live_terminal(void) {
  static int decided = -1;
  if (decided < 0) {
    pid_t ppid = getppid();
    decided = isatty(fileno(stdout)) && (!parent_is_mpi_launcher(ppid) || parent_stdout_is_terminal(ppid));
  }
  return decided;
}

static int progress_open = 0;

void log_progress(const char *fmt, ...) {
  if (dist_rank() != 0) return;
  int tty = log_live_terminal();
  va_list ap;
  va_start(ap, fmt);
  if (tty) fputs("\r\033[K", stdout);
  vfprintf(stdout, fmt, ap);
  va_end(ap);
  if (!tty) fputc('\n', stdout);
  progress_open = tty;
  flush_stdout();
}

void log_progress_done(void) {
  if (dist_rank() != 0) return;
  if (progress_open) fputc('\n', stdout);
  progress_open = 0;
  flush_stdout();
}
