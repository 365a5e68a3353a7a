# model.precision bf16 (issue 14; docs/layers.md "Precision", docs/performance.md "bf16"):
# conversion bits against oneDNN, every product shape and the layers against f32 within bounds
# derived from bf16's 8-bit significand, the whole model's loss and gradient on a fixed batch.
lv_unit_test(test_bf16)
lv_unit_test(test_bf16_model)
# 1/2/4 ranks, exact resume, checkpoints across precisions, refusal without native bf16.
lv_script_test(bf16_train bf16_train.sh mpi)
set_tests_properties(bf16_train PROPERTIES RUN_SERIAL TRUE)
