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
