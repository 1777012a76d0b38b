#!/usr/bin/env python3
# Compares slmops' quantizers (through quant-tool) with the gguf package's numpy
# ports of ggml's reference quantizers: bytes where it can quantize, else values.
import ctypes
import glob
import os
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


def ggml_library():
    """llama.cpp's own quantizer (ggml_quantize_chunk) from llama-cpp-python, if any."""
    try:
        import llama_cpp
    except Exception:
        return None
    base = os.path.dirname(llama_cpp.__file__)
    for pattern in ("lib/libggml-base.so*", "lib/libggml.so*", "libggml-base.so*", "libggml.so*"):
        for path in sorted(glob.glob(os.path.join(base, pattern))):
            try:
                lib = ctypes.CDLL(path)
                fn = lib.ggml_quantize_chunk
            except (OSError, AttributeError):
                continue
            fn.restype = ctypes.c_size_t
            fn.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64,
                           ctypes.c_int64, ctypes.c_int64, ctypes.c_void_p]
            return fn, getattr(llama_cpp, "__version__", "?")
    return None


def ggml_quantize(fn, qtype, x, nbytes, imatrix=None):
    out = np.zeros(nbytes, dtype=np.uint8)
    x = np.ascontiguousarray(x, dtype=np.float32)
    im = None if imatrix is None else np.ascontiguousarray(imatrix, dtype=np.float32)
    fn(int(qtype), x.ctypes.data, out.ctypes.data, 0, x.shape[0], x.shape[1],
       None if im is None else im.ctypes.data)
    return out


def compare_with_ggml(tool, tmp, x, src):
    """Second oracle: byte equality with llama.cpp itself, plain and with an imatrix."""
    found = ggml_library()
    if not found:
        print("note llama-cpp-python is not installed: no comparison with llama.cpp itself")
        return 0
    fn, version = found
    imatrix = (0.5 + np.abs(np.random.default_rng(5).standard_normal(COLS))).astype(np.float32)
    ifile = os.path.join(tmp, "imatrix.f32")
    imatrix.tofile(ifile)
    failures = 0
    for name, qtype in TYPES:
        for im in (None, imatrix):
            qfile = os.path.join(tmp, name + "-ggml.bin")
            run_tool(tool, "quantize", name, str(COLS), src, qfile, *([ifile] if im is not None else []))
            ours = np.fromfile(qfile, dtype=np.uint8)
            theirs = ggml_quantize(fn, qtype, x, ours.size, im)
            what = f"{name}{' with imatrix' if im is not None else ''}"
            if np.array_equal(ours, theirs):
                print(f"ok   {what}: bytes identical to llama.cpp (llama-cpp-python {version})")
            else:
                size = gguf.GGML_QUANT_SIZES[qtype][1]
                bad = np.any((ours != theirs).reshape(-1, size), axis=1)
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
    tool = sys.argv[1]
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
        failures += compare_with_ggml(tool, tmp, x, src)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
