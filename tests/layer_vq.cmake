# VQ of keys and VQ attention (layers/vq.*, layers/vq_attn*.c, their reference twins).
lv_unit_test(test_vq)
lv_unit_test(test_vq_attn)
# Benchmark (not a test): forward+backward time per token, encoder and decoder, L = 1K..16K.
add_executable(bench_vq_attn ${CMAKE_CURRENT_SOURCE_DIR}/bench_vq_attn.c)
target_compile_options(bench_vq_attn PRIVATE ${LONGVQ_WARN})
target_link_libraries(bench_vq_attn PRIVATE longvq_core)
