#!/usr/bin/env python3
"""What `slmops finetune --dump-grads` writes, checked against step 1 of the same run's
--log (whose grad_norm is the norm before clipping): the loss equal within 1e-6 and the global norm of the dumped
gradients within 1e-5 relative; every trainable tensor has its gradient and the batch
is there; for LoRA, A's gradients are exactly zero (B starts at zero).
usage: dump_check.py DUMP LOG METHOD"""
import json
import math
import struct
import sys

dump, log, method = sys.argv[1:]
raw = open(dump, "rb").read()
n = struct.unpack("<Q", raw[:8])[0]
head = json.loads(raw[8:8 + n])
meta = head.pop("__metadata__")
data = raw[8 + n:]


def floats(k):
    a, b = head[k]["data_offsets"]
    return struct.unpack("<%df" % ((b - a) // 4), data[a:b])


def rel(a, b):
    return abs(a - b) / abs(b)


def check(cond, what):
    if not cond:
        sys.exit(what)


check(meta.get("format") == "slmops-grad-dump" and meta.get("method") == method, meta)
params = [k for k in head if not k.endswith(".grad") and not k.startswith("batch.")]
check(params and all(k + ".grad" in head for k in params), "a gradient is missing")
for k in ("batch.tokens", "batch.targets", "batch.doc"):
    check(head.get(k, {}).get("dtype") == "I32", "no %s" % k)
norm = math.sqrt(sum(x * x for k in params for x in floats(k + ".grad")))
step1 = json.loads(open(log).readline())
check(rel(float(meta["loss"]), step1["loss"]) < 1e-6, "loss %s, step 1 %s" % (meta["loss"], step1["loss"]))
check(rel(norm, step1["grad_norm"]) < 1e-5, "gradient norm %.9g, step 1 %.9g" % (norm, step1["grad_norm"]))
if method == "lora":
    check(len(json.loads(meta["adapters"])) * 2 == len(params), "adapters and tensors disagree")
    check(all(x == 0 for k in params if k.endswith("lora_a") for x in floats(k + ".grad")),
          "a gradient of A is not zero while B is")
print("%d tensors, loss %s, gradient norm %.6g" % (len(params), meta["loss"], norm))
