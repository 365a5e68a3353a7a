# Checkpoint files (io/checkpoint*.c, trainer/dist_io.c, `longvq inspect` of a checkpoint).
# test_checkpoint: round trips between decompositions (no ZeRO / the reducer's ZeRO-1 shard / random
# ranges cutting mid-row), naming, list, rotation, every kind of damaged file and the resume=auto
# fallbacks, single-byte flips, a whole chunk zeroed with its checksum in each dataset (crc32
# digests), model files' digests, files without digests, a FIFO and a directory named like
# checkpoints: at 1 rank and under mpirun at 2 and 4.
lv_unit_test(test_checkpoint ${CMAKE_CURRENT_SOURCE_DIR}/test_checkpoint_corrupt.c
             ${CMAKE_CURRENT_SOURCE_DIR}/test_checkpoint_integrity.c)
set_property(TEST test_checkpoint PROPERTY WORKING_DIRECTORY ${CMAKE_CURRENT_BINARY_DIR})
foreach(np 2 4)
  lv_mpi_test(test_checkpoint_np${np} ${np} test_checkpoint ${CMAKE_CURRENT_BINARY_DIR}/work_ckpt_suite)
endforeach()

# Script tests get the test program too.
function(lv_ckpt_script_test name script)
  lv_script_test(${name} ${script} mpi)
  set_property(TEST ${name} APPEND PROPERTY ENVIRONMENT "CKPT_TEST=$<TARGET_FILE:test_checkpoint>")
endfunction()
# Written by one world size and decomposition, read by others (4 ZeRO -> 2 without -> 1, ...).
lv_ckpt_script_test(ckpt_cross ckpt_cross.sh)
# kill -9 in the middle of a large checkpoint write: the previous one reads, the .tmp is never picked.
lv_ckpt_script_test(ckpt_kill ckpt_kill.sh)
set_tests_properties(ckpt_kill PROPERTIES RUN_SERIAL TRUE)
# `longvq inspect ckpt.h5`: fields, tensor table (norms checked against h5py), checksum status.
lv_ckpt_script_test(ckpt_inspect ckpt_inspect.sh)
# tests/load_checkpoint.py (Debian's python3 + h5py) loads a checkpoint as a state dict and checks
# every dataset's crc32.
lv_ckpt_script_test(ckpt_python ckpt_python.sh)
# Bounded fuzz of the reader: 200 random bit flips and truncations (fixed seed), `inspect` and a
# resume under `timeout` each: exit 0 or 2, a fallback or every value intact; no crash, no hang.
lv_ckpt_script_test(ckpt_fuzz ckpt_fuzz.sh)
# Digests and odd run-dir entries end to end (train/eval/inspect, one process): a zeroed chunk in
# a checkpoint (fallback) and in a model file (refused), files without digests (a note), a FIFO
# and a directory named like checkpoints; h5py verifies the digests.
lv_script_test(ckpt_integrity ckpt_integrity.sh cli)

# Benchmark (not a test): write/read MB/s of a ~1 GB checkpoint next to plain POSIX write+fsync.
add_executable(bench_checkpoint ${CMAKE_CURRENT_SOURCE_DIR}/bench_checkpoint.c)
target_compile_options(bench_checkpoint PRIVATE ${LONGVQ_WARN})
target_link_libraries(bench_checkpoint PRIVATE longvq_core)
