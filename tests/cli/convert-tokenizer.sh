#!/bin/sh
# Issue 7, item 19: `convert --tokenizer` makes a llama2.c checkpoint a self-contained
# GGUF, and `convert --help` names only the formats that can be written.
. "$(dirname "$0")/lib.sh"
need llama2c/stories260K.bin llama2c/tok512.bin llama2c/llama2_tokenizer.bin \
    reference/stories260K-greedy-256.txt

"$slmops" convert "$fx/llama2c/stories260K.bin" "$work/s.gguf" \
    --tokenizer "$fx/llama2c/tok512.bin" 2>"$work/err" &&
    ok "convert .bin --tokenizer tok512.bin" || { not_ok "convert"; cat "$work/err"; }
"$slmops" generate -m "$work/s.gguf" --temp 0 -n 256 >"$work/text" 2>"$work/err"
cmp -s "$work/text" "$fx/reference/stories260K-greedy-256.txt" &&
    ok "the GGUF generates llama2.c's greedy text with no --tokenizer" ||
    { not_ok "generate from the converted GGUF"; head -c 300 "$work/text" "$work/err"; }

expect_fail "a tokenizer larger than the model's vocabulary is refused" 1 \
    "llama2_tokenizer.bin: 32000 tokens, but the model has embeddings for 512" \
    "$slmops" convert "$fx/llama2c/stories260K.bin" "$work/t.gguf" \
    --tokenizer "$fx/llama2c/llama2_tokenizer.bin"
[ -e "$work/t.gguf" ] && not_ok "the refused conversion left t.gguf" || ok "nothing written"

"$slmops" convert --help >"$work/help"
sed -n '/^FORMAT/,$p' "$work/help" >"$work/formats"
grep -q '^  gguf ' "$work/formats" && grep -q '^  safetensors ' "$work/formats" &&
    ! grep -q 'llama2c\|sentencepiece' "$work/formats" &&
    ok "convert --help lists the writable formats only" ||
    { not_ok "convert --help formats"; cat "$work/formats"; }
finish
