# Whole model: end-to-end FD check of the double reference model, fast model vs reference, padding
# invariance, bad-input deaths (tests/test_model.c).
lv_unit_test(test_model)
