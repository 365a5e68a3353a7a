# Incremental decoding and sampling (`longvq generate`, docs/generate.md).
# test_decode: the decoder's logits at every position against the double reference and the fast
# batched forward (5 models, up to 64 chunks), reset, flat memory, the sampler's distribution.
lv_unit_test(test_decode)
