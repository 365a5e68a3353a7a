# Datasets: format, reader, converters, `longvq data` and `longvq inspect` (io/dataset*.c, io/data_*.c).
lv_unit_test(test_dataset)
lv_unit_test(test_dataset_listops)
# The reader under MPI: each rank gets exactly the samples it asks for (1 rank via lv_unit_test,
# then 2 and 3 ranks under mpirun).
lv_unit_test(test_dataset_mpi)
foreach(np 2 3)
  lv_mpi_test(test_dataset_mpi_np${np} ${np} test_dataset_mpi)
endforeach()
# CLI: converters, determinism, shards, inspect, h5dump and h5py interoperability.
lv_script_test(data_cli data_cli.sh)
# Every kind of bad input: one line on stderr naming the file, exit code 2.
lv_script_test(data_bad_input data_bad_input.sh)
# Fashion-MNIST from the real Debian files, checked against the raw IDX bytes.
lv_script_test(data_fmnist data_fmnist.sh)
# Integrity: damaged, oversized and old (version 1) datasets, each a reproduction (exit 2 naming
# the file and the field or object, or a note); the bounded fuzz of the reader (200 damaged copies
# through inspect --verify and a 1-step train: exit 0 or 2, never a crash or a hang).
lv_script_test(data_integrity data_integrity.sh)
lv_script_test(data_fuzz data_fuzz.sh)
