#!/bin/sh
# Issue 7, item 18: a quantize whose output is larger than its input says so, with
# both sizes, on one warning line (f16 -> f32; q4_0 -> q8_0 with --allow-requantize).
. "$top_srcdir/tests/cli/lib.sh"
need gguf/stories260K.gguf gguf/derived/stories260K-F16.gguf
f16=$fx/gguf/derived/stories260K-F16.gguf

size() { wc -c <"$1" | tr -d ' '; }
"$slmops" quantize "$f16" "$work/f32.gguf" --type F32 >/dev/null 2>"$work/err" ||
    { not_ok "f16 -> F32 failed"; cat "$work/err"; }
want="warn: quantize: $work/f32.gguf is larger than its input: $(size "$work/f32.gguf") bytes .* from $(size "$f16") bytes"
[ "$(grep -c "$want" "$work/err")" -eq 1 ] && ok "f16 -> F32 warns with both sizes" ||
    { not_ok "no warning matching '$want'"; cat "$work/err"; }

"$slmops" quantize "$fx/gguf/stories260K.gguf" "$work/q4.gguf" --type q4_0 >/dev/null \
    2>"$work/err" && ! grep -q "larger" "$work/err" && ok "f32 -> q4_0 does not warn" ||
    { not_ok "f32 -> q4_0"; cat "$work/err"; }
"$slmops" quantize "$work/q4.gguf" "$work/q8.gguf" --type q8_0 --allow-requantize >/dev/null \
    2>"$work/err" && grep -q "q8.gguf is larger than its input: $(size "$work/q8.gguf") bytes" \
    "$work/err" && ok "q4_0 -> q8_0 warns" || { not_ok "q4_0 -> q8_0"; cat "$work/err"; }
finish
