/* The step's statistics region: everything besides the gradients that travels in the step's
 * reduction (trainer/reducer.h, bucket 0). All of it is double, so that counts are exact integers (up
 * to 2^53 tokens) and sums keep double precision at any global batch; float32 would stop counting at
 * 2^24 = 16.7M tokens. This one named layout is used by the producer (the step's forward passes and
 * votes, trainer/step.c) and by the consumers (codebook update, re-seeding, logging).
 *
 * Every field is an offset, in doubles, from the region's start; every rank adds its own part and
 * the reduction sums them, so a per-rank field (rank_compute, rank_rss) is written by its rank only
 * (its slot) and read whole after the reduction. */
#ifndef LONGVQ_STATS_H
#define LONGVQ_STATS_H

#include <stddef.h>
#include <stdint.h>

#include "layers/model.h"

typedef struct {
  int64_t n_layers, S, Z;
  int world;
  size_t n_s;          /* (n_layers, S) valid tokens per code */
  size_t key_sums;     /* (n_layers, S, Z) sum of the keys k_t of each code's valid tokens */
  size_t reseed_keys;  /* (n_layers, S, Z) key that re-seeds each candidate code (one rank adds it) */
  size_t task_sum;     /* (1) sum of per-sample (encoder) / per-target (decoder) losses */
  size_t task_count;   /* (1) samples / counted targets */
  size_t correct;      /* (1) correct predictions */
  size_t valid;        /* (1) valid input tokens */
  size_t commit_sum;   /* (n_layers) commitment sums sum_t m_t ||k_t - Cb[code_t]||^2 */
  size_t stop_vote;    /* (1) > 0: some rank received a stop signal */
  size_t rank_compute; /* (world) each rank's compute seconds of the previous step */
  size_t rank_rss;     /* (world) each rank's peak resident memory so far, MiB */
  size_t total;        /* doubles of the whole region (before the reducer's padding) */
} lv_stat_layout;

/* Pure. */
lv_stat_layout lv_stat_layout_make(int64_t n_layers, int64_t S, int64_t Z, int world);
/* Local. stats[task_sum..commit_sum] += one forward's partial sums (n_layers commitment sums). */
void lv_stats_add_forward(double *stats, const lv_stat_layout *l, const lv_fwd_stats *st);

#endif
