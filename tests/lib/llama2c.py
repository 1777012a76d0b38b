"""A llama2.c checkpoint (run.c's format) read into float64 numpy arrays, for the
numpy oracles (tests/cli/eval_task_oracle.py, tests/distill/kd_oracle.py)."""
import struct

import numpy as np


def load_checkpoint(path):
    """{emb, rms_att, wq, wk, wv, wo, rms_ffn, w1, w2, w3, rms_final, fr, fi, cls} with
    run.c's shapes (layers outermost), and dim, nl, nh, nkv, hs. A negative vocabulary
    size in the header means the classifier is stored after the weights."""
    with open(path, "rb") as f:
        dim, hidden, nl, nh, nkv, vocab, seq = struct.unpack("7i", f.read(28))
        w = np.frombuffer(f.read(), dtype=np.float32)
    hs = dim // nh
    kv = nkv * hs
    shapes = [("emb", (abs(vocab), dim)), ("rms_att", (nl, dim)), ("wq", (nl, dim, dim)),
              ("wk", (nl, kv, dim)), ("wv", (nl, kv, dim)), ("wo", (nl, dim, dim)),
              ("rms_ffn", (nl, dim)), ("w1", (nl, hidden, dim)), ("w2", (nl, dim, hidden)),
              ("w3", (nl, hidden, dim)), ("rms_final", (dim,)),
              ("fr", (seq, hs // 2)), ("fi", (seq, hs // 2))]
    p, m = 0, {}
    for name, shp in shapes:
        n = int(np.prod(shp))
        m[name] = w[p:p + n].reshape(shp).astype(np.float64)
        p += n
    m["cls"] = (m["emb"] if vocab > 0
                else w[p:p + abs(vocab) * dim].reshape(abs(vocab), dim).astype(np.float64))
    m.update(dim=dim, nl=nl, nh=nh, nkv=nkv, hs=hs)
    return m
