# Scaling sweeps (launch/scaling.sh, launch/scaling_report.py; docs/scaling.md).
#   scaling        mpirun on this machine: a weak and a strong tiny sweep (a crashed point, a batch
#                  that does not divide, oversubscribed points), every csv figure recomputed from the
#                  runs' metrics, the PNG's panels, the report alone, malformed metrics, bad arguments
#   scaling_slurm  the same sweep as one exclusive job per point on a private local Slurm
#                  (launch/slurm-local.sh): oversubscribed points through srun --overcommit, a point
#                  sbatch refuses, --no-wait then the report alone; SKIP (77) where Slurm cannot run
# Serial: the points run several ranks on this machine's 2 cores.
lv_script_test(scaling scaling.sh)
set_tests_properties(scaling PROPERTIES RUN_SERIAL TRUE TIMEOUT 300)
lv_script_test(scaling_slurm scaling_slurm.sh)
set_tests_properties(scaling_slurm PROPERTIES RUN_SERIAL TRUE SKIP_RETURN_CODE 77 TIMEOUT 900 LABELS slurm)
