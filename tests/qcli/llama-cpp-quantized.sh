#!/bin/sh
# GGUF files quantized by llama.cpp's own llama-quantize (the peer built by
# ../shared/peers/llama-cpp.sh) run in slmops as they run in llama.cpp.
. "$top_srcdir/tests/cli/lib.sh"
. "$top_srcdir/tests/qcli/peer.sh"
need gguf/stories260K.gguf text/tinystories_sample.txt

# llama.cpp keeps stories260K's 172-wide ffn_down rows in f16 and quantizes the rest;
# stories15m's 288-wide rows push the K mixes to q5_0/q8_0 fallbacks, its 768-wide
# ones to q4_k, q5_k and q6_k: between them every type slmops reads appears.
"$slmops" init --arch llama --preset stories15m --random --type f32 --seed 3 "$work/s15.gguf" \
    2>"$work/err" || { cat "$work/err"; exit 1; }
for t in Q8_0 Q4_0 Q4_K_M; do
    "$peer/llama-quantize" "$fx/gguf/stories260K.gguf" "$work/s260-$t.gguf" "$t" \
        >"$work/q.log" 2>&1 || { not_ok "llama-quantize stories260K $t"; tail -n 3 "$work/q.log"; continue; }
    same_greedy_text "$work/s260-$t.gguf" "stories260K $t from llama-quantize"
done
for t in Q8_0 Q4_0 Q4_1 Q5_0 Q5_1 Q4_K_M Q5_K_M Q6_K; do
    "$peer/llama-quantize" "$work/s15.gguf" "$work/s15-$t.gguf" "$t" >"$work/q.log" 2>&1 ||
        { not_ok "llama-quantize stories15m $t"; tail -n 3 "$work/q.log"; continue; }
    same_perplexity "$work/s15-$t.gguf" "stories15m $t from llama-quantize"
done
finish
