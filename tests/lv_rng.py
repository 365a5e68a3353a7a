"""The trainer's counter-based randomness (trainer/rng.h, docs/randomness.md) re-implemented
independently in Python, for the script tests that re-derive generated data bit for bit."""
M32 = 0xFFFFFFFF


def philox(ctr, key):
    """Philox4x32-10 block: 4 counter words, 2 key words -> 4 words."""
    c, k = list(ctr), list(key)
    for r in range(10):
        if r:
            k = [(k[0] + 0x9E3779B9) & M32, (k[1] + 0xBB67AE85) & M32]
        p0, p1 = 0xD2511F53 * c[0], 0xCD9E8D57 * c[2]
        c = [((p1 >> 32) ^ c[1] ^ k[0]) & M32, p1 & M32, ((p0 >> 32) ^ c[3] ^ k[1]) & M32, p0 & M32]
    return c


def fnv(s):
    h = 2166136261
    for ch in s.encode():
        h = ((h ^ ch) * 16777619) & M32
    return h


class Stream:
    """Stream (seed, domain, a, b): word j is word j % 4 of block ctr = (j // 4, b, a, fnv(domain))."""

    def __init__(self, seed, domain, a, b):
        self.key, self.ctr, self.j, self.words = [seed & M32, seed >> 32], (b, a, fnv(domain)), 0, []

    def word(self):
        if self.j % 4 == 0:
            self.words = philox([self.j // 4, *self.ctr], self.key)
        w = self.words[self.j % 4]
        self.j += 1
        return w

    def below(self, n):
        return (self.word() * n) >> 32
