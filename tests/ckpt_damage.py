#!/usr/bin/env python3
"""Damage longvq checkpoints and model files the way disks and tools do (tests; Debian's h5py).

    ckpt_damage.py datasets FILE              print the path of every dataset, one a line
    ckpt_damage.py zero FILE DATASET [INDEX]  zero one whole stored chunk of DATASET in place: its
                                              data and its fletcher32 together (the checksum of zeros
                                              is zero, so HDF5's check passes); INDEX defaults to the
                                              middle chunk. Prints the chunk's offset and size.
    ckpt_damage.py strip FILE                 remove the crc32 digests: a file as written before them
    ckpt_damage.py fuzz SRC OUTDIR N SEED     N damaged copies OUTDIR/NNN.h5 of SRC: a random byte
                                              flipped (2 in 3) or the file truncated at a random
                                              length; OUTDIR/trials.txt says which
"""
import os
import random
import shutil
import sys

import h5py


def datasets(path):
    out = []
    with h5py.File(path, "r") as f:
        f.visititems(lambda n, o: out.append("/" + n) if isinstance(o, h5py.Dataset) else None)
    return out


def zero_chunk(path, name, index=None):
    with h5py.File(path, "r") as f:
        dsid = f[name].id
        n = dsid.get_num_chunks()
        info = dsid.get_chunk_info(n // 2 if index is None else index)
    with open(path, "r+b") as raw:
        raw.seek(info.byte_offset)
        raw.write(b"\0" * info.size)
    return info.byte_offset, info.size


def strip(path):
    with h5py.File(path, "r+") as f:
        if "digest" in f.attrs:
            del f.attrs["digest"]
        for name in datasets(path):
            if "crc32" in f[name].attrs:
                del f[name].attrs["crc32"]


def fuzz(src, outdir, n, seed):
    rng = random.Random(seed)
    size = os.path.getsize(src)
    os.makedirs(outdir, exist_ok=True)
    with open(os.path.join(outdir, "trials.txt"), "w") as log:
        for i in range(n):
            out = os.path.join(outdir, f"{i:03d}.h5")
            shutil.copyfile(src, out)
            if rng.random() < 2 / 3:
                pos, bit = rng.randrange(size), 1 << rng.randrange(8)
                with open(out, "r+b") as f:
                    f.seek(pos)
                    b = f.read(1)[0]
                    f.seek(pos)
                    f.write(bytes([b ^ bit]))
                log.write(f"{i:03d} flip byte {pos} bit {bit}\n")
            else:
                length = rng.randrange(size)
                os.truncate(out, length)
                log.write(f"{i:03d} truncate to {length}\n")


def main(argv):
    if len(argv) >= 3 and argv[1] == "datasets":
        print("\n".join(datasets(argv[2])))
    elif len(argv) >= 4 and argv[1] == "zero":
        off, size = zero_chunk(argv[2], argv[3], int(argv[4]) if len(argv) > 4 else None)
        print(f"zeroed {size} bytes at {off} ({argv[3]})")
    elif len(argv) >= 3 and argv[1] == "strip":
        strip(argv[2])
    elif len(argv) >= 6 and argv[1] == "fuzz":
        fuzz(argv[2], argv[3], int(argv[4]), int(argv[5]))
    else:
        print(__doc__)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
