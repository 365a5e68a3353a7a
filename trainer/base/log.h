/* Logging: rank 0 speaks for the job; warnings and errors carry the rank. */
#ifndef LONGVQ_LOG_H
#define LONGVQ_LOG_H

/* Rank 0 only, to stdout. */
void log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Any rank, to stderr, prefixed "[rank r] warning: ". */
void log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Any rank, to stderr, prefixed "[rank r] error: " (does not exit). */
void log_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Local. 1 if stdout reaches a terminal that a person watches. isatty() alone is not enough: Open
 * MPI's mpirun gives rank 0 a pseudo-terminal even when the job's output goes to a file, so for a
 * process started by mpirun (its parent), the launcher's own stdout must be a terminal too. Under
 * srun or without a launcher, isatty(stdout). Decided once. */
int log_live_terminal(void);
/* Progress line on rank 0: rewritten in place where log_live_terminal(), printed every call otherwise. */
void log_progress(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Ends a run of log_progress lines. */
void log_progress_done(void);

#endif
