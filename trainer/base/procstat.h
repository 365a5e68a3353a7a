/* This process's memory as the kernel reports it (/proc/self/status), for the benchmarks' and
 * generate's memory figures, and the machine's load beside their times. */
#ifndef LONGVQ_PROCSTAT_H
#define LONGVQ_PROCSTAT_H

/* Local. Bytes of a /proc/self/status field given in kB: "VmRSS:" (resident now) or "VmHWM:" (peak
 * resident); 0 if the file or the field is unavailable. */
double lv_proc_status_bytes(const char *field);
/* Local. The machine's load average over the last minute (/proc/loadavg), -1 if unavailable: the
 * benchmarks print it beside their times (well above the threads in use, the times are contended). */
double lv_proc_loadavg(void);

#endif
