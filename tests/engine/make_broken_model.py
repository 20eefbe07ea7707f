#!/usr/bin/python3
"""Writes a copy of a model directory with one tensor overwritten, to test the
output guard: a model whose numbers go bad must give an error, not a vector.

  make_broken_model.py SRC_DIR OUT_DIR TENSOR VALUE
VALUE: zero | inf | nan. Only model.safetensors is rewritten (same header,
same layout); the other files are copied."""
import json
import os
import shutil
import struct
import sys

import numpy as np


def main(src, out, tensor, value):
    os.makedirs(out, exist_ok=True)
    for fn in os.listdir(src):
        p = os.path.join(src, fn)
        if os.path.isfile(p) and fn != "model.safetensors":
            shutil.copyfile(p, os.path.join(out, fn))
    with open(os.path.join(src, "model.safetensors"), "rb") as f:
        blob = bytearray(f.read())
    n = struct.unpack("<Q", blob[:8])[0]
    header = json.loads(blob[8:8 + n])
    name = tensor if tensor in header else "model." + tensor
    meta = header[name]
    a, b = meta["data_offsets"]
    a += 8 + n
    b += 8 + n
    v = {"zero": 0.0, "inf": np.inf, "nan": np.nan}[value]
    count = int(np.prod(meta["shape"]))
    if meta["dtype"] == "F32":
        blob[a:b] = np.full(count, v, dtype="<f4").tobytes()
    elif meta["dtype"] == "F16":
        blob[a:b] = np.full(count, v, dtype="<f2").tobytes()
    elif meta["dtype"] == "BF16":
        bits = (np.full(count, v, dtype="<f4").view("<u4") >> 16).astype("<u2")
        blob[a:b] = bits.tobytes()
    else:
        sys.exit("unsupported dtype " + meta["dtype"])
    with open(os.path.join(out, "model.safetensors"), "wb") as f:
        f.write(blob)
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 5:
        sys.exit(__doc__)
    sys.exit(main(*sys.argv[1:]))
