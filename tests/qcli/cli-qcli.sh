#!/bin/sh
# The quantize, init and bench verbs from the command line: the report (text and
# JSON) names the kept 172-wide rows, bad requests fail clearly and write nothing.
. "$top_srcdir/tests/cli/lib.sh"
need gguf/stories260K.gguf text/tinystories_sample.txt
m=$fx/gguf/stories260K.gguf
txt=$fx/text/tinystories_sample.txt

if "$slmops" quantize "$m" "$work/q8.gguf" --type q8_0 >"$work/out" 2>"$work/err"; then
    ok "quantize q8_0 exits 0"
else
    not_ok "quantize q8_0 failed"; cat "$work/err"
fi
[ "$(grep -c 'ffn_down.weight.*row length 172 is not a multiple of q8_0.s block of 32: kept in f16' \
    "$work/out")" -eq 5 ] && ok "the report lists the five 172-wide tensors and why" \
    || { not_ok "kept tensors not listed"; cat "$work/out"; }
grep -E '^  file size: +[0-9]+ -> [0-9]+ bytes' "$work/out" >/dev/null &&
    grep -E 'bits per weight' "$work/out" >/dev/null && ok "sizes and bits per weight" \
    || not_ok "no sizes in the report"
"$slmops" info "$work/q8.gguf" >"$work/info" 2>&1 && grep -E '^  q8_0 +32 ' "$work/info" >/dev/null \
    && ok "the output is a readable GGUF with 32 q8_0 tensors" || { not_ok "info"; cat "$work/info"; }

"$slmops" quantize "$m" "$work/q4.gguf" --type Q4_0 --tensor-type 'attn_(q|k)=q8_0' --json \
    >"$work/j" 2>"$work/err"
grep -E '"kept": \[' "$work/j" >/dev/null && grep -E '"q8_0": 11' "$work/j" >/dev/null &&
    ok "--json report with the override applied" || { not_ok "--json"; cat "$work/j" "$work/err"; }

# nf4 is slmops-only (type id 1024): the GGUF it writes is read back and runs.
if "$slmops" quantize "$m" "$work/nf4.gguf" --type nf4 >"$work/out" 2>"$work/err" &&
    "$slmops" generate -m "$work/nf4.gguf" --temp 0 -n 16 >"$work/gen" 2>"$work/err"; then
    grep -q '^Once upon a time' "$work/gen" && ok "an nf4 GGUF is written, read back and generates" \
        || { not_ok "nf4 text"; cat "$work/gen"; }
else
    not_ok "nf4 quantize or generate failed"; cat "$work/err"
fi

if "$slmops" quantize "$m" "$work/e.gguf" --type q8_0 --eval "$txt" --ctx 128 >"$work/out" \
    2>"$work/err"; then
    grep -E '^  perplexity: +[0-9.]+ -> [0-9.]+' "$work/out" >/dev/null &&
        grep -E '^  KL divergence: mean [0-9.]+' "$work/out" >/dev/null &&
        ok "--eval prints perplexity before/after and the KL divergence" ||
        { not_ok "--eval report"; cat "$work/out"; }
else
    not_ok "--eval failed"; cat "$work/err"
fi

rm -f "$work/never.gguf"
expect_fail "unknown type" 2 "unknown type 'q3_x'" "$slmops" quantize "$m" "$work/never.gguf" --type q3_x
expect_fail "bad regex" 2 "bad regular expression" \
    "$slmops" quantize "$m" "$work/never.gguf" --type q8_0 --tensor-type 'ffn_(=q8_0'
expect_fail "--tensor-type without a type" 2 "REGEX=TYPE" \
    "$slmops" quantize "$m" "$work/never.gguf" --type q8_0 --tensor-type ffn_up
expect_fail "unreadable input" 1 "missing.gguf" \
    "$slmops" quantize "$work/missing.gguf" "$work/never.gguf" --type q8_0
expect_fail "output = input" 1 "overwrite the input" "$slmops" quantize "$m" "$m" --type q8_0
expect_fail "evaluation text too short" 1 "two chunks" \
    "$slmops" quantize "$m" "$work/never.gguf" --type q8_0 --eval "$txt" --ctx 4096
expect_fail "missing --type" 2 "missing --type" "$slmops" quantize "$m" "$work/never.gguf"
[ -e "$work/never.gguf" ] && not_ok "a refused request left an output file" \
    || ok "refused requests write nothing"
ls "$work" | grep -E '\.tmp|never' >/dev/null && not_ok "temporary files left: $(ls "$work")" \
    || ok "no temporary files are left"

if "$slmops" init --arch llama --preset stories15m --random --type q8_0 "$work/s15.gguf" \
    2>"$work/err"; then
    "$slmops" info "$work/s15.gguf" >"$work/info" 2>&1
    grep -E '32000 tokens, bos 1, eos 2' "$work/info" >/dev/null &&
        grep -E 'embedding_length +288' "$work/info" >/dev/null &&
        ok "init stories15m: shapes and vocabulary" || { not_ok "init info"; cat "$work/info"; }
else
    not_ok "init failed"; cat "$work/err"
fi
expect_fail "init needs --random" 2 "random" \
    "$slmops" init --arch llama --preset stories15m "$work/x.gguf"
expect_fail "init: unknown preset" 1 "unknown preset" \
    "$slmops" init --arch llama --preset nope --random "$work/x.gguf"

if "$slmops" bench -m "$m" -p 16 -n 4 -r 2 --json >"$work/b" 2>"$work/err"; then
    grep -E '"test": "pp16"' "$work/b" >/dev/null && grep -E '"test": "tg4"' "$work/b" >/dev/null &&
        ! grep -E '"avg_ts": (0[,.]|-)' "$work/b" >/dev/null &&
        ok "bench --json: pp16 and tg4 with positive rates" || { not_ok "bench"; cat "$work/b"; }
else
    not_ok "bench failed"; cat "$work/err"
fi
"$slmops" bench -m "$m" -p 16 -n 4 -r 2 >"$work/b" 2>&1 &&
    grep -E '^\| llama .*\| +tg4 \| +[0-9.]+ ± +[0-9.]+ \|$' "$work/b" >/dev/null &&
    ok "bench table as llama-bench prints it" || { not_ok "bench table"; cat "$work/b"; }
expect_fail "bench needs -m" 2 "missing -m" "$slmops" bench -p 16
finish
