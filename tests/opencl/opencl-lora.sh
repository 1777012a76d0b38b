#!/bin/sh
# 20 steps of LoRA fine-tuning of stories260K on opencl:0 (PoCL here) against the
# CPU backend: every step's loss within 1e-3 relative (issue 11, acceptance 2), and
# every node of the training graph placed on the OpenCL device (no CPU fallback).
. "$(dirname "$0")/../cli/lib.sh"
need gguf/stories260K.gguf text/tinystories_sample.txt

"$slmops" devices --json >"$work/devices.json" 2>"$work/devices.err"
grep -q '"id": "opencl:0"' "$work/devices.json" ||
    { echo "SKIP: no OpenCL device or backend-opencl not built (configure --enable-opencl; Debian: pocl-opencl-icd)"; exit 77; }

train() { # DEVICE NAME
    SLMOPS_LOG=debug "$slmops" finetune -m "$fx/gguf/stories260K.gguf" \
        --data "$fx/text/tinystories_sample.txt" --method lora --steps 20 --ctx 64 --lr 1e-3 \
        -t 2 -o "$work/$2.gguf" --log "$work/$2.jsonl" --device "$1" >/dev/null 2>"$work/$2.err"
}
train cpu cpu || { not_ok "finetune --device cpu failed"; tail -n 5 "$work/cpu.err"; finish; }
train opencl:0 cl || { not_ok "finetune --device opencl:0 failed"; tail -n 5 "$work/cl.err"; finish; }

grep -q 'sched: plan: .* nodes in 1 segments on 1 device' "$work/cl.err" &&
    ok "the whole training graph runs on opencl:0" ||
    { not_ok "the training graph was split:"; grep 'sched' "$work/cl.err"; }

losses() { sed -n 's/.*"loss":\([-0-9.eE+]*\).*/\1/p' "$1"; }
losses "$work/cpu.jsonl" >"$work/cpu.loss"
losses "$work/cl.jsonl" >"$work/cl.loss"
n=$(wc -l <"$work/cl.loss" | tr -d ' ')
[ "$n" -eq 20 ] && [ "$(wc -l <"$work/cpu.loss" | tr -d ' ')" -eq 20 ] ||
    { not_ok "want 20 losses from each run, got $n on opencl:0"; finish; }
if paste "$work/cpu.loss" "$work/cl.loss" | awk '
    { d = $1 - $2; if (d < 0) d = -d; r = d / ($1 < 0 ? -$1 : $1); if (r > m) m = r
      if (r > 1e-3) { printf "step %d: cpu %s, opencl %s (%.2g relative)\n", NR, $1, $2, r; bad = 1 } }
    END { printf "largest relative difference %.2g\n", m; exit bad }' >"$work/cmp.txt"; then
    ok "20 LoRA losses on opencl:0 within 1e-3 of the CPU's ($(tail -n 1 "$work/cmp.txt"))"
else
    not_ok "LoRA losses differ:"; cat "$work/cmp.txt"
fi
finish
