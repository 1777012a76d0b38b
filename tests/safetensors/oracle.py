"""Checks for tests/safetensors/oracle.sh, using the `safetensors` package as the
reference reader and writer (numpy arrays, no torch)."""
import json
import os
import sys

import numpy as np
from safetensors import safe_open
from safetensors.numpy import load_file, save_file

LAYER = {
    "input_layernorm": "attn_norm", "self_attn.q_proj": "attn_q", "self_attn.k_proj": "attn_k",
    "self_attn.v_proj": "attn_v", "self_attn.o_proj": "attn_output",
    "post_attention_layernorm": "ffn_norm", "mlp.gate_proj": "ffn_gate", "mlp.up_proj": "ffn_up",
    "mlp.down_proj": "ffn_down",
}
TOP = {"model.embed_tokens.weight": "token_embd.weight", "model.norm.weight": "output_norm.weight",
       "lm_head.weight": "output.weight"}


def gguf_name(hf):
    if hf in TOP:
        return TOP[hf]
    parts = hf.split(".")
    assert parts[0] == "model" and parts[1] == "layers", hf
    piece, param = ".".join(parts[3:-1]), parts[-1]
    return "blk.%s.%s.%s" % (parts[2], LAYER[piece], param)


def permute(w, n_head):
    """llama.cpp convert_hf_to_gguf.py LlamaModel.permute (HF -> GGUF rows)."""
    return (w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:])
            .swapaxes(1, 2).reshape(w.shape))


def fail(msg):
    print("FAIL: " + msg)
    sys.exit(1)


def check_folder(folder, ref_path):
    cfg = json.load(open(os.path.join(folder, "config.json")))
    heads, kv = cfg["num_attention_heads"], cfg.get("num_key_value_heads", cfg["num_attention_heads"])
    path = os.path.join(folder, "model.safetensors")
    with safe_open(path, framework="numpy") as f:
        if f.metadata() != {"format": "pt"}:
            fail("metadata is %r" % f.metadata())
    hf, ref = load_file(path), load_file(ref_path)
    if len(hf) != len(ref):
        fail("%d tensors in the folder, %d in the GGUF" % (len(hf), len(ref)))
    for name, w in hf.items():
        g = gguf_name(name)
        if g not in ref:
            fail("%s (-> %s) is not in the GGUF" % (name, g))
        r = ref[g]
        # Same bytes in a reversed-dims view: the reference file keeps GGUF's ne order.
        if w.dtype != r.dtype or w.shape != r.shape:
            fail("%s: %s %s vs %s %s" % (name, w.dtype, w.shape, r.dtype, r.shape))
        if ".attn_q." in g:
            w = permute(w, heads)
        elif ".attn_k." in g:
            w = permute(w, kv)
        if not np.array_equal(w, r):
            fail("%s: values differ from %s" % (name, g))
    print("folder: %d tensors agree with the GGUF" % len(hf))


KV_PREFIX, KV_MARK = "gguf:", "slmops.gguf_metadata"


def own_metadata(m):
    """The file's own __metadata__, without the container keys slmops adds."""
    return {k: v for k, v in (m or {}).items() if not k.startswith(KV_PREFIX) and k != KV_MARK}


def check_kv(path):
    """A lone file slmops wrote from a GGUF carries its metadata, readable here."""
    with safe_open(path, framework="numpy") as f:
        m = f.metadata() or {}
        emb = f.get_tensor("token_embd.weight")
    if m.get(KV_MARK) != "1":
        fail("%s: no %s marker in %r" % (path, KV_MARK, sorted(m)))
    kv = {}
    for k, v in m.items():
        if k.startswith(KV_PREFIX):
            doc = json.loads(v)
            if doc.get("type") not in ("u8", "i8", "u16", "i16", "u32", "i32", "f32", "bool",
                                       "string", "array", "u64", "i64", "f64"):
                fail("%s: %s has type %r" % (path, k, doc.get("type")))
            kv[k[len(KV_PREFIX):]] = doc
    arch = kv.get("general.architecture", {}).get("value")
    tokens = kv.get("tokenizer.ggml.tokens", {})
    if arch != "llama" or tokens.get("elem") != "string":
        fail("%s: architecture %r, tokens %r" % (path, arch, tokens.get("elem")))
    if len(tokens["value"]) != emb.shape[0]:
        fail("%s: %d tokens, token_embd has %d rows" % (path, len(tokens["value"]), emb.shape[0]))
    print("%s: %d metadata keys, %d tokens" % (os.path.basename(path), len(kv), len(tokens["value"])))


def same(a, b):
    x, y = load_file(a), load_file(b)
    if sorted(x) != sorted(y):
        fail("names differ: %s vs %s" % (sorted(x), sorted(y)))
    for k in x:
        if x[k].dtype != y[k].dtype or x[k].shape != y[k].shape or not np.array_equal(x[k], y[k]):
            fail("%s differs" % k)
    with safe_open(a, framework="numpy") as fa, safe_open(b, framework="numpy") as fb:
        ma, mb = own_metadata(fa.metadata()), own_metadata(fb.metadata())
        for k, v in ma.items():
            if mb.get(k) != v:
                fail("metadata %s: %r vs %r" % (k, v, mb.get(k)))
    print("%s and %s agree (%d tensors)" % (os.path.basename(a), os.path.basename(b), len(x)))


def make_mixed(path):
    r = np.arange(-3, 3)
    save_file({"f32": r.astype(np.float32).reshape(2, 3), "f16": r.astype(np.float16),
               "f64": r.astype(np.float64).reshape(3, 2, 1), "i8": r.astype(np.int8),
               "i16": r.astype(np.int16), "i32": r.astype(np.int32), "i64": r.astype(np.int64)},
              path, metadata={"test": "a"})


def main():
    cmd = sys.argv[1]
    if cmd == "check-folder":
        check_folder(sys.argv[2], sys.argv[3])
    elif cmd == "resave":
        save_file(load_file(sys.argv[2]), sys.argv[3], metadata={"format": "pt"})
    elif cmd == "same":
        same(sys.argv[2], sys.argv[3])
    elif cmd == "check-kv":
        check_kv(sys.argv[2])
    elif cmd == "make-mixed":
        make_mixed(sys.argv[2])
    else:
        fail("unknown command " + cmd)


main()
