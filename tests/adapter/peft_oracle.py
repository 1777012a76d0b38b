"""PEFT and transformers as the oracle for slmops' adapters (tests/adapter/peft-oracle.sh).

  make-peft HF OUT          a PEFT LoRA adapter (rsLoRA, every projection, random A and B)
                            on the Llama model in the Hugging Face folder HF, saved by PEFT
  check HF N_HEAD N_HEAD_KV PEFT LONE1 MERGED1 SPEFT LONE2 MERGED2
      PEFT -> slmops: LONE1 (slmops' reading of PEFT, saved as a lone .safetensors with
      GGUF names) equals PEFT's tensors bit for bit after the name map and llama.cpp's
      q/k row permutation of lora_B, alpha folded as llama.cpp needs it; the model
      slmops merged (MERGED1, exported to HF) gives PEFT's logits within 1e-4.
      slmops -> PEFT: PeftModel.from_pretrained loads SPEFT (written by slmops), its
      weights equal LONE2's the same way, and its logits equal MERGED2's within 1e-4.
  runtime HF PEFT LOGITS1 SPEFT LOGITS2
      slmops applying an adapter at run time, unmerged (`--lora`): LOGITS1 (written by
      tests/adapter/adapter-tool logits for PROMPT with the PEFT folder PEFT) equals
      the logits of PeftModel.from_pretrained(PEFT) within 1e-4, and LOGITS2 (with
      the adapter slmops made, saved as the PEFT folder SPEFT) those of SPEFT in PEFT.
  trained HF FOLDER LOGITS1 LOGITS2
      An adapter slmops finetune trained, written as the PEFT folder FOLDER and as a
      GGUF adapter: PeftModel.from_pretrained(FOLDER)'s logits equal slmops' --lora
      with the folder (LOGITS1) and with the GGUF adapter (LOGITS2) within 1e-4.
"""
import json
import math
import sys

import numpy as np
import torch
from peft import LoraConfig, PeftModel, get_peft_model
from safetensors import safe_open
from safetensors.numpy import load_file
from transformers import LlamaForCausalLM

MODULES = {"q_proj": "attn_q", "k_proj": "attn_k", "v_proj": "attn_v", "o_proj": "attn_output",
           "gate_proj": "ffn_gate", "up_proj": "ffn_up", "down_proj": "ffn_down"}
RANK, ALPHA = 4, 8.0
PROMPT = [1, 403, 407, 261, 378, 275, 300, 264, 346, 281, 343, 260, 271, 400, 415, 340]
TOL = 1e-4


def fail(msg):
    print("FAIL: " + msg)
    sys.exit(1)


def gguf_name(peft_name):
    """base_model.model.model.layers.N.self_attn.q_proj.lora_A[.default].weight -> blk.N.attn_q.weight.lora_a"""
    parts = peft_name.replace(".default", "").split(".")
    assert parts[:5] == ["base_model", "model", "model", "layers", parts[4]], peft_name
    assert parts[-1] == "weight" and parts[-2] in ("lora_A", "lora_B"), peft_name
    return "blk.%s.%s.weight.%s" % (parts[4], MODULES[parts[-3]], parts[-2].lower())


def permute(w, n_head):
    """llama.cpp convert_hf_to_gguf.py LlamaModel.permute (HF -> GGUF rows)."""
    return (w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:])
            .swapaxes(1, 2).reshape(w.shape))


def as_gguf(tensors, n_head, n_head_kv):
    """PEFT tensors under slmops' names, lora_B of q/k in llama.cpp's row order."""
    out = {}
    for name, w in tensors.items():
        g = gguf_name(name)
        if g.endswith(".lora_b") and ".attn_q." in g:
            w = permute(w, n_head)
        elif g.endswith(".lora_b") and ".attn_k." in g:
            w = permute(w, n_head_kv)
        out[g] = np.ascontiguousarray(w)
    return out


def same_bits(what, theirs, ours):
    if set(theirs) != set(ours):
        fail("%s: tensor names differ: only PEFT %s, only slmops %s" % (
            what, sorted(set(theirs) - set(ours))[:4], sorted(set(ours) - set(theirs))[:4]))
    for name, w in theirs.items():
        o = ours[name]
        if w.dtype != np.float32 or o.dtype != np.float32 or w.shape != o.shape:
            fail("%s: %s is %s %s in PEFT, %s %s in slmops" % (what, name, w.dtype, w.shape, o.dtype, o.shape))
        if not np.array_equal(w.view(np.uint32), o.view(np.uint32)):
            fail("%s: %s differs (max |diff| %g)" % (what, name, float(np.abs(w - o).max())))
    nonzero = sum(1 for w in theirs.values() if np.any(w != 0))
    if nonzero != len(theirs):
        fail("%s: %d of %d tensors are all zero: the test needs random A and B" % (what, len(theirs) - nonzero, len(theirs)))
    print("ok - %s: %d tensors equal bit for bit" % (what, len(theirs)))


def gguf_kv(path, key):
    with safe_open(path, "np") as f:
        return json.loads(f.metadata()["gguf:" + key])["value"]


def logits(model):
    with torch.no_grad():
        return model(torch.tensor([PROMPT])).logits[0].numpy()


def close_logits(what, a, b, plain):
    moved = float(np.abs(a - plain).max())
    if not moved > 100 * TOL:
        fail("%s: the adapter moves the logits by only %g: the comparison would prove nothing" % (what, moved))
    diff = float(np.abs(a - b).max())
    if not diff <= TOL:
        fail("%s: logits differ by %g (tolerance %g)" % (what, diff, TOL))
    print("ok - %s: logits within %g (max |diff| %.3g over %d positions; the adapter moves them by %.3g)"
          % (what, TOL, diff, a.shape[0], moved))


def base(hf):
    return LlamaForCausalLM.from_pretrained(hf, torch_dtype=torch.float32).eval()


def make_peft(hf, out):
    torch.manual_seed(1234)
    cfg = LoraConfig(r=RANK, lora_alpha=ALPHA, use_rslora=True, lora_dropout=0.0,
                     target_modules=list(MODULES), task_type="CAUSAL_LM")
    model = get_peft_model(base(hf), cfg)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.normal_(0.0, 0.05)
            elif "lora_A" in name:
                p.uniform_(-0.3, 0.3)
    model.save_pretrained(out)


def check(hf, n_head, n_head_kv, peft, lone1, merged1, speft, lone2, merged2):
    n_head, n_head_kv = int(n_head), int(n_head_kv)
    # PEFT -> slmops
    theirs = as_gguf(load_file(peft + "/adapter_model.safetensors"), n_head, n_head_kv)
    same_bits("PEFT adapter read by slmops", theirs, load_file(lone1))
    alpha = gguf_kv(lone1, "adapter.lora.alpha")
    want = np.float32(ALPHA * math.sqrt(RANK))
    if np.float32(alpha) != want or gguf_kv(lone1, "adapter.lora.rslora") is not True:
        fail("rsLoRA alpha %r folded as %r (want %r, adapter.lora.rslora true)" % (ALPHA, alpha, float(want)))
    print("ok - rsLoRA alpha %g kept as llama.cpp's %g" % (ALPHA, alpha))
    plain = logits(base(hf))
    model = PeftModel.from_pretrained(base(hf), peft).eval()
    close_logits("PEFT model vs slmops merge of its adapter", logits(model),
                 logits(LlamaForCausalLM.from_pretrained(merged1, torch_dtype=torch.float32).eval()), plain)
    # slmops -> PEFT
    model = PeftModel.from_pretrained(base(hf), speft).eval()
    loaded = {k: v.detach().numpy().copy() for k, v in model.state_dict().items() if ".lora_" in k}
    ours = load_file(lone2)
    same_bits("slmops adapter loaded by PEFT", as_gguf(loaded, n_head, n_head_kv), ours)
    layer = model.base_model.model.model.layers[0].self_attn.q_proj
    scale = gguf_kv(lone2, "adapter.lora.alpha") / ours["blk.0.attn_q.weight.lora_a"].shape[0]
    if not math.isclose(layer.scaling["default"], scale, rel_tol=1e-6):
        fail("PEFT scales the slmops adapter by %r, slmops by %r" % (layer.scaling["default"], scale))
    print("ok - PEFT's scaling equals slmops' alpha / rank (%g)" % scale)
    close_logits("PEFT with slmops' adapter vs slmops merge", logits(model),
                 logits(LlamaForCausalLM.from_pretrained(merged2, torch_dtype=torch.float32).eval()), plain)


def slmops_logits(path):
    """The file adapter-tool logits writes: n, V, n ids, n rows of V f32."""
    raw = np.fromfile(path, dtype=np.int32)
    n, v = int(raw[0]), int(raw[1])
    ids = raw[2:2 + n].tolist()
    if ids != PROMPT:
        fail("%s holds the logits of %s, not of PROMPT" % (path, ids[:8]))
    rows = raw[2 + n:].view(np.float32)
    if rows.size != n * v:
        fail("%s: %d floats, want %d x %d" % (path, rows.size, n, v))
    return rows.reshape(n, v)


def runtime(hf, peft, logits1, speft, logits2, names=("PEFT's adapter", "slmops' adapter")):
    plain = logits(base(hf))
    for what, folder, ours in ((names[0], peft, logits1), (names[1], speft, logits2)):
        theirs = logits(PeftModel.from_pretrained(base(hf), folder).eval())
        close_logits("%s in PEFT vs slmops --lora (unmerged)" % what, theirs, slmops_logits(ours), plain)


if __name__ == "__main__":
    torch.set_num_threads(2)
    if sys.argv[1] == "make-peft" and len(sys.argv) == 4:
        make_peft(*sys.argv[2:])
    elif sys.argv[1] == "check" and len(sys.argv) == 11:
        check(*sys.argv[2:])
    elif sys.argv[1] == "runtime" and len(sys.argv) == 7:
        runtime(*sys.argv[2:])
    elif sys.argv[1] == "trained" and len(sys.argv) == 6:
        hf, folder, from_folder, from_gguf = sys.argv[2:]
        runtime(hf, folder, from_folder, folder, from_gguf,
                ("trained adapter (PEFT folder)", "trained adapter (GGUF adapter)"))
    else:
        fail("usage: see the docstring")
