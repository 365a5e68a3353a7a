# `longvq bench CONFIG [key=value ...]` smoke test (trainer/cmd_bench.c): configs/tiny.yaml with
# overrides runs `bench --quick --mode both` and must exit 0 and print the probe line and one speed,
# one split (matmul products, bf16 rounding: none in f32, the rest) and one memory row per mode and
# length. An override must reach the model: model.d_model=32 changes the printed projection FLOPs per
# token exactly as the five projections' shapes say. Bad input (a length that is not a multiple of model.chunk_size, a bad --mode, an unknown key, no
# CONFIG) must exit 2 naming what is wrong. Not a timing assertion: no timing is judged.
#
# This file is both: included by tests/CMakeLists.txt it registers the test; run with
# `cmake -DLONGVQ=... -DSRC=... -P tests/bench.cmake` (which the test does) it performs the checks.
if(NOT CMAKE_SCRIPT_MODE_FILE)
  add_test(NAME bench_quick COMMAND ${CMAKE_COMMAND} -DLONGVQ=$<TARGET_FILE:longvq> -DSRC=${CMAKE_SOURCE_DIR}
                                    -P ${CMAKE_CURRENT_LIST_FILE})
  set_tests_properties(bench_quick PROPERTIES ENVIRONMENT "${LONGVQ_MPIRUN_ENV}" TIMEOUT 300 LABELS cli)
  return()
endif()

# configs/tiny.yaml: D 16, Z 8, E 16, F = 2D, 2 layers
set(config ${SRC}/configs/tiny.yaml model.chunk_size=32 model.vocab_size=32 model.n_classes=3)
set(tiny --quick --mode both --tokens 256 --lengths 64,256 --steps 1 --probe 256)
execute_process(COMMAND ${LONGVQ} bench ${config} ${tiny} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
message("${out}${err}")
set(fail "")
if(NOT rc EQUAL 0)
  string(APPEND fail "exit code ${rc} (expected 0); ")
endif()
if(NOT out MATCHES "oneDNN f32 matmul \\([0-9]+ threads\\): 256\\^3 best [0-9.]+ GFLOP/s")
  string(APPEND fail "no matmul probe line; ")
endif()
if(NOT out MATCHES "D 16 Z 8 E 16 N 4 S 8 C 32 F 32, V 32, K 3")
  string(APPEND fail "the header does not show configs/tiny.yaml's model with the overrides; ")
endif()
foreach(mode encoder decoder)
  if(NOT out MATCHES "== ${mode} ==")
    string(APPEND fail "no ${mode} section; ")
  endif()
  foreach(L 64 256)
    # speed row: mode L B fwd bwd upd step min tok/s ns/tok ratio GFLOP/s MFU
    if(NOT out MATCHES "\n${mode} +${L} +[0-9]+ +[0-9.]+ +[0-9.]+ +[0-9.]+ +[0-9.]+ +[0-9.]+ +[0-9]+ +[0-9.]+ +[0-9.]+ +[0-9.]+ +[0-9.]+%")
      string(APPEND fail "no ${mode} speed row for L=${L}; ")
    endif()
    # split row: mode L B step matmul share round other share; f32 rounds nothing
    if(NOT out MATCHES "\n${mode} +${L} +[0-9]+ +[0-9.]+ +[0-9.]+ +[0-9.]+% +0\\.000 +[0-9.]+ +[0-9.]+%")
      string(APPEND fail "no ${mode} split row for L=${L} (with 0.000 ms of rounding in f32); ")
    endif()
    # memory row: mode L B plan peak ratio ...
    if(NOT out MATCHES "\n${mode} +${L} +[0-9]+ +[0-9.]+ +[0-9.]+ +[0-9.]+ +-?[0-9.]+ +[0-9.]+ +[0-9]+ +[0-9.]+->[0-9.]+")
      string(APPEND fail "no ${mode} memory row for L=${L}; ")
    endif()
  endforeach()
endforeach()
string(REGEX MATCHALL "model FLOPs per token" flops_lines "${out}")
list(LENGTH flops_lines n_flops)
if(NOT n_flops EQUAL 2)
  string(APPEND fail "${n_flops} FLOPs lines (expected one per mode); ")
endif()
if(out MATCHES "[ >-](nan|inf)")
  string(APPEND fail "non-finite number printed; ")
endif()

# An override reaches the model. Projection FLOPs per token of a layer, forward + backward (3x the
# forward's 2 m n k): 6 (D E + D (2D+Z+E) + E D + D F + F D), F = 2D, times 2 layers.
function(projection_flops D out_var)
  set(Z 8)
  set(E 16)
  math(EXPR F "2 * ${D}")
  math(EXPR f "2 * 6 * (${D} * ${E} + ${D} * (2 * ${D} + ${Z} + ${E}) + ${E} * ${D} + 2 * ${D} * ${F})")
  set(${out_var} ${f} PARENT_SCOPE)
endfunction()
set(one --mode encoder --tokens 64 --lengths 64 --steps 1 --warmup 0 --probe 0)
foreach(D 16 32)
  execute_process(COMMAND ${LONGVQ} bench ${config} model.d_model=${D} ${one} RESULT_VARIABLE rcd
                  OUTPUT_VARIABLE outd ERROR_VARIABLE errd)
  projection_flops(${D} want)
  if(NOT outd MATCHES "D ${D} Z 8 E 16 N 4 S 8 C 32 F [0-9]+")
    string(APPEND fail "model.d_model=${D}: the header does not show D ${D}: ${outd}${errd}; ")
  elseif(NOT outd MATCHES "model FLOPs per token [^\n]*: ([0-9]+) = projections ([0-9]+) ")
    string(APPEND fail "model.d_model=${D}: no FLOPs line (exit ${rcd}): ${errd}; ")
  elseif(NOT CMAKE_MATCH_2 EQUAL want)
    string(APPEND fail "model.d_model=${D}: projection FLOPs per token ${CMAKE_MATCH_2}, want ${want}; ")
  else()
    set(total_${D} ${CMAKE_MATCH_1})
    message("bench_quick: model.d_model=${D}: ${CMAKE_MATCH_1} FLOPs per token, projections ${want} as expected")
  endif()
endforeach()
if(DEFINED total_16 AND DEFINED total_32 AND NOT total_32 GREATER total_16)
  string(APPEND fail "model.d_model=32 did not raise the FLOPs per token (${total_16} -> ${total_32}); ")
endif()

# Bad input: exit 2 and a message naming what is wrong, before any measurement.
execute_process(COMMAND ${LONGVQ} bench ${config} --quick --lengths 48 RESULT_VARIABLE rc2 OUTPUT_VARIABLE out2
                ERROR_VARIABLE err2)
if(NOT rc2 EQUAL 2 OR NOT err2 MATCHES "--lengths 48: 48 is not a multiple of model.chunk_size 32" OR out2 MATCHES "speed")
  string(APPEND fail "bad --lengths: exit ${rc2}, stderr '${err2}'; ")
endif()
execute_process(COMMAND ${LONGVQ} bench ${config} --mode sideways RESULT_VARIABLE rc3 OUTPUT_QUIET ERROR_VARIABLE err3)
if(NOT rc3 EQUAL 2 OR NOT err3 MATCHES "--mode sideways")
  string(APPEND fail "bad --mode: exit ${rc3}, stderr '${err3}'; ")
endif()
execute_process(COMMAND ${LONGVQ} bench ${config} model.d_modle=32 --quick RESULT_VARIABLE rc4 OUTPUT_VARIABLE out4
                ERROR_VARIABLE err4)
if(NOT rc4 EQUAL 2 OR NOT err4 MATCHES "model\\.d_modle=32'?: model\\.d_modle: unknown key" OR out4 MATCHES "speed")
  string(APPEND fail "unknown key: exit ${rc4}, stderr '${err4}'; ")
endif()
execute_process(COMMAND ${LONGVQ} bench --quick RESULT_VARIABLE rc5 OUTPUT_QUIET ERROR_VARIABLE err5)
if(NOT rc5 EQUAL 2 OR NOT err5 MATCHES "missing CONFIG")
  string(APPEND fail "no CONFIG: exit ${rc5}, stderr '${err5}'; ")
endif()

if(fail)
  message(FATAL_ERROR "bench_quick: ${fail}")
endif()
message("bench_quick: passed")
