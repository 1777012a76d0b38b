#!/bin/sh
# Acceptance 3: stories260K.bin -> GGUF -> Hugging Face folder -> GGUF with
# `slmops convert`: the same greedy text at every step, and the last GGUF's
# tensors bit-identical to the first one's (names, types, shapes, bytes).
. "$(dirname "$0")/lib.sh"
need llama2c/stories260K.bin llama2c/tok512.bin reference/stories260K-greedy-256.txt
ref=$fx/reference/stories260K-greedy-256.txt
tok=$fx/llama2c/tok512.bin

step() { # NAME CMD...
    name=$1; shift
    if "$@" 2>"$work/err"; then ok "$name"; else not_ok "$name"; cat "$work/err"; fi
}
greedy() { # MODEL: the greedy text equals the reference
    if "$slmops" generate -m "$1" --tokenizer "$tok" --temp 0 -n 256 >"$work/t.txt" 2>"$work/err" &&
        cmp -s "$work/t.txt" "$ref"; then
        ok "greedy text from $(basename "$1") equals the reference"
    else
        not_ok "greedy text from $(basename "$1") differs"; cat "$work/err"
    fi
}
tensors() { # MODEL: the tensor table with checksums
    "$slmops" info --checksums "$1" | sed -n '/^TENSOR/,$p'
}

step "convert .bin -> GGUF" "$slmops" convert "$fx/llama2c/stories260K.bin" "$work/a.gguf"
greedy "$work/a.gguf"
step "convert GGUF -> safetensors folder" "$slmops" convert "$work/a.gguf" "$work/hf" --to safetensors
[ -f "$work/hf/config.json" ] && ls "$work/hf"/*.safetensors >/dev/null 2>&1 &&
    ok "the folder has config.json and safetensors" || not_ok "folder lacks config.json/*.safetensors"
greedy "$work/hf"
step "convert safetensors folder -> GGUF" "$slmops" convert "$work/hf" "$work/b.gguf" --to gguf
greedy "$work/b.gguf"
tensors "$work/a.gguf" >"$work/a.tensors"
tensors "$work/b.gguf" >"$work/b.tensors"
if [ "$(wc -l <"$work/a.tensors")" -gt 40 ] && cmp -s "$work/a.tensors" "$work/b.tensors"; then
    ok "the last GGUF's tensors are bit-identical to the first's"
else
    not_ok "tensors differ"; diff "$work/a.tensors" "$work/b.tensors" | head -10
fi
step "converting the same model twice gives the same bytes" \
    "$slmops" convert "$fx/llama2c/stories260K.bin" "$work/a2.gguf"
cmp -s "$work/a.gguf" "$work/a2.gguf" && ok "GGUF output is deterministic" || not_ok "GGUF bytes differ"
expect_fail "convert refuses to overwrite its input" 1 "refusing to overwrite" \
    "$slmops" convert "$work/a.gguf" "$work/./a.gguf"
expect_fail "an output format nobody writes is an error" 1 "extension|--to" \
    "$slmops" convert "$work/a.gguf" "$work/x.unknownext"
finish
