#include "trainer/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <unistd.h>

#include "trainer/dist.h"

void log_info(const char *fmt, ...) {
  if (dist_rank() != 0) return;
  va_list ap;
  va_start(ap, fmt);
  vfprintf(stdout, fmt, ap);
  va_end(ap);
  fputc('\n', stdout);
  fflush(stdout);
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

static int progress_open = 0;

void log_progress(const char *fmt, ...) {
  if (dist_rank() != 0) return;
  int tty = isatty(fileno(stdout));
  va_list ap;
  va_start(ap, fmt);
  if (tty) fputs("\r\033[K", stdout);
  vfprintf(stdout, fmt, ap);
  va_end(ap);
  if (!tty) fputc('\n', stdout);
  progress_open = tty;
  fflush(stdout);
}

void log_progress_done(void) {
  if (dist_rank() != 0) return;
  if (progress_open) fputc('\n', stdout);
  progress_open = 0;
  fflush(stdout);
}
