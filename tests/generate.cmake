# Incremental decoding and sampling (`longvq generate`, docs/generate.md).
# test_decode: the decoder's logits at every position against the double reference and the fast
# batched forward (5 models, up to 64 chunks), reset, flat memory, the sampler's distribution.
lv_unit_test(test_decode)
# generate_cli: `longvq generate` on tiny trained models: determinism by seed, bytes out, speed on
# stderr; bad input (encoder model, prompt byte outside V, temperature, top-k, another shape) exit 2.
lv_script_test(generate_cli generate_cli.sh)
