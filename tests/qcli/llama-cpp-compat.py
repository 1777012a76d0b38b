"""llama.cpp's side (llama-cpp-python) of the GGUF compatibility tests in tests/qcli:
  greedy PROMPT N FILE...   greedy text and prompt ids, one JSON line per file
  quantize IN OUT FTYPE     llama.cpp's own quantizer (FTYPE: Q8_0, Q4_0, Q4_K_M...)
  follow FILE TOL           slmops' `generate --json` on stdin, replayed in llama.cpp:
                            exit 1 unless each token is llama.cpp's greedy pick or
                            trails it by at most TOL standard deviations of the logits
"""
import ctypes
import json
import sys

import llama_cpp


def greedy(prompt, n, paths):
    for path in paths:
        m = llama_cpp.Llama(model_path=path, n_ctx=256, n_threads=1, verbose=False, seed=1)
        out = m(prompt, max_tokens=int(n), temperature=0, top_k=1)
        ids = m.tokenize(prompt.encode())
        print(json.dumps({"file": path, "text": out["choices"][0]["text"], "ids": ids}))
    return 0


def quantize(src, dst, ftype):
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = getattr(llama_cpp, "LLAMA_FTYPE_MOSTLY_" + ftype)
    params.nthread = 1
    rc = llama_cpp.llama_model_quantize(src.encode(), dst.encode(), ctypes.byref(params))
    if rc != 0:
        print(f"llama_model_quantize {src} -> {dst} ({ftype}): {rc}", file=sys.stderr)
    return 1 if rc else 0


def follow(path, tol):
    """Random weights leave the top logits a few thousandths apart, so two correct
    implementations may break such a near-tie differently; a model read wrongly picks
    tokens far down llama.cpp's list. The KV cache is f32, as in slmops."""
    run = json.load(sys.stdin)
    m = llama_cpp.Llama(model_path=path, n_ctx=256, n_threads=1, verbose=False,
                        logits_all=True, type_k=0, type_v=0)
    m.eval(run["prompt_tokens"])
    same, worst, worst_at = 0, 0.0, -1
    for step, tok in enumerate(run["tokens"]):
        logits = m.scores[m.n_tokens - 1]
        best = int(logits.argmax())
        gap = float(logits[best] - logits[tok]) / float(logits.std())
        same += tok == best
        if gap > worst:
            worst, worst_at = gap, step
        m.eval([tok])
    print(f"{same} of {len(run['tokens'])} tokens are llama.cpp's greedy pick; widest gap "
          f"{worst:.4f} sd at step {worst_at} (tolerance {tol} sd)")
    return 0 if run["tokens"] and worst <= float(tol) else 1


if __name__ == "__main__":
    verbs = {"greedy": lambda a: greedy(a[0], a[1], a[2:]), "quantize": lambda a: quantize(*a),
             "follow": lambda a: follow(*a)}
    sys.exit(verbs[sys.argv[1]](sys.argv[2:]))
