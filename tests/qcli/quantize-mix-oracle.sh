#!/bin/sh
# Issue 7, item 18: llama-quantize's mixes (Q4_K_M, Q5_K_S, ...) give, tensor by
# tensor, the types llama-quantize itself gives for the same input. The peer comes
# from ../shared/peers/llama-cpp.sh (built once, then cached).
. "$top_srcdir/tests/cli/lib.sh"
need gguf/stories260K.gguf
bin=$(llama_cpp_bin) || exit $?
model="$top_builddir/tests/qcli/mix-model"

# Each model exercises rules the others do not: use_more_bits and the first
# eighth/sixteenth over 20 blocks with n_gqa 4; a tied embedding (no output.weight)
# with 288-wide ffn_down rows (fallbacks); 8 experts (3-D expert tensors, a router
# that is never quantized, layers from names); 80 blocks with GQA (llama.cpp's 70B
# bump) and a fused attn_qkv; a tied 288-wide embedding; stories260K (172-wide rows).
"$model" "$work/deep.gguf" layers=20 heads=8 kv=2 &&
"$model" "$work/tied.gguf" layers=9 heads=4 kv=4 tied=1 ff=288 &&
"$model" "$work/moe.gguf" layers=6 heads=8 kv=2 experts=8 rows=2 &&
"$model" "$work/b70.gguf" layers=80 heads=8 kv=1 rows=2 qkv=1 &&
"$model" "$work/tied288.gguf" layers=3 heads=4 kv=1 tied=1 embd=288 ff=64 ||
    { echo "not ok - mix-model failed"; exit 1; }
cp "$fx/gguf/stories260K.gguf" "$work/s260.gguf"

types() { # FILE: "name type" per tensor, sorted
    "$slmops" info "$1" --tensors | awk '/^TENSOR/ { t = 1; next } t && NF >= 3 { print $1, $2 }' |
        sort
}

all="Q4_K_M Q4_K_S Q5_K_M Q5_K_S Q6_K Q8_0 Q4_0 Q4_1 Q5_0 Q5_1 F16 BF16 F32 Q4_K Q5_K"
for m in deep tied moe b70 tied288 s260; do
    mixes=$all
    [ "$m" = b70 ] && mixes="Q4_K_M Q4_K_S Q5_K_M Q6_K Q4_0"
    for t in $mixes; do
        if ! "$bin/llama-quantize" "$work/$m.gguf" "$work/l.gguf" "$t" 2 >"$work/l.log" 2>&1; then
            not_ok "llama-quantize $m $t failed"; tail -3 "$work/l.log"; continue
        fi
        # slmops takes the name in any case.
        lower=$(echo "$t" | tr 'A-Z' 'a-z')
        if ! "$slmops" quantize "$work/$m.gguf" "$work/s.gguf" --type "$lower" >/dev/null \
            2>"$work/err"; then
            not_ok "slmops quantize $m --type $lower failed"; cat "$work/err"; continue
        fi
        types "$work/l.gguf" >"$work/l.types"
        types "$work/s.gguf" >"$work/s.types"
        if [ -s "$work/l.types" ] && cmp -s "$work/l.types" "$work/s.types"; then
            ok "$m $t: $(wc -l <"$work/s.types") tensors with llama-quantize's types"
        else
            not_ok "$m $t: types differ (< llama-quantize, > slmops)"
            diff "$work/l.types" "$work/s.types" | head -10
        fi
    done
done
finish
