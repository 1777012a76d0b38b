# Oracle for the GGUF plugin: the `gguf` Python package (llama.cpp's gguf-py) and
# slmops must read each other's files with identical names, shapes, types and bytes.
import hashlib
import json
import os
import subprocess
import sys

import numpy as np
import gguf

dump, tmp = sys.argv[1], sys.argv[2]


def fail(msg):
    print("FAIL: " + msg)
    sys.exit(1)


def write_with_python(path):
    w = gguf.GGUFWriter(path, "llama")
    w.add_uint8("t.u8", 200)
    w.add_int8("t.i8", -100)
    w.add_uint16("t.u16", 60000)
    w.add_int16("t.i16", -30000)
    w.add_uint32("t.u32", 4000000000)
    w.add_int32("t.i32", -2000000000)
    w.add_float32("t.f32", 0.1)
    w.add_bool("t.bool", True)
    w.add_uint64("t.u64", 2**64 - 1)
    w.add_int64("t.i64", -2**63)
    w.add_float64("t.f64", 1.0 / 3)
    w.add_string("t.string", "héllo, wörld")
    w.add_array("t.ints", [1, -2, 3])
    w.add_array("t.floats", [0.5, 1.5])
    w.add_array("t.strings", ["a", "", "▁token"])
    w.add_array("t.bools", [True, False])
    rng = np.random.default_rng(7)
    w.add_tensor("w.f32", rng.standard_normal((3, 5)).astype(np.float32))
    w.add_tensor("w.f16", rng.standard_normal((4, 7)).astype(np.float16))
    q8 = rng.integers(0, 256, size=(2, 68), dtype=np.uint8)   # 2 rows of 64 q8_0 elements
    w.add_tensor("w.q8_0", q8, raw_dtype=gguf.GGMLQuantizationType.Q8_0)
    w.add_tensor("v.f32", np.arange(11, dtype=np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def field_value(f):
    """A reader field as plain Python: ints, floats, bytes for strings, lists."""
    def one(t, part):
        if t == gguf.GGUFValueType.STRING:
            return bytes(part)
        v = part[0].item()
        return bool(v) if t == gguf.GGUFValueType.BOOL else v
    if f.types[0] == gguf.GGUFValueType.ARRAY:
        return [one(f.types[1], f.parts[i]) for i in f.data]
    return one(f.types[0], f.parts[f.data[0]])


def python_view(path):
    r = gguf.GGUFReader(path)
    kv = [(k, int(f.types[0]), int(f.types[1]) if len(f.types) > 1 else None, field_value(f))
          for k, f in r.fields.items() if not k.startswith("GGUF.")]
    ts = [(t.name, int(t.tensor_type), [int(x) for x in t.shape], int(t.n_bytes),
           hashlib.sha256(t.data.tobytes()).hexdigest()) for t in r.tensors]
    return kv, ts


def slmops_view(path):
    out = subprocess.run([dump, path], capture_output=True, text=True)
    if out.returncode != 0:
        fail("gguf-dump %s: %s" % (path, out.stderr.strip()))
    d = json.loads(out.stdout)

    def conv(t, v):
        if t == 8:
            return bytes.fromhex(v)
        if t in (6, 12) or t == 7:
            return v
        return int(v)
    kv = []
    for e in d["kv"]:
        et = e.get("elem_type")
        val = [conv(et, x) for x in e["value"]] if e["type"] == 9 else conv(e["type"], e["value"])
        kv.append((e["key"], e["type"], et, val))
    ts = [(t["name"], t["type"], t["ne"], t["nbytes"], t["sha256"]) for t in d["tensors"]]
    return kv, ts


def same_kv(a, b, what):
    if len(a) != len(b):
        fail("%s: %d metadata entries vs %d" % (what, len(a), len(b)))
    for x, y in zip(a, b):
        if x[:3] != y[:3]:
            fail("%s: entry %s %s vs %s %s" % (what, x[0], x[1:3], y[0], y[1:3]))
        vx, vy = x[3], y[3]
        if x[1] == 6 or x[2] == 6:   # f32: compare as float32
            vx = np.float32(vx).tolist() if x[1] != 9 else [np.float32(v).item() for v in vx]
            vy = np.float32(vy).tolist() if y[1] != 9 else [np.float32(v).item() for v in vy]
        if vx != vy:
            fail("%s: key %s: %r vs %r" % (what, x[0], vx, vy))


def same_tensors(a, b, what):
    if a != b:
        for x, y in zip(a, b):
            if x != y:
                fail("%s: tensor %r vs %r" % (what, x, y))
        fail("%s: %d tensors vs %d" % (what, len(a), len(b)))


py_file = os.path.join(tmp, "from-python.gguf")
write_with_python(py_file)

# 1. slmops reads what gguf-py wrote.
pkv, pts = python_view(py_file)
skv, sts = slmops_view(py_file)
same_kv(pkv, skv, "gguf-py file read by slmops")
same_tensors(pts, sts, "gguf-py file read by slmops")
if len(pts) != 4 or {t[1] for t in pts} != {0, 1, 8}:
    fail("the gguf-py file lacks the f32/f16/q8_0 tensors: %r" % (pts,))

# 2. gguf-py reads what slmops wrote (a copy made through the container).
sl_file = os.path.join(tmp, "from-slmops.gguf")
out = subprocess.run([dump, "--copy", py_file, sl_file], capture_output=True, text=True)
if out.returncode != 0:
    fail("gguf-dump --copy: " + out.stderr.strip())
ckv, cts = python_view(sl_file)
same_kv(pkv, ckv, "slmops file read by gguf-py")
same_tensors(pts, cts, "slmops file read by gguf-py")

# 3. The same for a real model written by slmops.
fx = os.environ.get("SLMOPS_FIXTURES", "")
model = os.path.join(fx, "gguf", "llama-2-tiny-random.gguf")
if os.path.exists(model):
    copy = os.path.join(tmp, "model-copy.gguf")
    subprocess.run([dump, "--copy", model, copy], check=True)
    okv, ots = python_view(model)
    ckv, cts = python_view(copy)
    same_kv(okv, ckv, "model copy read by gguf-py")
    same_tensors(ots, cts, "model copy read by gguf-py")
    n = 3
else:
    print("note: %s not found; the model copy check did not run" % model)
    n = 2

print("%d passed, 0 failed" % n)
