# Long-range associative recall generator (io/data_recall.c, `longvq data recall`): determinism,
# every label and the distance constraint checked by an independent evaluation in Python, the
# documented Philox key layout re-implemented, bad options.
lv_script_test(data_recall data_recall.sh)
