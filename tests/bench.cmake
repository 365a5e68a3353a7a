# `longvq bench` smoke test (trainer/cmd_bench.c): a tiny model runs `bench --quick` for both modes
# and must exit 0 and print the probe line and one speed and one memory row per mode and length;
# a bad --lengths must exit 2 naming the option. Not a timing assertion: no number is judged.
#
# This file is both: included by tests/CMakeLists.txt it registers the test; run with
# `cmake -DLONGVQ=... -P tests/bench.cmake` (which the test does) it performs the checks.
if(NOT CMAKE_SCRIPT_MODE_FILE)
  add_test(NAME bench_quick COMMAND ${CMAKE_COMMAND} -DLONGVQ=$<TARGET_FILE:longvq> -P ${CMAKE_CURRENT_LIST_FILE})
  set_tests_properties(bench_quick PROPERTIES ENVIRONMENT "${LONGVQ_MPIRUN_ENV}" TIMEOUT 300)
  return()
endif()

set(tiny --quick --tokens 256 --lengths 64,256 --steps 1 --probe 256 --d-model 16 --z-dim 8 --v-dim 16
    --ema-dim 4 --codebook 8 --chunk 32 --layers 2 --vocab 32 --classes 3)
execute_process(COMMAND ${LONGVQ} bench ${tiny} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
message("${out}${err}")
set(fail "")
if(NOT rc EQUAL 0)
  string(APPEND fail "exit code ${rc} (expected 0); ")
endif()
if(NOT out MATCHES "oneDNN f32 matmul \\([0-9]+ threads\\): 256\\^3 best [0-9.]+ GFLOP/s")
  string(APPEND fail "no matmul probe line; ")
endif()
foreach(mode encoder decoder)
  if(NOT out MATCHES "== ${mode} ==")
    string(APPEND fail "no ${mode} section; ")
  endif()
  if(NOT out MATCHES "model FLOPs per token")
    string(APPEND fail "no FLOPs line; ")
  endif()
  foreach(L 64 256)
    # speed row: mode L B fwd bwd upd step min tok/s ns/tok ratio GFLOP/s MFU
    if(NOT out MATCHES "\n${mode} +${L} +[0-9]+ +[0-9.]+ +[0-9.]+ +[0-9.]+ +[0-9.]+ +[0-9.]+ +[0-9]+ +[0-9.]+ +[0-9.]+ +[0-9.]+ +[0-9.]+%")
      string(APPEND fail "no ${mode} speed row for L=${L}; ")
    endif()
    # memory row: mode L B plan peak ratio ...
    if(NOT out MATCHES "\n${mode} +${L} +[0-9]+ +[0-9.]+ +[0-9.]+ +[0-9.]+ +-?[0-9.]+ +[0-9.]+ +[0-9]+ +[0-9.]+->[0-9.]+")
      string(APPEND fail "no ${mode} memory row for L=${L}; ")
    endif()
  endforeach()
endforeach()
if(out MATCHES "[ >-](nan|inf)")
  string(APPEND fail "non-finite number printed; ")
endif()

# Bad input: exit 2 and a message naming the option, before any measurement.
execute_process(COMMAND ${LONGVQ} bench --quick --chunk 32 --lengths 48 RESULT_VARIABLE rc2 OUTPUT_VARIABLE out2
                ERROR_VARIABLE err2)
if(NOT rc2 EQUAL 2 OR NOT err2 MATCHES "--lengths.*48 is not a multiple of --chunk 32" OR out2 MATCHES "speed")
  string(APPEND fail "bad --lengths: exit ${rc2}, stderr '${err2}'; ")
endif()
execute_process(COMMAND ${LONGVQ} bench --mode sideways RESULT_VARIABLE rc3 OUTPUT_QUIET ERROR_VARIABLE err3)
if(NOT rc3 EQUAL 2 OR NOT err3 MATCHES "--mode sideways")
  string(APPEND fail "bad --mode: exit ${rc3}, stderr '${err3}'; ")
endif()

if(fail)
  message(FATAL_ERROR "bench_quick: ${fail}")
endif()
message("bench_quick: passed")
