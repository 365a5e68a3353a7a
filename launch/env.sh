# Sourced by the launch scripts: MPI settings for this kind of machine.
# Running as root (containers, CI) needs Open MPI's explicit consent.
if [ "$(id -u)" -eq 0 ]; then
  export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
fi
# Reuse buffers in large allreduces (ring algorithm) instead of allocating per call.
export OMPI_MCA_coll_tuned_use_dynamic_rules=${OMPI_MCA_coll_tuned_use_dynamic_rules:-1}
export OMPI_MCA_coll_tuned_allreduce_algorithm=${OMPI_MCA_coll_tuned_allreduce_algorithm:-4}
# Ranks and the communication thread share cores here: waiting MPI calls yield the core instead of
# spinning (measured: more of the reduction hidden behind backward on this 2-core machine).
export OMPI_MCA_mpi_yield_when_idle=${OMPI_MCA_mpi_yield_when_idle:-1}
# Seconds between mpirun's SIGTERM to the ranks and its SIGKILL, when mpirun ends a job itself (a rank
# died or called MPI_Abort, or mpirun got TERM/INT/HUP). Kept at Open MPI's 1 s on purpose: each such
# ending takes about twice this (measured: 2.4 s at 1, 10.4 s at 5, 20.3 s at 10; tests/
# bench_mpirun_term.sh), and a longer grace would not make a TERM to mpirun a clean stop (mpirun then
# exits 1 whatever the ranks do). Stop a run with launch/run.sh instead (docs/distributed.md
# "Stopping a run").
export OMPI_MCA_odls_base_sigkill_timeout=${OMPI_MCA_odls_base_sigkill_timeout:-1}
