/* Converters behind `longvq data <kind>` (io/data_*.c) and their shared command-line helpers.
 * Each converter builds its splits in memory and hands them to lv_dataset_write. */
#ifndef LONGVQ_DATA_CONVERT_H
#define LONGVQ_DATA_CONVERT_H

#include <stddef.h>
#include <stdint.h>

#include "io/dataset.h"

/* ---- entry points: argv[0] is the kind; return an exit code (errors DIE_INPUT) -------------- */
int lv_data_listops(int argc, char **argv);  /* io/data_listops.c */
int lv_data_fmnist(int argc, char **argv);   /* io/data_fmnist.c */
int lv_data_text(int argc, char **argv);     /* io/data_text.c */
int lv_data_tsv(int argc, char **argv);      /* io/data_tsv.c */
int lv_data_recall(int argc, char **argv);   /* io/data_recall.c */
int lv_data_mqar(int argc, char **argv);     /* io/data_mqar.c */

/* ---- ListOps (Long Range Arena), exposed for tests ------------------------------------------- */

/* Token ids: 0 = <pad> (never stored), 1..10 = digits 0..9, 11..14 = [MIN [MAX [MED [SM, 15 = ]. */
enum { LV_LISTOPS_PAD = 0, LV_LISTOPS_DIGIT0 = 1, LV_LISTOPS_MIN = 11, LV_LISTOPS_MAX = 12,
       LV_LISTOPS_MED = 13, LV_LISTOPS_SM = 14, LV_LISTOPS_END = 15, LV_LISTOPS_VOCAB = 16 };
extern const char *const lv_listops_vocab[LV_LISTOPS_VOCAB];

typedef struct {
  int64_t n_samples;          /* distinct expressions wanted (all splits together) */
  int64_t min_len, max_len;   /* kept iff min_len < length < max_len (LRA: 500, 2000) */
  int max_depth, max_args;    /* LRA: 10, 10 */
  uint64_t seed;
} lv_listops_opts;

typedef struct {
  uint8_t *tokens;            /* (n_tokens) all samples back to back, in acceptance order */
  int64_t *offsets;           /* (n + 1) */
  int32_t *labels;            /* (n) the value of each expression, 0..9 */
  int64_t n, n_tokens;
  int64_t candidates;         /* trees drawn (accepted or not) */
} lv_listops_set;

/* Candidate k is a pure function of (seed, k); accepted candidates are kept in order of k. */
void lv_listops_generate(const lv_listops_opts *o, lv_listops_set *out);
void lv_listops_free(lv_listops_set *s);
/* Candidate k alone: returns 1 and fills buf[0..*len) / *value if the tree ends before reaching
 * max_len tokens, 0 if it was abandoned (it would be too long). buf holds >= max_len tokens. */
int lv_listops_candidate(const lv_listops_opts *o, uint64_t k, uint8_t *buf, int64_t *len, int *value);

/* ---- command-line helpers (io/data_common.c) ------------------------------------------------- */

typedef enum { LV_OPT_I64, LV_OPT_U64, LV_OPT_F64, LV_OPT_STR, LV_OPT_FLAG } lv_opt_kind;
typedef struct {
  const char *name;   /* "--train" */
  lv_opt_kind kind;
  void *dst;          /* int64_t*, uint64_t*, double*, char** (points into argv), int* */
  const char *help;
  int provenance;     /* 1: recorded in the file's `options` attribute (it changes the content) */
} lv_opt;

/* Options every converter takes. */
typedef struct {
  char *out;
  uint64_t seed;
  int64_t shards;
  int force;
} lv_data_common;
#define LV_DATA_COMMON_OPTS(c) \
  {"--out", LV_OPT_STR, &(c).out, "output FILE.h5 (required; with --shards N: FILE-0000k-of-0000N.h5)", 0}, \
  {"--seed", LV_OPT_U64, &(c).seed, "seed of every random choice (default 0)", 1}, \
  {"--shards", LV_OPT_I64, &(c).shards, "write N shard files (default 1)", 0}, \
  {"--force", LV_OPT_FLAG, &(c).force, "overwrite existing output files", 0}

/* Parse argv[1..argc) against opts (NULL-name terminated). Positional arguments go to pos[]
 * (argv pointers; n_pos may be NULL if none are allowed). Returns 1 if --help was printed (the
 * caller exits 0), else 0. Builds "--name value ..." of the provenance options in prov[cap]. */
int lv_opts_parse(const char *kind, const char *usage, int argc, char **argv, const lv_opt *opts,
                  int *n_pos, char ***pos, char *prov, size_t cap);
/* DIE_INPUT unless --out was given and --shards is in range. */
void lv_data_check_common(const char *kind, const lv_data_common *c);
/* Generated tasks (recall, mqar): split sizes n[3] (train, val, test) in [0, 2^32] with train >= 1;
 * chunk C even and >= 2; sequence length L a positive multiple of C. */
void lv_data_check_generated(const char *kind, const int64_t n[3], int64_t L, int64_t C);

/* Whole file into memory (NUL-terminated; *len excludes the NUL). Errors name the file. */
char *lv_read_file(const char *path, int64_t *len);

/* Growable arrays for converters. */
typedef struct { uint8_t *p; int64_t n, cap; } lv_u8vec;
typedef struct { int64_t *p; int64_t n, cap; } lv_i64vec;
typedef struct { int32_t *p; int64_t n, cap; } lv_i32vec;
void lv_u8_push(lv_u8vec *v, const uint8_t *src, int64_t n);
void lv_i64_push(lv_i64vec *v, int64_t x);
void lv_i32_push(lv_i32vec *v, int32_t x);

#endif
