#!/usr/bin/env python3
"""Load a longvq checkpoint with plain h5py (see docs/checkpoints.md).

    from load_checkpoint import load_checkpoint
    ck = load_checkpoint("run/ckpt_00001000.h5")
    ck["model"]        # PyTorch-style state dict: "layers.3.mixer.ema.delta" -> numpy float32 array
    ck["exp_avg"], ck["exp_avg_sq"]   # AdamW moments, same names (trained tensors only)
    ck["meta"]         # step, samples_seen, seed, world_size, zero, restart_count, build, created
    ck["config"]       # the effective YAML config
    verify_digests("run/ckpt_00001000.h5")  # [] if every dataset matches its crc32 (also model files)

    # into PyTorch (same names and shapes as the spec's state_dict):
    # model.load_state_dict({k: torch.from_numpy(v) for k, v in ck["model"].items()})

Run as a script: prints a summary; with --manifest FILE (written by tests/test_checkpoint) checks
every name, shape and value against it and exits non-zero on any difference.
"""
import sys
import zlib

import h5py
import numpy as np


def load_state_dict(path, group="model"):
    """name -> numpy array for every dataset under /<group>, with '/' mapped back to '.'."""
    sd = {}
    with h5py.File(path, "r") as f:
        def visit(name, obj):
            if isinstance(obj, h5py.Dataset):
                sd[name.replace("/", ".")] = obj[()]
        f[group].visititems(visit)
    return sd


def load_checkpoint(path):
    with h5py.File(path, "r") as f:
        meta = {k: (v.decode() if isinstance(v, bytes) else int(v)) for k, v in f.attrs.items()}
        config = f["config"][0].decode()
    return {
        "model": load_state_dict(path),
        "exp_avg": load_state_dict(path, "optimizer/exp_avg"),
        "exp_avg_sq": load_state_dict(path, "optimizer/exp_avg_sq"),
        "meta": meta,
        "config": config,
    }


def verify_digests(path):
    """Problems with the crc32 digests of a checkpoint or model file: [] if every dataset's data
    matches its `crc32` attribute (float32 little-endian bytes; /config: its text). A file written
    before digests (no root attribute `digest`) has none to check: ["no digests"]."""
    bad = []
    with h5py.File(path, "r") as f:
        if f.attrs.get("digest") != b"crc32":
            return ["no digests"]
        def visit(name, obj):
            if not isinstance(obj, h5py.Dataset):
                return
            data = obj[()]
            raw = data.reshape(-1)[0] if name == "config" else data.astype("<f4").tobytes()
            if "crc32" not in obj.attrs or zlib.crc32(raw) != int(obj.attrs["crc32"]):
                bad.append(f"{name}: does not match its crc32")
        f.visititems(visit)
    return bad


def check_manifest(ck, manifest):
    """Lines 'name ndim d0 d1 sum_of_squares first_value' (tests/test_checkpoint_corrupt.c)."""
    bad, seen = [], set()
    for line in open(manifest):
        name, ndim, d0, d1, sq, first = line.split()
        shape = (int(d0),) if ndim == "1" else (int(d0), int(d1))
        seen.add(name)
        x = ck["model"].get(name)
        if x is None:
            bad.append(f"{name}: missing")
            continue
        if x.shape != shape or x.dtype != np.float32:
            bad.append(f"{name}: shape {x.shape} {x.dtype}, want {shape} float32")
            continue
        got = float(np.sum(x.astype(np.float64) ** 2))
        if abs(got - float(sq)) > 1e-9 * float(sq) or np.float32(first) != x.flat[0]:
            bad.append(f"{name}: values differ (sum of squares {got!r} vs {sq})")
        trained = ".codebook." not in name
        for k in ("exp_avg", "exp_avg_sq"):
            m = ck[k].get(name)
            if trained and (m is None or m.shape != shape):
                bad.append(f"{name}: {k} missing or misshapen")
            if not trained and m is not None:
                bad.append(f"{name}: a codebook has {k}")
    extra = set(ck["model"]) - seen
    if extra:
        bad.append(f"tensors not in the manifest: {sorted(extra)}")
    if not (ck["exp_avg_sq"] and all((v >= 0).all() for v in ck["exp_avg_sq"].values())):
        bad.append("exp_avg_sq empty or negative")
    return bad


def main(argv):
    if len(argv) < 2:
        print(__doc__)
        return 2
    ck = load_checkpoint(argv[1])
    meta = ck["meta"]
    if meta.get("format") != "longvq-checkpoint":
        print(f"{argv[1]}: not a longvq checkpoint (format {meta.get('format')!r})")
        return 1
    n = sum(v.size for v in ck["model"].values())
    print(f"{argv[1]}: step {meta['step']}, {meta['samples_seen']} samples seen, written by "
          f"{meta['world_size']} rank(s), zero {meta['zero']}; {len(ck['model'])} tensors, {n} floats; "
          f"{len(ck['exp_avg'])} with AdamW moments")
    for name in list(ck["model"])[:3]:
        print(f"  {name} {ck['model'][name].shape}")
    digests = verify_digests(argv[1])
    print(f"digests: {'every dataset matches its crc32' if not digests else '; '.join(digests)}")
    if "--manifest" in argv:
        bad = check_manifest(ck, argv[argv.index("--manifest") + 1])
        for b in bad:
            print("FAIL", b)
        print(f"manifest: {'all names, shapes and values match' if not bad else str(len(bad)) + ' problem(s)'}")
        return 1 if bad or digests else 0
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
