# EMA layer: gradient check of the reference twin, fast path vs twin (ctest), and a benchmark
# program (not a test: run build/tests/bench_ema by hand).
lv_unit_test(test_ema)

add_executable(bench_ema ${CMAKE_CURRENT_SOURCE_DIR}/bench_ema.c)
target_compile_options(bench_ema PRIVATE ${LONGVQ_WARN})
target_link_libraries(bench_ema PRIVATE longvq_core)
