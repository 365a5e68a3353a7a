/* Counter-based randomness: Philox4x32-10 (Salmon et al., SC'11), keyed by position, never by rank.
 *
 * A stream is (seed, domain, a, b): the 64-bit run seed is the Philox key; the counter is
 *   ctr = { idx / W, b, a, fnv1a32(domain) }     W = 4 words per block (2 normals per block)
 * so element `idx` of a stream is a pure function of (seed, domain, a, b, idx). The domains used
 * by the trainer are listed in docs/randomness.md. */
#ifndef LONGVQ_RNG_H
#define LONGVQ_RNG_H

#include <stdint.h>

typedef struct {
  uint32_t key[2];
  uint32_t c1, c2, c3; /* counter words 1..3; word 0 is the element block index */
} rng_stream;

/* One Philox4x32-10 block: out = philox(ctr, key). */
void philox4x32_10(uint32_t out[4], const uint32_t ctr[4], const uint32_t key[2]);
/* FNV-1a 32-bit hash of a string (domain names). */
uint32_t rng_fnv1a32(const char *s);
/* Stream for (seed, domain, a, b). */
rng_stream rng_make(uint64_t seed, const char *domain, uint32_t a, uint32_t b);
/* Word idx of the stream: block idx/4, word idx%4. */
uint32_t rng_u32(const rng_stream *s, uint64_t idx);
/* Uniform in [0,1) with 32 bits: rng_u32 * 2^-32. */
double rng_uniform(const rng_stream *s, uint64_t idx);
/* Standard normal by Box-Muller (cosine branch) on words 2(idx%2), 2(idx%2)+1 of block idx/2:
 * z = sqrt(-2 ln(1 - u1)) cos(2 pi u2). */
double rng_normal(const rng_stream *s, uint64_t idx);

#endif
