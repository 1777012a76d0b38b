"""Oracle for `slmops eval --task` (tests/cli/eval-task.sh): stories260K's forward pass
in numpy from the llama2.c checkpoint (run.c's arithmetic), greedy answers, choice
log-likelihoods (lm-evaluation-harness's acc and acc_norm), the normalization of
slmops(1) TASK FILES and Wilson intervals, all written here, then compared with the
JSON results slmops wrote. Token ids come from `slmops tokenize` (tested elsewhere).

usage: eval_task_oracle.py SLMOPS MODEL.gguf stories260K.bin tok512.bin TASK RESULTS"""
import json
import math
import os
import re
import struct
import subprocess
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from llama2c import load_checkpoint as load_bin  # noqa: E402


def rmsnorm(x, g):
    return x / np.sqrt(np.mean(x * x) + 1e-5) * g


def rope(v, pos, hs):
    out = v.copy()
    for i in range(0, len(v), 2):
        freq = 1.0 / (10000.0 ** ((i % hs) / hs))
        c, s = math.cos(pos * freq), math.sin(pos * freq)
        out[i], out[i + 1] = v[i] * c - v[i + 1] * s, v[i] * s + v[i + 1] * c
    return out


def forward_all(m, tokens):
    """Logits after every token of the sequence (run.c, one token at a time)."""
    nl, nh, hs = m["nl"], m["nh"], m["hs"]
    rep = nh // m["nkv"]
    K = [[] for _ in range(nl)]
    V = [[] for _ in range(nl)]
    out = []
    for pos, t in enumerate(tokens):
        x = m["emb"][t].copy()
        for l in range(nl):
            xb = rmsnorm(x, m["rms_att"][l])
            q = rope(m["wq"][l] @ xb, pos, hs)
            K[l].append(rope(m["wk"][l] @ xb, pos, hs))
            V[l].append(m["wv"][l] @ xb)
            att = np.zeros(nh * hs)
            for h in range(nh):
                kh = (h // rep) * hs
                qs = q[h * hs:(h + 1) * hs]
                sc = np.array([qs @ k[kh:kh + hs] for k in K[l]]) / math.sqrt(hs)
                sc = np.exp(sc - sc.max())
                sc /= sc.sum()
                att[h * hs:(h + 1) * hs] = sum(a * v[kh:kh + hs] for a, v in zip(sc, V[l]))
            x = x + m["wo"][l] @ att
            xb = rmsnorm(x, m["rms_ffn"][l])
            a, b = m["w1"][l] @ xb, m["w3"][l] @ xb
            x = x + m["w2"][l] @ (a / (1 + np.exp(-a)) * b)
        out.append(m["cls"] @ rmsnorm(x, m["rms_final"]))
    return out


def logprob(logits, t):
    mx = logits.max()
    return logits[t] - mx - math.log(np.exp(logits - mx).sum())


def load_pieces(path):
    pieces = []
    with open(path, "rb") as f:
        f.read(4)
        while True:
            hdr = f.read(8)
            if len(hdr) < 8:
                return pieces
            _, n = struct.unpack("fi", hdr)
            pieces.append(f.read(n).decode("utf-8", "replace"))


def detok(pieces, ids):
    text = ""
    for i, t in enumerate(ids):
        p = pieces[t]
        mt = re.fullmatch(r"<0x([0-9A-Fa-f]{2})>", p)
        p = chr(int(mt.group(1), 16)) if mt else p
        text += p.lstrip(" ") if i == 0 else p    # the first piece's dummy-prefix space
    return text


def tokenize(slmops, model, text):
    out = subprocess.run([slmops, "tokenize", "-m", model, "--ids", "--bos", "-p", text],
                         check=True, capture_output=True, text=True).stdout
    return [int(x) for x in out.split()]


def number(w):
    return re.fullmatch(r"[+-]?(\d{1,3}(,\d{3})+|\d*)(\.\d*)?", w) and re.search(r"\d", w)


def canon(w):
    neg = w.startswith("-")
    w = w.lstrip("+-").replace(",", "")
    i, _, f = w.partition(".")
    i = i.lstrip("0") or "0"
    f = f.rstrip("0")
    s = i + ("." + f if f else "")
    return "-" + s if neg and s != "0" else s


def normalize(s):
    s = re.sub(r"[ \t\n\r\f\v]+", " ", s.lower())
    punct = "".join(chr(c) for c in range(33, 127) if not chr(c).isalnum())
    s = s.rstrip(punct + " ")
    while s and s[0] in punct + " " and not re.match(r"[+-]?\.?\d|[+-]\.\d", s):
        s = s[1:]
    return " ".join(canon(w) if number(w) else w for w in s.split(" ")) if s else ""


def wilson(k, n, z=1.959963984540054):
    p = k / n
    d = 1 + z * z / n
    c = (p + z * z / (2 * n)) / d
    h = z / d * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return max(0.0, c - h), min(1.0, c + h)


def main():
    slmops, gguf, binf, tokf, task, results = sys.argv[1:7]
    m = load_bin(binf)
    pieces = load_pieces(tokf)
    got = json.load(open(results))
    rows = {r["line"]: r for r in got["examples"]}
    fails, n, k = 0, 0, 0
    for line, text in enumerate(open(task), 1):
        if not text.strip():
            continue
        ex = json.loads(text)
        row = rows[line]
        ctx = tokenize(slmops, gguf, ex["prompt"])
        if "choices" in ex:
            lls = []
            for c in ex["choices"]:
                whole = tokenize(slmops, gguf, ex["prompt"] + c)
                cont = whole[len(ctx):]
                lg = forward_all(m, ctx + cont[:-1])
                lls.append(sum(logprob(lg[len(ctx) - 1 + i], t) for i, t in enumerate(cont)))
            pred = int(np.argmax(lls))
            pred_n = int(np.argmax([ll / len(c) for ll, c in zip(lls, ex["choices"])]))
            ok = pred == ex["answer_index"]
            for a, b in zip(lls, row["loglik"]):
                if abs(a - b) > 1e-3:
                    print(f"line {line}: log-likelihood {b} != oracle {a}")
                    fails += 1
            if row["pred"] != pred or row["pred_norm"] != pred_n:
                print(f"line {line}: pred {row['pred']}/{row['pred_norm']} != {pred}/{pred_n}")
                fails += 1
        else:
            ids, seq = [], list(ctx)
            for _ in range(32):
                t = int(np.argmax(forward_all(m, seq)[-1]))
                if t == 2:
                    break
                ids.append(t)
                seq.append(t)
                out = detok(pieces, ids)
                if any(s in out for s in ex.get("stop", [])):
                    break
            out = detok(pieces, ids)
            for s in ex.get("stop", []):
                out = out.split(s)[0]
            answers = ex["answer"] if isinstance(ex["answer"], list) else [ex["answer"]]
            g = normalize(out)
            if ex.get("match", "exact") == "exact":
                ok = any(g == normalize(a) for a in answers)
            else:
                ok = any(normalize(a) and normalize(a) in g for a in answers)
            if row["output"] != out:
                print(f"line {line}: output {row['output']!r} != oracle {out!r}")
                fails += 1
        if row["correct"] != ok:
            print(f"line {line}: correct {row['correct']} != oracle {ok}")
            fails += 1
        n += 1
        k += ok
    lo, hi = wilson(k, n)
    print(f"oracle: {k}/{n} correct, accuracy {k / n:.4f}, 95% CI [{lo:.4f}, {hi:.4f}]")
    if got["n"] != n or got["correct"] != k or abs(got["ci95"][0] - lo) > 1e-9 or \
            abs(got["ci95"][1] - hi) > 1e-9:
        print(f"slmops: {got['correct']}/{got['n']}, CI {got['ci95']}")
        fails += 1
    for s in ["Hello,  World!", "+1,000.50", "-0", "007 Bond.", "  ...3.0 apples!! ", "1,00",
              ".5", "-12.340", "$-5"]:
        print(f"normalize({s!r}) = {normalize(s)!r}")
    sys.exit(1 if fails else 0)


main()
