#include "trainer/base/rng.h"

#include <math.h>

#define PHILOX_M0 0xD2511F53u
#define PHILOX_M1 0xCD9E8D57u
#define PHILOX_W0 0x9E3779B9u
#define PHILOX_W1 0xBB67AE85u

static inline uint32_t mulhilo(uint32_t a, uint32_t b, uint32_t *hi) {
  uint64_t p = (uint64_t)a * b;
  *hi = (uint32_t)(p >> 32);
  return (uint32_t)p;
}

void philox4x32_10(uint32_t out[4], const uint32_t ctr[4], const uint32_t key[2]) {
  uint32_t c0 = ctr[0], c1 = ctr[1], c2 = ctr[2], c3 = ctr[3];
  uint32_t k0 = key[0], k1 = key[1];
  for (int r = 0; r < 10; r++) {
    if (r > 0) { /* key schedule bumps before every round but the first */
      k0 += PHILOX_W0;
      k1 += PHILOX_W1;
    }
    uint32_t hi0, hi1;
    uint32_t lo0 = mulhilo(PHILOX_M0, c0, &hi0);
    uint32_t lo1 = mulhilo(PHILOX_M1, c2, &hi1);
    c0 = hi1 ^ c1 ^ k0;
    c1 = lo1;
    c2 = hi0 ^ c3 ^ k1;
    c3 = lo0;
  }
  out[0] = c0;
  out[1] = c1;
  out[2] = c2;
  out[3] = c3;
}

uint32_t rng_fnv1a32(const char *s) {
  uint32_t h = 2166136261u;
  for (; *s; s++) {
    h ^= (uint8_t)*s;
    h *= 16777619u;
  }
  return h;
}

rng_stream rng_make(uint64_t seed, const char *domain, uint32_t a, uint32_t b) {
  rng_stream s;
  s.key[0] = (uint32_t)seed;
  s.key[1] = (uint32_t)(seed >> 32);
  s.c1 = b;
  s.c2 = a;
  s.c3 = rng_fnv1a32(domain);
  return s;
}

static void block(const rng_stream *s, uint32_t blk, uint32_t out[4]) {
  uint32_t ctr[4] = {blk, s->c1, s->c2, s->c3};
  philox4x32_10(out, ctr, s->key);
}

uint32_t rng_u32(const rng_stream *s, uint64_t idx) {
  uint32_t out[4];
  block(s, (uint32_t)(idx >> 2), out);
  return out[idx & 3];
}

double rng_uniform(const rng_stream *s, uint64_t idx) { return rng_u32(s, idx) * 0x1p-32; }

double rng_normal(const rng_stream *s, uint64_t idx) {
  uint32_t out[4];
  block(s, (uint32_t)(idx >> 1), out);
  int w = (int)(idx & 1) * 2;
  double u1 = out[w] * 0x1p-32, u2 = out[w + 1] * 0x1p-32;
  return sqrt(-2.0 * log(1.0 - u1)) * cos(2.0 * M_PI * u2);
}
