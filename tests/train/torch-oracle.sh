#!/bin/sh
# Training checked against PyTorch and PEFT (issue 8, acceptance 1), on stories260K and
# its Hugging Face export: for one batch (packed text, ctx 64) the loss within 1e-5
# relative and every gradient within 1e-4 (norm of the difference / norm) for full
# fine-tuning, and for LoRA (rank 4 on every projection) against PEFT with slmops'
# initial adapter; then 20 AdamW steps (cosine schedule with warmup, weight decay)
# whose losses agree with torch.optim.AdamW's within 1e-4 relative at every step.
# PyTorch, transformers and PEFT: tests/requirements-torch.txt (the README's first
# command), for ${TORCH_PYTHON:-/usr/bin/python3}.
. "${top_srcdir:?run through make check}/tests/cli/lib.sh"
need gguf/stories260K.gguf text/tinystories_sample.txt
py=${TORCH_PYTHON:-/usr/bin/python3}
for mod in torch transformers peft safetensors numpy; do
    "$py" -c "import $mod" 2>/dev/null ||
        { echo "FAIL: $py cannot import $mod (tests/requirements-torch.txt; the README's first command installs it)"; exit 1; }
done
oracle=$top_srcdir/tests/train/torch_oracle.py
base=$fx/gguf/stories260K.gguf
run() { "$@" >"$work/log" 2>&1 || { echo "FAIL: $*"; cat "$work/log"; exit 1; }; }
check() { "$py" "$oracle" "$@" || fail=1; }
fail=0

run "$slmops" convert "$base" "$work/hf" --to safetensors
head -c 3000 "$fx/text/tinystories_sample.txt" >"$work/data.txt"
common="-m $base --data $work/data.txt --ctx 64 --clip 0 --threads 2"
lora="--lora-rank 4 --lora-alpha 8 --lora-targets q,k,v,o,gate,up,down"
for method in full lora; do
    opts=$common
    [ "$method" = lora ] && opts="$opts $lora"
    # shellcheck disable=SC2086 # word splitting of the option lists is intended
    run "$slmops" finetune $opts --method "$method" --batch 64 --dump-grads "$work/$method.dump" -o "$work/$method.out"
    check grads "$work/hf" "$work/$method.dump"
    rows=$("$py" "$oracle" rows "$work/$method.dump") || exit 1
    # shellcheck disable=SC2086
    run "$slmops" finetune $opts --method "$method" --batch "$rows" --steps 20 --schedule cosine \
        --warmup 2 --lr 2e-3 --weight-decay 0.1 --log "$work/$method.log" -o "$work/$method.out"
    check curve "$work/hf" "$work/$method.dump" "$work/$method.log" 20 2e-3 2 0.1
done
[ "$fail" = 0 ] && echo "PASS: slmops' losses, gradients and AdamW curves are PyTorch's" || exit 1
