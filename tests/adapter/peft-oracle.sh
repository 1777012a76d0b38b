#!/bin/sh
# Adapters between slmops and PEFT (issue 8, acceptance 2), on stories260K exported to a
# Hugging Face folder by slmops: an adapter PEFT saved reads in slmops bit for bit (name
# map, q/k permutation of lora_B, rsLoRA alpha) and slmops' merge of it gives PEFT's
# logits; an adapter slmops made loads in PEFT with the same tensors and logits; and
# either adapter applied at run time (--lora, unmerged) gives PEFT's logits, as does
# one slmops trained (finetune), read by PEFT from its PEFT folder.
# PyTorch, transformers and PEFT come from tests/requirements-torch.txt (the README's
# first command), for ${TORCH_PYTHON:-/usr/bin/python3}.
. "${top_srcdir:?run through make check}/tests/cli/lib.sh"
need gguf/stories260K.gguf text/tinystories_sample.txt
py=${TORCH_PYTHON:-/usr/bin/python3}
for mod in torch transformers peft safetensors numpy; do
    "$py" -c "import $mod" 2>/dev/null ||
        { echo "FAIL: $py cannot import $mod (tests/requirements-torch.txt; the README's first command installs it)"; exit 1; }
done
here=$top_srcdir/tests/adapter
tool=$top_builddir/tests/adapter/adapter-tool
base=$fx/gguf/stories260K.gguf
run() { "$@" >"$work/log" 2>&1 || { echo "FAIL: $*"; cat "$work/log"; exit 1; }; }

run "$slmops" convert "$base" "$work/hf" --to safetensors
# PEFT -> slmops
run "$py" "$here/peft_oracle.py" make-peft "$work/hf" "$work/peft"
run "$tool" load "$base" "$work/peft" "$work/lone1.safetensors"
# PEFT's folder names no architecture: alone it is refused, with its base it converts
# to the same adapter.
if "$slmops" convert "$work/peft" "$work/x.gguf" >"$work/log" 2>&1 || ! grep -q "names no architecture.*--base" "$work/log"; then
    echo "FAIL: a PEFT folder converted without its base:"; cat "$work/log"; exit 1
fi
run "$slmops" convert "$work/peft" "$work/p1.gguf" --base "$base"
run "$tool" load "$base" "$work/p1.gguf" "$work/p1.safetensors"
cmp -s "$work/lone1.safetensors" "$work/p1.safetensors" || { echo "FAIL: convert --base and the adapter API disagree"; exit 1; }
run "$slmops" merge -m "$base" --lora "$work/peft" -o "$work/m1.gguf"
run "$slmops" convert "$work/m1.gguf" "$work/m1" --to safetensors
# slmops -> PEFT
run "$tool" new "$base" "$work/s.gguf" rank=4 alpha=16 seed=5 targets=q,k,v,o,gate,up,down b_seed=9 b_scale=0.05
run "$tool" load "$base" "$work/s.gguf" "$work/speft" format=format-safetensors
run "$tool" load "$base" "$work/s.gguf" "$work/lone2.safetensors"
run "$slmops" merge -m "$base" --lora "$work/s.gguf" -o "$work/m2.gguf"
run "$slmops" convert "$work/m2.gguf" "$work/m2" --to safetensors

"$py" "$here/peft_oracle.py" check "$work/hf" 8 4 "$work/peft" "$work/lone1.safetensors" "$work/m1" \
    "$work/speft" "$work/lone2.safetensors" "$work/m2" || exit 1
# At run time, unmerged: the PEFT folder itself, and slmops' GGUF adapter.
ids=1,403,407,261,378,275,300,264,346,281,343,260,271,400,415,340   # peft_oracle.PROMPT (checked there)
run "$tool" logits "$base" "$work/rt1.bin" "$ids" "$work/peft"
run "$tool" logits "$base" "$work/rt2.bin" "$ids" "$work/s.gguf"
"$py" "$here/peft_oracle.py" runtime "$work/hf" "$work/peft" "$work/rt1.bin" "$work/speft" "$work/rt2.bin" || exit 1
# An adapter slmops trained (finetune, as a PEFT folder and as a GGUF adapter) in PEFT.
head -c 4000 "$fx/text/tinystories_sample.txt" >"$work/train.txt"
run "$slmops" finetune -m "$base" --data "$work/train.txt" --method lora --lora-rank 4 --lora-alpha 8 \
    --lora-targets q,k,v,o,gate,up,down --ctx 64 --batch 4 --steps 12 --lr 1e-2 --threads 2 \
    -o "$work/tpeft" --output-gguf "$work/trained.gguf"
run "$tool" logits "$base" "$work/rt3.bin" "$ids" "$work/tpeft"
run "$tool" logits "$base" "$work/rt4.bin" "$ids" "$work/trained.gguf"
"$py" "$here/peft_oracle.py" trained "$work/hf" "$work/tpeft" "$work/rt3.bin" "$work/rt4.bin" || exit 1
echo "PASS: PEFT and slmops agree on adapters"
