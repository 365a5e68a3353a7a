/* One run per run directory: rank 0 of `longvq train` holds <run.dir>/.lock for the life of the run,
 * so that a second training started on the same run.dir is refused (exit 2, naming the holder)
 * instead of rewriting the first one's metrics and deleting its checkpoints. docs/slurm.md, "One run
 * per run directory", is the user's version of this comment.
 *
 * Protocol. No fcntl/flock (not supported, not coherent between nodes, or silently local on some
 * cluster file systems): only an exclusive create, unlink, and plain reads and writes, which local
 * disks, NFS v3 and later, Lustre and GPFS all perform atomically on the server.
 *  - Take: open(<run.dir>/.lock, O_CREAT | O_EXCL) succeeds for exactly one of the runs trying.
 *    The file holds a text record, one "key: value" a line: host, pid, Slurm job (SLURM_JOB_ID,
 *    array job and task, SLURM_RESTART_COUNT), start time, heartbeat (wall-clock seconds, UTC), and
 *    what identifies the process on its own host (boot id, pid namespace, process start time).
 *  - Heartbeat: a thread of this module (no call from the step loop is needed, and long steps,
 *    evaluations and checkpoint writes cannot starve it) rewrites the record in place every
 *    run.lock_stale_s / 4 seconds, at most 60 s apart: the same length, only the heartbeat changes,
 *    then fsync. Before each write it checks that the file still holds its own last record; if not
 *    (another run judged this one gone and took over) it stops the job with exit code 1: two runs
 *    must not write one run.dir.
 *  - Refuse or take over: an existing lock is taken over, with a warning naming its holder, only if
 *      1. its holder is provably gone: same host, boot and pid namespace as ours, and its pid no
 *         longer exists, is a zombie, or is another process (another start time); or
 *      2. it was written by an earlier run of this Slurm job (same SLURM_JOB_ID, lower
 *         SLURM_RESTART_COUNT: Slurm starts a job again only after its processes have ended); or
 *      3. its heartbeat is older than run.lock_stale_s (a holder elsewhere that died or froze),
 *    and never while its holder is provably alive (same host, boot and pid namespace, the pid runs
 *    with the recorded start time). A record that cannot be parsed has the file's mtime as its
 *    heartbeat and only rule 3 applies. Otherwise every rank exits 2 with one message, from rank 0,
 *    naming the holder.
 *    Taking over: under the takeover mutex <run.dir>/.lock.takeover (an exclusive create, held for
 *    milliseconds; one older than 30 s was left by a taker that died, and is removed) the record is
 *    read again and removed only if it is byte for byte the one judged; then the exclusive create is
 *    tried again. Of two runs taking over at once one wins, the other is refused.
 *  - Release: at the end of the run (exit 0 or 3), at every exit() (the collective errors) and when
 *    a check or DIE aborts the job on rank 0 (lv_on_abort), the file is removed if it still holds
 *    our record. A rank 0 killed by a signal (kill -9, the OOM killer, a lost node, MPI_Abort from
 *    another rank) leaves it behind, for the rules above.
 * Limits: the hosts' clocks must agree to well within run.lock_stale_s (NTP); a frozen holder (a
 * suspended job, a node cut off from the cluster) is taken over after run.lock_stale_s and stops
 * at its next heartbeat if it wakes up, having written at most one heartbeat interval's worth in
 * the meantime; NFS v2 has no exclusive create. */
#ifndef LONGVQ_RUNLOCK_H
#define LONGVQ_RUNLOCK_H

/* Collective. Creates run_dir if needed; rank 0 takes the lock (above) and starts its heartbeat,
 * or every rank exits with LV_EXIT_USAGE after one message from rank 0 naming the holder.
 * stale_s: run.lock_stale_s (>= 1). Call before anything is written into run_dir. */
void runlock_acquire(const char *run_dir, double stale_s);
/* Local. Rank 0 stops the heartbeat and removes the lock if it still holds our record; does
 * nothing elsewhere, when nothing is held, or the second time. Also runs at exit() and on an abort. */
void runlock_release(void);

#endif
