# Dense layers (layers/{act,linear,norm,embed,dropout,gate,head,xent}.c): gradcheck of the double
# twins and float32 fast paths against them.
lv_unit_test(test_dense_act)
lv_unit_test(test_dense_linear)
lv_unit_test(test_dense_norm)
lv_unit_test(test_dense_embed)
lv_unit_test(test_dense_gate)
lv_unit_test(test_dense_dropout)
lv_unit_test(test_dense_head)
lv_unit_test(test_dense_xent)
