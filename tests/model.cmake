# Whole model: end-to-end FD check of the double reference model, fast model vs reference, padding
# invariance, bad-input deaths (tests/test_model.c).
lv_unit_test(test_model)
# The model FLOPs count (lv_model_count_flops) against its closed form (tests/test_model_flops.c).
lv_unit_test(test_model_flops)
