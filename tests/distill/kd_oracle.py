"""Oracle for the kd method's loss (trainer-distill): the batch, the student's weights and
the total loss that `slmops distill --dump-grads` wrote, against the same loss computed
here in numpy: both models' forward passes written out (run.c's arithmetic; the teacher
read from its llama2.c checkpoint, not through slmops), documents within a row
attending only to themselves, the teacher's logits cut to their top k, and
  loss = (1 - alpha) CE + alpha T^2 D,  D = KL(p || q) (forward-kl), KL(q || p)
(reverse-kl) or 1/2 KL(p || m) + 1/2 KL(q || m), m = (p + q) / 2 (jsd), p and q the teacher's and the student's softmax(logits / T), averaged
over the positions with a target.
usage: kd_oracle.py DUMP TEACHER.bin LOSS ALPHA T TOP_K"""
import json
import math
import os
import struct
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from llama2c import load_checkpoint as teacher  # noqa: E402

dump, teacher_bin, kind = sys.argv[1:4]
alpha, T, top_k = float(sys.argv[4]), float(sys.argv[5]), int(sys.argv[6])

raw = open(dump, "rb").read()
n = struct.unpack("<Q", raw[:8])[0]
head = json.loads(raw[8:8 + n])
meta = head.pop("__metadata__")
data = raw[8 + n:]


def tensor(k, dtype="<f4"):
    """A dumped tensor in its safetensors shape (rows outermost)."""
    a, b = head[k]["data_offsets"]
    t = np.frombuffer(data[a:b], dtype=dtype).reshape(head[k]["shape"])
    return t.astype(np.float64) if dtype == "<f4" else t


def student():
    L = 1 + max(int(k.split(".")[1]) for k in head if k.startswith("blk."))
    get = lambda k: tensor(k)
    m = {"emb": get("token_embd.weight"), "rms_final": get("output_norm.weight").ravel()}
    m["cls"] = get("output.weight") if "output.weight" in head else m["emb"]
    for name, key in [("rms_att", "attn_norm"), ("wq", "attn_q"), ("wk", "attn_k"),
                      ("wv", "attn_v"), ("wo", "attn_output"), ("rms_ffn", "ffn_norm"),
                      ("w1", "ffn_gate"), ("w2", "ffn_down"), ("w3", "ffn_up")]:
        m[name] = [get("blk.%d.%s.weight" % (l, key)) for l in range(L)]
    m["rms_att"] = [w.ravel() for w in m["rms_att"]]
    m["rms_ffn"] = [w.ravel() for w in m["rms_ffn"]]
    dim = m["emb"].shape[1]
    hs = 8                       # student-micro: 32 wide, 4 heads
    m.update(nl=L, nh=dim // hs, nkv=m["wk"][0].shape[0] // hs, hs=hs)
    return m


def rmsnorm(x, g):
    return x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + 1e-5) * g


def rope(v, hs):
    """v [P, n*hs]: adjacent pairs rotated by position (run.c)."""
    P, D = v.shape
    i = np.arange(0, D, 2)
    freq = 1.0 / (10000.0 ** ((i % hs) / hs))
    ang = np.arange(P)[:, None] * freq[None, :]
    c, s = np.cos(ang), np.sin(ang)
    out = v.copy()
    out[:, 0::2] = v[:, 0::2] * c - v[:, 1::2] * s
    out[:, 1::2] = v[:, 0::2] * s + v[:, 1::2] * c
    return out


def forward(m, toks):
    """Logits [P, V] of one document, causal attention from position 0."""
    hs, nh, rep = m["hs"], m["nh"], m["nh"] // m["nkv"]
    x = m["emb"][toks]
    P = len(toks)
    mask = np.triu(np.full((P, P), -np.inf), 1)
    for l in range(m["nl"]):
        xb = rmsnorm(x, m["rms_att"][l])
        q, k, v = rope(xb @ m["wq"][l].T, hs), rope(xb @ m["wk"][l].T, hs), xb @ m["wv"][l].T
        att = np.zeros_like(q)
        for h in range(nh):
            kh = (h // rep) * hs
            sc = q[:, h * hs:(h + 1) * hs] @ k[:, kh:kh + hs].T / math.sqrt(hs) + mask
            sc = np.exp(sc - sc.max(axis=1, keepdims=True))
            sc /= sc.sum(axis=1, keepdims=True)
            att[:, h * hs:(h + 1) * hs] = sc @ v[:, kh:kh + hs]
        x = x + att @ m["wo"][l].T
        xb = rmsnorm(x, m["rms_ffn"][l])
        a, b = xb @ m["w1"][l].T, xb @ m["w3"][l].T
        x = x + (a / (1 + np.exp(-a)) * b) @ m["w2"][l].T
    return rmsnorm(x, m["rms_final"]) @ m["cls"].T


def log_softmax(z):
    z = z - z.max(axis=-1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))


toks = tensor("batch.tokens", "<i4").ravel()
tgts = tensor("batch.targets", "<i4").ravel()
docs = tensor("batch.doc", "<i4").reshape(head["batch.doc"]["shape"])
ctx = docs.shape[-1]
S, Tm = student(), teacher(teacher_bin)
ce = kl = 0.0
scored = 0
for r in range(docs.shape[0]):
    row = docs[r]
    for d in sorted(set(row.tolist()) - {-1}):
        idx = np.nonzero(row == d)[0] + r * ctx
        ls, lt = forward(S, toks[idx]), forward(Tm, toks[idx])
        for j, pos in enumerate(idx):
            y = tgts[pos]
            if y < 0:
                continue
            s, t = ls[j], lt[j].copy()
            if 0 < top_k < len(t):
                kth = np.sort(t)[-top_k]
                t[t < kth] = kth - 30.0
            ce -= log_softmax(s)[y]
            lp, lq = log_softmax(t / T), log_softmax(s / T)
            p, q = np.exp(lp), np.exp(lq)
            if kind == "jsd":
                lm = np.log((p + q) / 2)
                kl += 0.5 * np.sum(p * (lp - lm)) + 0.5 * np.sum(q * (lq - lm))
            else:
                kl += np.sum(p * (lp - lq)) if kind == "forward-kl" else np.sum(q * (lq - lp))
            scored += 1
ce, kl = ce / scored, kl / scored
want = (1 - alpha) * ce + alpha * T * T * kl
got = float(meta["loss"])
print(f"oracle: CE {ce:.6f}, {kind} {kl:.6f}, loss {want:.6f} over {scored} positions; "
      f"slmops: loss {got:.6f} over {meta['n_scored']}")
ok = abs(got - want) <= 1e-4 * max(1.0, abs(want)) and int(meta["n_scored"]) == scored
sys.exit(0 if ok else 1)
