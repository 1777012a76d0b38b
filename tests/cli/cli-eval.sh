#!/bin/sh
# Acceptance 7: `slmops eval --perplexity` on in-domain text prints a finite
# perplexity in a sane range for stories260K (llama.cpp's method, --ctx 128).
. "$(dirname "$0")/lib.sh"
need gguf/stories260K.gguf text/tinystories_sample.txt

if "$slmops" eval -m "$fx/gguf/stories260K.gguf" --perplexity "$fx/text/tinystories_sample.txt" \
    --ctx 128 >"$work/out" 2>"$work/err"; then
    ok "eval exits 0"
else
    not_ok "eval failed"; cat "$work/err"
fi
cat "$work/out"
ppl=$(sed -n 's/^Final estimate: PPL = \([0-9.]*\).*/\1/p' "$work/out")
if [ -n "$ppl" ] && awk -v p="$ppl" 'BEGIN { exit !(p > 1 && p < 20) }'; then
    ok "perplexity $ppl is in (1, 20)"
else
    not_ok "perplexity '$ppl' is not a number in (1, 20)"
fi
grep -E '^\[1\][0-9.]+,\[2\]' "$work/out" >/dev/null && ok "running values are printed" \
    || not_ok "no running values"
"$slmops" eval -m "$fx/gguf/stories260K.gguf" --perplexity "$fx/text/tinystories_sample.txt" \
    --ctx 128 --json >"$work/j" 2>&1
grep -E "\"ppl\": $ppl" "$work/j" >/dev/null 2>&1 || grep -q '"ppl":' "$work/j" &&
    ok "--json has ppl" || not_ok "--json lacks ppl"
expect_fail "a text too short for two chunks is an error" 1 "needs at least" \
    "$slmops" eval -m "$fx/gguf/stories260K.gguf" --perplexity "$fx/text/tinystories_sample.txt" \
    --ctx 4096
finish
