/* FNV-1a, 64-bit: a cheap hash for comparing bytes across ranks (replica checks, "is this the same
 * on every rank"), never for integrity against damage (checkpoints use their own digests). */
#ifndef LONGVQ_HASH_H
#define LONGVQ_HASH_H

#include <stddef.h>
#include <stdint.h>

#define LV_FNV1A_INIT 1469598103934665603ull

/* Local. Continues hash h (start from LV_FNV1A_INIT) over the n bytes at p. */
static inline uint64_t lv_fnv1a(uint64_t h, const void *p, size_t n) {
  const unsigned char *c = p;
  for (size_t i = 0; i < n; i++) h = (h ^ c[i]) * 1099511628211ull;
  return h;
}

#endif
