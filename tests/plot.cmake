# Plots of runs (launch/plot.py, docs/plots.md) and evaluation by position (`longvq eval`,
# trainer/eval_pos.h).
#   plot            real runs (one stopped by a signal and resumed, a decoder, a sweep directory):
#                   every panel and series of the figures against the metrics; bad metrics lines
#   eval_positions  (mpi) bits per token by position bucket: the buckets add up to the whole, counts
#                   exact, one bucket equals an evaluation with a shorter window, 2 ranks = 1 rank
lv_script_test(plot plot.sh)
lv_script_test(eval_positions eval_positions.sh mpi)
