/* Logging: rank 0 speaks for the job; warnings and errors carry the rank. */
#ifndef LONGVQ_LOG_H
#define LONGVQ_LOG_H

/* Rank 0 only, to stdout. */
void log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Any rank, to stderr, prefixed "[rank r] warning: ". */
void log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Any rank, to stderr, prefixed "[rank r] error: " (does not exit). */
void log_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Progress line on rank 0: rewritten in place on a terminal, printed every call otherwise. */
void log_progress(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Ends a run of log_progress lines. */
void log_progress_done(void);

#endif
