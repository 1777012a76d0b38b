#!/bin/sh
# Files written by `slmops init` and `slmops quantize` load in llama.cpp (the peer
# built by ../shared/peers/llama-cpp.sh), which tokenizes and continues a prompt
# exactly as slmops does, and measures the same perplexity.
. "$top_srcdir/tests/cli/lib.sh"
. "$top_srcdir/tests/qcli/peer.sh"
need gguf/stories260K.gguf text/tinystories_sample.txt

"$slmops" init --arch llama --preset stories15m --random --type f32 --seed 3 "$work/s15.gguf" \
    2>"$work/err" || { cat "$work/err"; exit 1; }
for t in q8_0 q4_0; do
    "$slmops" quantize "$fx/gguf/stories260K.gguf" "$work/s260-$t.gguf" --type $t >/dev/null \
        2>"$work/err" || { cat "$work/err"; exit 1; }
done
for t in q8_0 q4_0 q4_k q6_k; do
    "$slmops" quantize "$work/s15.gguf" "$work/s15-$t.gguf" --type $t >/dev/null \
        2>"$work/err" || { cat "$work/err"; exit 1; }
done

# stories260K is trained: its greedy continuation has clear winners.
for t in q8_0 q4_0; do
    same_greedy_text "$work/s260-$t.gguf" "stories260K $t written by slmops"
done
# stories15m has random weights: near-ties make greedy text fragile, so both engines
# score the same text instead (llama-perplexity's method, which slmops eval follows).
for f in s15 s15-q8_0 s15-q4_0 s15-q4_k s15-q6_k; do
    same_perplexity "$work/$f.gguf" "stories15m $f written by slmops"
done
finish
