"""Greedy text and token ids of GGUF files in llama.cpp (llama-cpp-python), one
JSON line per file, for tests/qcli/llama-cpp-compat.sh to compare with slmops."""
import json
import sys

import llama_cpp

prompt, n = sys.argv[1], int(sys.argv[2])
for path in sys.argv[3:]:
    m = llama_cpp.Llama(model_path=path, n_ctx=256, n_threads=1, verbose=False, seed=1)
    out = m(prompt, max_tokens=n, temperature=0, top_k=1)
    ids = m.tokenize(prompt.encode())
    print(json.dumps({"file": path, "text": out["choices"][0]["text"], "ids": ids}))
