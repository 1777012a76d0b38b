#!/usr/bin/env python3
# Compares slmops' quantizers (through quant-tool) with the gguf package's numpy
# ports of ggml's reference quantizers (bytes where it can quantize, else values) and
# with llama.cpp's own llama-quantize (the peer folder given as the second argument).
import os
import struct
import subprocess
import sys
import tempfile

import numpy as np
import gguf
from gguf import GGMLQuantizationType as T
from gguf import quants

COLS = 4096
# slmops name -> GGUF type; q8_0, q4_0 and q4_k are the acceptance minimum.
TYPES = [("q8_0", T.Q8_0), ("q4_0", T.Q4_0), ("q4_1", T.Q4_1), ("q5_0", T.Q5_0),
         ("q5_1", T.Q5_1), ("q4_k", T.Q4_K), ("q5_k", T.Q5_K), ("q6_k", T.Q6_K)]
REQUIRED_BYTES = {"q8_0", "q4_0"}


def test_rows():
    rng = np.random.default_rng(20240607)
    rows = [rng.standard_normal((24, COLS))]
    rows.append(np.zeros((1, COLS)))                      # zero scales
    rows.append(np.full((1, COLS), 0.75))                 # constant blocks
    tie = rng.standard_normal((1, COLS))
    tie[0, ::32], tie[0, 1::32] = 3.0, -3.0               # equal magnitudes, both signs
    rows.append(tie)
    rows.append(rng.standard_normal((2, COLS)) * 1e-4)    # tiny (f16 subnormal scales)
    rows.append(rng.standard_normal((2, COLS)) * 300.0)   # large
    rows.append(rng.uniform(-1, 1, (2, COLS)))
    rows.append(rng.uniform(0.1, 2, (2, COLS)))           # all positive: min > 0
    rows.append(rng.standard_t(2, (2, COLS)))             # heavy tails / outliers
    return np.concatenate(rows).astype(np.float32)


def run_tool(tool, *args):
    subprocess.run([tool, *args], check=True)


# llama-quantize's names for the types, with --pure so that every matrix gets one.
PEER_NAMES = {"q8_0": "Q8_0", "q4_0": "Q4_0", "q4_1": "Q4_1", "q5_0": "Q5_0", "q5_1": "Q5_1",
              "q4_k": "Q4_K", "q5_k": "Q5_K", "q6_k": "Q6_K"}
TENSOR = "blk.0.attn_q.weight"


def one_tensor_model(path, x):
    """The smallest llama GGUF llama-quantize accepts: hyper-parameters and one matrix."""
    w = gguf.GGUFWriter(path, arch="llama")
    w.add_context_length(256)
    w.add_embedding_length(COLS)
    w.add_block_count(1)
    w.add_feed_forward_length(COLS)
    w.add_head_count(32)
    w.add_head_count_kv(32)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_file_type(0)
    w.add_tensor(TENSOR, x)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def legacy_imatrix(path, imatrix):
    """llama.cpp's legacy imatrix file: entries of (name, ncall, values), then the
    chunk count and the dataset name."""
    name = TENSOR.encode()
    with open(path, "wb") as f:
        f.write(struct.pack("<ii", 1, len(name)) + name)
        f.write(struct.pack("<ii", 1, imatrix.size) + imatrix.astype(np.float32).tobytes())
        f.write(struct.pack("<ii", 1, 5) + b"x.txt")


def peer_quantize(peer, tmp, src_gguf, name, imatrix_file):
    out = os.path.join(tmp, name + "-peer.gguf")
    cmd = [os.path.join(peer, "llama-quantize"), "--pure"]
    if imatrix_file:
        cmd += ["--imatrix", imatrix_file]
    subprocess.run(cmd + [src_gguf, out, PEER_NAMES[name]], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    t = next(t for t in gguf.GGUFReader(out).tensors if t.name == TENSOR)
    return np.asarray(t.data).view(np.uint8).reshape(-1)


def compare_with_peer(tool, tmp, x, src, peer):
    """Second oracle: byte equality with llama.cpp's own llama-quantize, plain and
    with an importance matrix."""
    imatrix = (0.5 + np.abs(np.random.default_rng(5).standard_normal(COLS))).astype(np.float32)
    ifile = os.path.join(tmp, "imatrix.f32")
    imatrix.tofile(ifile)
    ilegacy = os.path.join(tmp, "imatrix.dat")
    legacy_imatrix(ilegacy, imatrix)
    model = os.path.join(tmp, "x.gguf")
    one_tensor_model(model, x)
    failures = 0
    for name, qtype in TYPES:
        for im in (None, imatrix):
            qfile = os.path.join(tmp, name + "-ggml.bin")
            run_tool(tool, "quantize", name, str(COLS), src, qfile, *([ifile] if im is not None else []))
            ours = np.fromfile(qfile, dtype=np.uint8)
            theirs = peer_quantize(peer, tmp, model, name, ilegacy if im is not None else None)
            what = f"{name}{' with imatrix' if im is not None else ''}"
            if ours.size == theirs.size and np.array_equal(ours, theirs):
                print(f"ok   {what}: bytes identical to llama.cpp's llama-quantize")
            else:
                size = gguf.GGML_QUANT_SIZES[qtype][1]
                bad = np.any((ours != theirs[:ours.size]).reshape(-1, size), axis=1)
                print(f"FAIL {what}: {int(bad.sum())} of {bad.size} blocks differ from llama.cpp")
                failures += 1
    return failures


def can_quantize(qtype, x):
    try:
        quants.quantize(x[:1, :256], qtype)
        return True
    except NotImplementedError:
        return False


def main():
    tool, peer = sys.argv[1], sys.argv[2]
    x = test_rows()
    failures = 0
    try:
        from importlib.metadata import version as pkg_version
        version = pkg_version("gguf")
    except Exception:
        version = "?"
    with tempfile.TemporaryDirectory() as tmp:
        src = os.path.join(tmp, "x.f32")
        x.tofile(src)
        for name, qtype in TYPES:
            qfile = os.path.join(tmp, name + ".bin")
            yfile = os.path.join(tmp, name + ".f32")
            run_tool(tool, "quantize", name, str(COLS), src, qfile)
            run_tool(tool, "dequantize", name, str(COLS), qfile, yfile)
            ours = np.fromfile(qfile, dtype=np.uint8).reshape(x.shape[0], -1)
            ours_f = np.fromfile(yfile, dtype=np.float32).reshape(x.shape)
            if can_quantize(qtype, x):
                theirs = quants.quantize(x, qtype).reshape(ours.shape)
                block, size = gguf.GGML_QUANT_SIZES[qtype]
                diff = np.any((ours != theirs).reshape(-1, size), axis=1)
                if diff.any():
                    first = int(np.argmax(diff))
                    print(f"FAIL {name}: {int(diff.sum())} of {diff.size} blocks differ from "
                          f"gguf's; first is block {first}")
                    failures += 1
                else:
                    print(f"ok   {name}: {ours.size} bytes identical to gguf {version}")
            else:
                if name in REQUIRED_BYTES:
                    print(f"FAIL {name}: gguf {version} cannot quantize it")
                    failures += 1
                print(f"note {name}: gguf {version} cannot quantize {qtype.name}; "
                      "comparing its dequantization of slmops' bytes instead")
            # Both sides read the same bytes the same way.
            theirs_f = quants.dequantize(ours, qtype).reshape(x.shape)
            err = np.max(np.abs(theirs_f - ours_f) / (np.abs(theirs_f) + 1e-30))
            if not np.all(np.isfinite(ours_f)) or err > 1e-6:
                print(f"FAIL {name}: dequantized values differ from gguf's (max rel {err:.3g})")
                failures += 1
            else:
                print(f"ok   {name}: dequantization matches gguf's (max rel {err:.3g})")
        failures += compare_with_peer(tool, tmp, x, src, peer)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
