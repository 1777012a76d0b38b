#!/bin/sh
# Issue 7, defect 13: a --ctx too large for memory names the KV cache, its size in GiB
# and the --ctx that fits, and a --ctx past the trained context is warned about.
. "$(dirname "$0")/lib.sh"
need gguf/stories260K.gguf
"$slmops" init --arch llama --preset stories15m --random --type q4_0 "$work/s15.gguf" 2>/dev/null ||
    exit 99
# stories15m: 6 layers x K and V x 288 values x f16 = 6912 bytes a token, 108 GiB at 2^24.
expect_fail "a KV cache larger than memory" 1 \
    "the KV cache for a context of 16777216 tokens needs 108.00 GiB .* free; a context \(--ctx\) of [0-9]+ tokens would fit" \
    "$slmops" generate -m "$work/s15.gguf" --ctx 16777216 -n 1
fit=$(sed -n 's/.*a context (--ctx) of \([0-9]*\) tokens would fit.*/\1/p' "$work/err")
[ -n "$fit" ] && [ "$fit" -ge 256 ] && [ $((fit % 256)) -eq 0 ] &&
    ok "the suggested --ctx ($fit) is a whole number of 256-token blocks" || not_ok "suggested '$fit'"
"$slmops" generate -m "$work/s15.gguf" --ctx 512 -n 1 >/dev/null 2>"$work/err" &&
    grep -q 'warning: --ctx 512 is more than the 256 tokens .*s15.gguf was trained on' "$work/err" &&
    ok "--ctx past the trained context (256) warns and runs" || { not_ok "no warning"; cat "$work/err"; }
"$slmops" generate -m "$work/s15.gguf" --ctx 256 -n 1 >/dev/null 2>"$work/err" &&
    ! grep -q warning "$work/err" && ok "--ctx within the trained context: no warning" ||
    not_ok "a warning at --ctx 256"
finish
