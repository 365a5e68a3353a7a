/* Philox4x32-10 against the Random123 known-answer vectors (tests/kat_vectors of Random123),
 * plus the stream layout and the distribution of uniforms and normals. */
#include <stdint.h>

#include "tests/test_util.h"
#include "trainer/base/rng.h"

int main(void) {
  static const uint32_t kat[3][10] = {
      {0, 0, 0, 0, 0, 0, 0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8},
      {0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff,
       0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd},
      {0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344, 0xa4093822, 0x299f31d0,
       0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1},
  };
  for (int i = 0; i < 3; i++) {
    uint32_t out[4];
    philox4x32_10(out, kat[i], kat[i] + 4);
    for (int w = 0; w < 4; w++) EXPECT(out[w] == kat[i][6 + w], "vector %d word %d: %08x", i, w, out[w]);
  }
  /* FNV-1a reference values. */
  EXPECT(rng_fnv1a32("") == 0x811c9dc5u, "fnv empty");
  EXPECT(rng_fnv1a32("a") == 0xe40c292cu, "fnv a");

  /* Stream layout: word idx is word idx%4 of block idx/4 with ctr {blk, b, a, fnv(domain)}. */
  rng_stream s = rng_make(0x0000000100000002ull, "dropout", 7, 9);
  uint32_t ctr[4] = {3, 9, 7, rng_fnv1a32("dropout")}, key[2] = {2, 1}, out[4];
  philox4x32_10(out, ctr, key);
  EXPECT(rng_u32(&s, 13) == out[1], "stream word 13");

  /* Moments over 200k draws: mean/variance within ~5 standard errors. */
  const int n = 200000;
  double su = 0, su2 = 0, sn = 0, sn2 = 0;
  for (int i = 0; i < n; i++) {
    double u = rng_uniform(&s, (uint64_t)i), z = rng_normal(&s, (uint64_t)i);
    EXPECT(u >= 0.0 && u < 1.0, "uniform out of range");
    su += u; su2 += u * u; sn += z; sn2 += z * z;
  }
  EXPECT_NEAR(su / n, 0.5, 5 * 0.2887 / sqrt(n), 0);
  EXPECT_NEAR(su2 / n - (su / n) * (su / n), 1.0 / 12, 0.002, 0);
  EXPECT_NEAR(sn / n, 0.0, 5.0 / sqrt(n), 0);
  EXPECT_NEAR(sn2 / n, 1.0, 5 * sqrt(2.0 / n), 0);
  return tu_finish("test_rng");
}
