#!/usr/bin/env python3
"""PyTorch (and PEFT) as the oracle of slmops' training (issue 8, acceptance 1).

  torch_oracle.py grads HF DUMP
      DUMP is what `slmops finetune --dump-grads DUMP` wrote (safetensors: every
      trainable tensor NAME and NAME.grad in slmops' layout, the batch as
      batch.tokens / batch.targets / batch.doc, the loss in the metadata). The same
      Llama in PyTorch (HF: slmops' Hugging Face export of the base) with the same
      trainable values computes the loss of the same batch and its gradients: the loss
      must agree within 1e-5 relative and every gradient within 1e-4 (norm of the
      difference over the norm of PyTorch's). For LoRA the model is PEFT's, its
      adapters set to slmops' initial A and B.
  torch_oracle.py curve HF DUMP LOG STEPS LR WARMUP WD
      AdamW in PyTorch (torch.optim.AdamW, transformers' cosine schedule with warmup,
      weight decay WD on tensors of two or more dimensions) for STEPS steps on DUMP's
      batch, from DUMP's initial values; the loss of every step must agree within 1e-4
      relative with the "loss" of LOG's step records (`finetune --log`), a run whose
      every step saw that batch.

Packed rows hold several documents that do not see each other and whose positions
start at 0, so each document runs as its own sequence here; the loss is the mean
cross-entropy over every position whose target is not -1.
"""
import json
import math
import sys

import numpy as np
import torch
from safetensors import safe_open
from transformers import LlamaForCausalLM, get_cosine_schedule_with_warmup

LOSS_TOL, GRAD_TOL, CURVE_TOL = 1e-5, 1e-4, 1e-4
HF_OF = {"attn_q": "self_attn.q_proj", "attn_k": "self_attn.k_proj", "attn_v": "self_attn.v_proj",
         "attn_output": "self_attn.o_proj", "ffn_gate": "mlp.gate_proj", "ffn_up": "mlp.up_proj",
         "ffn_down": "mlp.down_proj", "attn_norm": "input_layernorm",
         "ffn_norm": "post_attention_layernorm"}
TOP = {"token_embd.weight": "model.embed_tokens.weight", "output_norm.weight": "model.norm.weight",
       "output.weight": "lm_head.weight"}
failures = 0


def fail(msg):
    global failures
    failures += 1
    print("not ok - " + msg)


def die(msg):
    print("FAIL: " + msg)
    sys.exit(1)


def load_dump(path):
    with safe_open(path, "np") as f:
        meta = f.metadata()
        if meta.get("format") != "slmops-grad-dump":
            die("%s is not a gradient dump of slmops finetune" % path)
        t = {k: f.get_tensor(k) for k in f.keys()}
    return meta, t


def hf_name(name):
    """blk.N.attn_q.weight -> model.layers.N.self_attn.q_proj.weight"""
    if name in TOP:
        return TOP[name]
    p = name.split(".")
    if p[0] != "blk" or p[2] not in HF_OF:
        die("no Hugging Face name for %s" % name)
    return "model.layers.%s.%s.%s" % (p[1], HF_OF[p[2]], ".".join(p[3:]))


def permute(w, n_head):
    """llama.cpp's LlamaModel.permute: rows of q/k from Hugging Face's to GGUF's order."""
    return w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def unpermute(w, n_head):
    return w.reshape(n_head, w.shape[0] // n_head // 2, 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


class Oracle:
    """The PyTorch model with slmops' trainable values; maps names and row orders."""

    def __init__(self, hf, meta, dump):
        self.model = LlamaForCausalLM.from_pretrained(hf, torch_dtype=torch.float32)
        cfg = self.model.config
        self.heads = {"attn_q": cfg.num_attention_heads,
                      "attn_k": cfg.num_key_value_heads or cfg.num_attention_heads}
        self.method = meta["method"]
        self.params = {}   # slmops name -> (torch parameter, row permutation head count)
        names = [k for k in dump if not k.endswith(".grad") and not k.startswith("batch.")]
        if self.method == "full":
            tp = dict(self.model.named_parameters())
            for n in names:
                heads = self.heads.get(n.split(".")[2]) if n.startswith("blk.") else None
                self.params[n] = (tp[hf_name(n)], heads)
        else:
            self.lora(json.loads(meta["adapters"]), names)
        with torch.no_grad():
            for n, (p, heads) in self.params.items():
                w = dump[n].reshape(tuple(p.shape))
                p.copy_(torch.from_numpy(unpermute(w, heads) if heads else w))
        for p in self.model.parameters():
            p.requires_grad_(False)
        for p, _ in self.params.values():
            p.requires_grad_(True)
        self.model.train()

    def lora(self, adapters, names):
        from peft import LoraConfig, get_peft_model
        if not adapters:
            die("a LoRA dump names no adapters")
        ranks = {a["rank"] for a in adapters}
        scales = {round(a["scale"] * a["rank"], 6) for a in adapters}
        if len(ranks) != 1 or len(scales) != 1 or any(a["dropout"] for a in adapters):
            die("the oracle needs one rank and scale and no dropout: %s" % adapters[:2])
        r, alpha = ranks.pop(), scales.pop()
        modules = sorted({HF_OF[a["target"].split(".")[2]].split(".")[-1] for a in adapters})
        self.model = get_peft_model(self.model, LoraConfig(r=r, lora_alpha=alpha, lora_dropout=0.0,
                                                           target_modules=modules))
        tp = dict(self.model.named_parameters())
        targets = {a["target"] for a in adapters}
        peft_lora = [k for k in tp if ".lora_" in k]
        if len(peft_lora) != 2 * len(targets):
            die("PEFT made %d LoRA tensors, slmops %d" % (len(peft_lora), 2 * len(targets)))
        for a in adapters:
            base = "base_model.model." + hf_name(a["target"])[:-len(".weight")]
            kind = a["target"].split(".")[2]
            self.params[a["a"]] = (tp[base + ".lora_A.default.weight"], None)
            self.params[a["b"]] = (tp[base + ".lora_B.default.weight"], self.heads.get(kind))
        if set(self.params) != set(names):
            die("trainable tensors differ: %s" % sorted(set(names) ^ set(self.params))[:4])

    def loss(self, tokens, targets, doc):
        """Mean cross-entropy; documents of one length run as one batch."""
        by_len = {}
        for r in range(tokens.shape[0]):
            for d in sorted(set(doc[r].tolist()) - {-1}):
                at = np.nonzero(doc[r] == d)[0]
                if not np.array_equal(at, np.arange(at[0], at[-1] + 1)):
                    die("row %d: document %d is not contiguous" % (r, d))
                by_len.setdefault(len(at), []).append((tokens[r, at], targets[r, at]))
        total, scored = torch.zeros(()), 0
        for docs in by_len.values():
            ids = torch.from_numpy(np.stack([d[0] for d in docs]).astype(np.int64))
            tgt = torch.from_numpy(np.stack([d[1] for d in docs]).astype(np.int64)).reshape(-1)
            logits = self.model(input_ids=ids).logits.reshape(tgt.shape[0], -1)
            keep = tgt >= 0
            if keep.any():
                total = total + torch.nn.functional.cross_entropy(logits[keep], tgt[keep],
                                                                  reduction="sum")
                scored += int(keep.sum())
        return total / scored, scored

    def grad(self, n):
        p, heads = self.params[n]
        g = p.grad.numpy()
        return permute(g, heads) if heads else g


def rows(path):
    """Rows of DUMP's batch that hold tokens: the --batch of a run whose every step
    sees exactly that batch."""
    _, dump = load_dump(path)
    print(int((dump["batch.doc"] >= 0).any(axis=1).sum()))


def rel(a, b):
    return abs(a - b) / max(abs(b), 1e-30)


def grads(hf, path):
    meta, dump = load_dump(path)
    o = Oracle(hf, meta, dump)
    loss, scored = o.loss(dump["batch.tokens"], dump["batch.targets"], dump["batch.doc"])
    if scored != int(meta["n_scored"]):
        fail("PyTorch scores %d positions, slmops %s" % (scored, meta["n_scored"]))
    ours = float(meta["loss"])
    if rel(ours, loss.item()) <= LOSS_TOL:
        print("ok - loss: slmops %.9g, PyTorch %.9g (%d positions)" % (ours, loss.item(), scored))
    else:
        fail("loss: slmops %.9g, PyTorch %.9g, %.2g relative (tolerance %g)" % (
            ours, loss.item(), rel(ours, loss.item()), LOSS_TOL))
    loss.backward()
    worst, zero = 0.0, 0
    for n in o.params:
        theirs, mine = o.grad(n), dump[n + ".grad"].reshape(o.grad(n).shape)
        norm = float(np.linalg.norm(theirs))
        diff = float(np.linalg.norm(mine.astype(np.float64) - theirs))
        if norm == 0.0:
            zero += 1
            if diff != 0.0:
                fail("%s: PyTorch's gradient is zero, slmops' has norm %g" % (n, diff))
            continue
        worst = max(worst, diff / norm)
        if diff / norm > GRAD_TOL:
            fail("%s: gradient differs by %.3g relative (norm %.4g; tolerance %g)" % (n, diff / norm, norm, GRAD_TOL))
    if zero == len(o.params):
        fail("every gradient is zero: the comparison proves nothing")
    print("ok - %d gradients (%s): worst relative difference %.3g (tolerance %g)%s" % (
        len(o.params), meta["method"], worst, GRAD_TOL,
        ", %d exactly zero in both (LoRA A under B = 0)" % zero if zero else ""))


def curve(hf, path, log, steps, lr, warmup, wd):
    steps, warmup, lr, wd = int(steps), int(warmup), float(lr), float(wd)
    meta, dump = load_dump(path)
    o = Oracle(hf, meta, dump)
    ours = {}
    for line in open(log):
        rec = json.loads(line) if line.strip() else {}
        if "step" in rec and "loss" in rec:
            ours[int(rec["step"])] = float(rec["loss"])
    first = min(ours) if ours else 0
    params = [p for p, _ in o.params.values()]
    groups = [{"params": [p for p in params if p.dim() > 1], "weight_decay": wd},
              {"params": [p for p in params if p.dim() <= 1], "weight_decay": 0.0}]
    opt = torch.optim.AdamW([g for g in groups if g["params"]], lr=lr, betas=(0.9, 0.999), eps=1e-8)
    sched = get_cosine_schedule_with_warmup(opt, warmup, steps)
    worst, bad = 0.0, failures
    for k in range(steps):
        loss, _ = o.loss(dump["batch.tokens"], dump["batch.targets"], dump["batch.doc"])
        mine = ours.get(first + k)
        if mine is None:
            die("%s has no loss for step %d" % (log, first + k))
        worst = max(worst, rel(mine, loss.item()))
        if rel(mine, loss.item()) > CURVE_TOL:
            fail("step %d: loss slmops %.9g, PyTorch %.9g (%.2g relative)" % (k + 1, mine, loss.item(), rel(mine, loss.item())))
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
    drop = (ours[first] - ours[first + steps - 1]) / ours[first]
    if drop < 0.01:
        fail("the loss fell only %.2g%% in %d steps: the curve proves little" % (100 * drop, steps))
    if failures == bad:
            print("ok - %d AdamW steps (cosine, warmup %d, lr %g, weight decay %g): loss %.6g -> %.6g, every step "
              "within %.3g relative of PyTorch (tolerance %g)"
              % (steps, warmup, lr, wd, ours[first], ours[first + steps - 1], worst, CURVE_TOL))


if __name__ == "__main__":
    torch.set_num_threads(2)
    torch.manual_seed(0)
    if len(sys.argv) == 4 and sys.argv[1] == "grads":
        grads(*sys.argv[2:])
    elif len(sys.argv) == 3 and sys.argv[1] == "rows":
        rows(sys.argv[2])
    elif len(sys.argv) == 9 and sys.argv[1] == "curve":
        curve(*sys.argv[2:])
    else:
        die("usage: see the docstring")
    sys.exit(1 if failures else 0)
