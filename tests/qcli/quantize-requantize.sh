#!/bin/sh
# Issue 7, item 18: converting tensors that are already quantized needs
# --allow-requantize, as in llama-quantize; without it the request fails before
# anything is written, with one line naming the input's quantized types and the flag.
. "$top_srcdir/tests/cli/lib.sh"
need gguf/stories260K.gguf
m=$fx/gguf/stories260K.gguf
"$slmops" quantize "$m" "$work/q4.gguf" --type q4_0 >/dev/null 2>"$work/err" ||
    { cat "$work/err"; exit 1; }

listing() { ls -l --time-style=+%s.%N "$work" | grep -vE " (err|out)$|^total"; }
before=$(listing)
expect_fail "q4_0 -> Q8_0 without the flag" 1 \
    "q4\.gguf: 31 tensors are already quantized \(q4_0\); quantizing again loses precision: pass --allow-requantize" \
    "$slmops" quantize "$work/q4.gguf" "$work/q8.gguf" --type Q8_0
[ "$(wc -l <"$work/err")" -eq 1 ] && ok "the refusal is one line" || not_ok "$(cat "$work/err")"
expect_fail "q4_0 -> F16 (dequantizing) without the flag" 1 "already quantized \(q4_0, q8_0\).*--allow-requantize" \
    "$slmops" quantize "$work/q4.gguf" "$work/f16.gguf" --type F16
[ "$(listing)" = "$before" ] && ok "refused requests leave the folder as it was" ||
    { not_ok "files changed: $(ls "$work")"; }

if "$slmops" quantize "$work/q4.gguf" "$work/q8.gguf" --type Q8_0 --allow-requantize --json \
    >"$work/out" 2>"$work/err"; then
    grep -q '"q8_0": 32' "$work/out" && ok "--allow-requantize converts q4_0 to q8_0" ||
        { not_ok "requantized types"; grep -A4 '"types"' "$work/out"; }
else
    not_ok "--allow-requantize failed"; cat "$work/err"
fi
# Nothing is converted when every quantized tensor keeps its type (llama-quantize
# copies such tensors and asks for no flag either).
"$slmops" quantize "$work/q4.gguf" "$work/same.gguf" --type Q4_0 >/dev/null 2>"$work/err" &&
    ok "Q4_0 over a Q4_0 model copies and needs no flag" || { not_ok "Q4_0 again"; cat "$work/err"; }
finish
