#!/bin/sh
# Acceptance 1 and 2: greedy generation from stories260K prints exactly what
# llama2.c's run printed (256 tokens from BOS, then a newline), from the llama2.c
# checkpoint with tok512.bin and from the GGUF with its own tokenizer; and the
# token ids of --json equal the reference's greedy ids.
. "$(dirname "$0")/lib.sh"
need llama2c/stories260K.bin llama2c/tok512.bin gguf/stories260K.gguf \
    reference/stories260K-greedy-256.txt reference/stories260K-llama2c-logits.json
ref=$fx/reference/stories260K-greedy-256.txt

if "$slmops" generate -m "$fx/llama2c/stories260K.bin" --tokenizer "$fx/llama2c/tok512.bin" \
    --temp 0 -n 256 >"$work/bin.txt" 2>"$work/bin.err" && cmp "$work/bin.txt" "$ref"; then
    ok "llama2c checkpoint: greedy text equals the reference byte for byte"
else
    not_ok "llama2c checkpoint: greedy text differs"; cat "$work/bin.err"
    diff "$ref" "$work/bin.txt" | head -5
fi

if "$slmops" generate -m "$fx/gguf/stories260K.gguf" --temp 0 -n 256 >"$work/gguf.txt" \
    2>"$work/gguf.err" && cmp "$work/gguf.txt" "$ref"; then
    ok "GGUF with its own tokenizer: greedy text equals the reference"
else
    not_ok "GGUF: greedy text differs"; cat "$work/gguf.err"
fi

# The ids, compared as one line of numbers each (no JSON tool needed).
ids_of() { tr -d ' \n' | sed -n "s/.*\"$1\":\[\([0-9,]*\)\].*/\1/p"; }
"$slmops" generate -m "$fx/gguf/stories260K.gguf" --temp 0 -n 256 --json >"$work/g.json" 2>&1
got=$(ids_of tokens <"$work/g.json")
want=$(ids_of greedy_ids <"$fx/reference/stories260K-llama2c-logits.json")
if [ -n "$got" ] && [ "$got" = "$want" ]; then
    ok "--json token ids equal the reference greedy ids"
else
    not_ok "--json token ids differ"; head -c 400 "$work/g.json"
fi
grep -q '"predicted_tokens_per_s"' "$work/g.json" && grep -q '"prompt_tokens_per_s"' "$work/g.json" \
    && ok "--json reports prompt and generation speed" || not_ok "--json timings missing"
# The process's own peak memory (VmHWM): more than its libraries, less than a GiB for a
# 260K model, and the same figure on the text path's stderr line.
peak=$(sed -n 's/.*"peak_rss_bytes": *\([0-9]*\).*/\1/p' "$work/g.json")
[ -n "$peak" ] && [ "$peak" -gt 1048576 ] && [ "$peak" -lt 1073741824 ] &&
    ok "--json reports the peak resident memory ($peak bytes)" ||
    not_ok "--json peak_rss_bytes is '$peak'"
"$slmops" generate -m "$fx/gguf/stories260K.gguf" --temp 0 -n 8 >/dev/null 2>"$work/g.err"
grep -Eq '; peak RSS [0-9]+\.[0-9] MiB$' "$work/g.err" && ok "the stderr summary ends with the peak RSS" ||
    { not_ok "no peak RSS on stderr"; cat "$work/g.err"; }

# Sampling: the same seed gives the same text; a stop string ends it before itself.
a=$("$slmops" generate -m "$fx/gguf/stories260K.gguf" -p "Once upon a time" -n 40 --seed 7 2>/dev/null)
b=$("$slmops" generate -m "$fx/gguf/stories260K.gguf" -p "Once upon a time" -n 40 --seed 7 2>/dev/null)
[ -n "$a" ] && [ "$a" = "$b" ] && ok "same seed, same text" || not_ok "seed 7 gave '$a' then '$b'"
case $a in "Once upon a time"*) ok "the prompt is echoed first" ;; *) not_ok "no echo: '$a'" ;; esac
s=$("$slmops" generate -m "$fx/gguf/stories260K.gguf" --temp 0 -n 256 --stop "Lily" 2>/dev/null)
[ "$s" = "Once upon a time, there was a little girl named " ] && ok "--stop cuts before the stop string" \
    || not_ok "--stop gave '$s'"
finish
