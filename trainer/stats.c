/* The statistics region's layout (see stats.h). */
#include "trainer/stats.h"

lv_stat_layout lv_stat_layout_make(int64_t n_layers, int64_t S, int64_t Z, int world) {
  lv_stat_layout l = {.n_layers = n_layers, .S = S, .Z = Z, .world = world};
  size_t at = 0, nl = (size_t)n_layers, s = (size_t)S, z = (size_t)Z;
  l.n_s = at, at += nl * s;
  l.key_sums = at, at += nl * s * z;
  l.reseed_keys = at, at += nl * s * z;
  l.task_sum = at++;
  l.task_count = at++;
  l.correct = at++;
  l.valid = at++;
  l.commit_sum = at, at += nl;
  l.stop_vote = at++;
  l.rank_compute = at, at += (size_t)world;
  l.rank_rss = at, at += (size_t)world;
  l.total = at;
  return l;
}

void lv_stats_add_forward(double *stats, const lv_stat_layout *l, const lv_fwd_stats *st) {
  stats[l->task_sum] += st->task_sum;
  stats[l->task_count] += st->task_count;
  stats[l->correct] += st->correct;
  stats[l->valid] += st->valid;
  for (int64_t i = 0; i < l->n_layers; i++) stats[l->commit_sum + (size_t)i] += st->commit_sum[i];
}
