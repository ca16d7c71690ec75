#!/usr/bin/env python3
"""Write the MNIST training images that `jebm mnist --digits D --counts C` uses, and nothing else, as IDX (gzip).

Why: the GPU machine gets the working tree through a 64 MiB limit, most of it taken by .device-deps; the digits
2/3/6 at 5600/2800/1400 are 1.4 MB gzipped where the full set is 9.7 MB. jebm selects the first C[k] images of
digit D[k] in file order (experiments/datasets.cpp, select_digits), and this keeps exactly those in the same
order, so `jebm mnist` on the subset trains on the same images in the same order as on the full files.

Usage: scripts/mnist-subset.py SRC_DIR DST_DIR [--digits 2,3,6] [--counts 5600,2800,1400]
Standard library only. Tested by hand: `jebm mnist` metrics are identical on the full and the subset folder.
"""
import argparse
import gzip
import os
import struct
import sys


def read_idx(path):
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        data = f.read()
    if len(data) < 8:
        sys.exit(f"mnist-subset: {path}: {len(data)} bytes, too short for an IDX header")
    ndim = data[3]
    dims = struct.unpack(">" + "I" * ndim, data[4:4 + 4 * ndim])
    header = 4 + 4 * ndim
    record = 1
    for d in dims[1:]:
        record *= d
    if len(data) != header + dims[0] * record:
        sys.exit(f"mnist-subset: {path}: size {len(data)} does not match the header's dims {dims}")
    return dims, data[header:], record


def find(src, name):
    for candidate in (name, name + ".gz"):
        path = os.path.join(src, candidate)
        if os.path.isfile(path):
            return path
    sys.exit(f"mnist-subset: neither {name} nor {name}.gz in {src}")


def write_idx(path, magic_type, dims, payload):
    tmp = path + ".tmp"
    with gzip.open(tmp, "wb") as f:
        f.write(bytes([0, 0, magic_type, len(dims)]))
        f.write(struct.pack(">" + "I" * len(dims), *dims))
        f.write(payload)
    os.replace(tmp, path)  # no half-written file under the final name


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("src")
    ap.add_argument("dst")
    ap.add_argument("--digits", default="2,3,6")
    ap.add_argument("--counts", default="5600,2800,1400")
    a = ap.parse_args()
    digits = [int(x) for x in a.digits.split(",")]
    counts = [int(x) for x in a.counts.split(",")]
    if len(digits) != len(counts):
        sys.exit(f"mnist-subset: --digits {a.digits} and --counts {a.counts} differ in length")
    idims, images, record = read_idx(find(a.src, "train-images-idx3-ubyte"))
    ldims, labels, _ = read_idx(find(a.src, "train-labels-idx1-ubyte"))
    if idims[0] != ldims[0]:
        sys.exit(f"mnist-subset: {idims[0]} images but {ldims[0]} labels")
    remaining = dict(zip(digits, counts))
    keep = []
    for i, label in enumerate(labels):
        if remaining.get(label, 0) > 0:
            keep.append(i)
            remaining[label] -= 1
    short = {d: n for d, n in remaining.items() if n > 0}
    if short:
        sys.exit(f"mnist-subset: not enough images of digits {short}")
    os.makedirs(a.dst, exist_ok=True)
    write_idx(os.path.join(a.dst, "train-images-idx3-ubyte.gz"), 0x08, (len(keep),) + tuple(idims[1:]),
              b"".join(images[i * record:(i + 1) * record] for i in keep))
    write_idx(os.path.join(a.dst, "train-labels-idx1-ubyte.gz"), 0x08, (len(keep),), bytes(labels[i] for i in keep))
    print(f"mnist-subset: {len(keep)} images of digits {digits} ({counts}) -> {a.dst}")


if __name__ == "__main__":
    main()
