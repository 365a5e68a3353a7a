/* Wall-clock time for the step's figures and the benchmarks. */
#ifndef LONGVQ_CLOCK_H
#define LONGVQ_CLOCK_H

/* Local. Seconds of CLOCK_MONOTONIC (unaffected by clock changes; thread-safe). */
double lv_now_s(void);
/* Local. Seconds of CPU time of this process, all its threads (CLOCK_PROCESS_CPUTIME_ID): on a shared
 * machine, work per CPU-second is what a figure means when wall time includes waiting for a core. */
double lv_cpu_s(void);

#endif
