#!/bin/sh
# Issue 7, item 18: --type takes llama-quantize's names in any case (Q4_K_M, q4_k_m,
# the alias Q4_K, the number 15) and slmops' type names; a llama-quantize name whose
# type no quantizer plugin provides is refused naming that type. The mixes are data:
# a .mixes file on the plugin path adds one, a broken one is named and ignored.
. "$top_srcdir/tests/cli/lib.sh"
need gguf/stories260K.gguf
m=$fx/gguf/stories260K.gguf

for t in q4_k_m Q4_K_M Q4_k_M Q4_K 15; do
    if "$slmops" quantize "$m" "$work/q.gguf" --type "$t" >"$work/out" 2>"$work/err"; then
        grep -q '^quantized .* as Q4_K_M (mostly q4_k, general.file_type 15)$' "$work/out" &&
            ok "--type $t is Q4_K_M" || { not_ok "--type $t: report"; head -3 "$work/out"; }
    else
        not_ok "--type $t failed"; cat "$work/err"
    fi
done
# stories260K through Q4_K_M: the report names each tensor that fell back, and why.
[ "$(grep -c 'ffn_down.weight *row length 172 is not a multiple of q[46]_k.s block of 256: kept in f16' \
    "$work/out")" -eq 5 ] && ok "Q4_K_M: the five 172-wide ffn_down rows are kept in f16, with why" ||
    { not_ok "Q4_K_M: ffn_down fallbacks not reported"; cat "$work/out"; }
grep -q 'blk.2.attn_v.weight *row length 64 is not a multiple of q6_k.s block of 256: kept in q8_0' \
    "$work/out" && ok "Q4_K_M: blk.2.attn_v (use_more_bits: q6_k) falls back to q8_0, with why" ||
    { not_ok "Q4_K_M: attn_v fallback not reported"; cat "$work/out"; }

for t in Q8_0 q8_0 Q6_K F16 bf16; do
    "$slmops" quantize "$m" "$work/q.gguf" --type "$t" --json >"$work/out" 2>"$work/err" &&
        ok "--type $t accepted" || { not_ok "--type $t"; cat "$work/err"; }
done
"$slmops" quantize "$m" "$work/q.gguf" --type Q4_0 --tensor-type 'attn_v=Q8_0' --json \
    >"$work/out" 2>"$work/err" && grep -q '"q8_0": 6' "$work/out" &&
    ok "--tensor-type takes a type in any case" || { not_ok "--tensor-type =Q8_0"; cat "$work/err"; }

rm -f "$work/never.gguf"
expect_fail "Q3_K_M names the missing q3_k" 1 \
    "Q3_K_M needs type q3_k, which no quantizer plugin provides \(this installation has q4_0, " \
    "$slmops" quantize "$m" "$work/never.gguf" --type Q3_K_M
expect_fail "iq4_xs names the missing iq4_xs" 1 "IQ4_XS needs type iq4_xs, which no quantizer" \
    "$slmops" quantize "$m" "$work/never.gguf" --type iq4_xs
expect_fail "an unknown name is a usage error" 2 "unknown type 'q4_k_x'" \
    "$slmops" quantize "$m" "$work/never.gguf" --type q4_k_x
[ "$(wc -l <"$work/err")" -le 2 ] && ok "one-line error (and the --help hint)" ||
    not_ok "long error: $(cat "$work/err")"
[ -e "$work/never.gguf" ] && not_ok "a refused type left an output" || ok "refused types write nothing"

# A mix is data: a folder on the plugin path adds one (here: everything q8_0 but
# the first block's attn_v in f16); a broken or special file is named and skipped.
mkdir "$work/extra"
cat >"$work/extra/my.mixes" <<'JSON'
{"file_format_version": "1.0.0",
 "categories": [{"name": "attn_v", "contains": ["attn_v.weight"], "count": "tensors"}],
 "mixes": [{"name": "MY_MIX", "file_type": 7, "type": "q8_0",
            "rules": [{"category": "attn_v", "when": {"index_below": 1}, "type": "f16"}]}]}
JSON
printf '{"file_format_version": "1.0.0", "categories": [], "mixes": [{"name": "X"}]}' \
    >"$work/extra/broken.mixes"
mkfifo "$work/extra/fifo.mixes"
SLMOPS_PLUGIN_PATH="$work/extra:$SLMOPS_PLUGIN_PATH" timeout 60 "$slmops" quantize "$m" \
    "$work/my.gguf" --type my_mix --json >"$work/out" 2>"$work/err"
rc=$?
[ $rc -eq 0 ] && grep -q '"mix": "MY_MIX"' "$work/out" && grep -q '"f16": 6' "$work/out" &&
    ok "a mix from a .mixes file on the plugin path applies (attn_v of block 0 in f16)" ||
    { not_ok "user mix: exit $rc"; cat "$work/err"; }
grep -q "broken.mixes: ignored: mixes\[0\] needs \"name\", \"type\" and \"file_type\"" "$work/err" &&
    ok "a broken .mixes file is named with the reason" || { not_ok "broken.mixes"; cat "$work/err"; }
grep -q "fifo.mixes: ignored: is a FIFO, not a regular file" "$work/err" &&
    ok "a FIFO named .mixes is skipped, not opened for reading" || { not_ok "fifo"; cat "$work/err"; }
finish
