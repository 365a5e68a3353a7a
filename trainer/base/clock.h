/* Wall-clock time for the step's figures and the benchmarks. */
#ifndef LONGVQ_CLOCK_H
#define LONGVQ_CLOCK_H

/* Local. Seconds of CLOCK_MONOTONIC (unaffected by clock changes; thread-safe). */
double lv_now_s(void);

#endif
