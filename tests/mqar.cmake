# Multi-query associative recall generator (io/data_mqar.c, `longvq data mqar`) and the eval_mask of
# LM datasets: every block checked independently in Python, the Philox key layout re-implemented,
# evaluation counting exactly the masked targets, a corrupt mask and bad options.
lv_script_test(data_mqar data_mqar.sh)
# The long-range check itself (docs/long-range.md), a short budget: far attention on learns the far
# recalls, off stays at chance; both learn the near ones.
lv_script_test(long_range long_range.sh)
