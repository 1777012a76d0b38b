#!/bin/sh
# `slmops merge` and `slmops convert --base` from the command line: usage errors exit 2,
# bad adapters exit 1 naming the file and the tensor and leave OUT as it was, and the
# adapters a merge and a conversion write are the ones asked for.
. "${top_srcdir:?run through make check}/tests/cli/lib.sh"
need gguf/stories260K.gguf gguf/llama-2-tiny-random.gguf text/tinystories_sample.txt
tool=$top_builddir/tests/adapter/adapter-tool
base=$fx/gguf/stories260K.gguf
run() { "$@" >"$work/out" 2>"$work/err" || { echo "FAIL: $*"; cat "$work/err"; exit 1; }; }

run "$tool" new "$base" "$work/a.gguf" rank=4 alpha=8 seed=1 targets=q,v b_seed=2
run "$tool" load "$base" "$work/a.gguf" "$work/peft" format=format-safetensors

# Usage errors: exit 2, nothing written.
expect_fail "no base" 2 "missing -m BASE" "$slmops" merge --lora "$work/a.gguf" -o "$work/m.gguf"
expect_fail "no adapter" 2 "missing --lora" "$slmops" merge -m "$base" -o "$work/m.gguf"
expect_fail "no output" 2 "missing -o OUT" "$slmops" merge -m "$base" --lora "$work/a.gguf"
expect_fail "empty adapter name" 2 "names no adapter" "$slmops" merge -m "$base" --lora :0.5 -o "$work/m.gguf"
expect_fail "unknown type" 2 "unknown type 'q9_9'" "$slmops" merge -m "$base" --lora "$work/a.gguf" \
    -o "$work/m.gguf" --type q9_9
[ ! -e "$work/m.gguf" ] && ok "usage errors write nothing" || not_ok "usage errors left $work/m.gguf"

# Bad adapters: exit 1 naming file and tensor; an existing OUT is left as it was.
echo old >"$work/m.gguf"
expect_fail "adapter of another model" 1 "a\.gguf: tensor 'blk\.0\.attn_q\.weight\.lora_a' is \[64, 4\].*is this the adapter's base model" \
    "$slmops" merge -m "$fx/gguf/llama-2-tiny-random.gguf" --lora "$work/a.gguf" -o "$work/m.gguf"
expect_fail "a model is not an adapter" 1 "stories260K\.gguf: not an adapter" \
    "$slmops" merge -m "$base" --lora "$base" -o "$work/m.gguf"
cp -r "$work/peft" "$work/noconfig" && rm "$work/noconfig/adapter_config.json"
expect_fail "PEFT folder without adapter_config.json" 1 "noconfig: adapter_model\.safetensors without adapter_config\.json" \
    "$slmops" merge -m "$base" --lora "$work/noconfig" -o "$work/m.gguf"
expect_fail "missing adapter" 1 "nothing\.gguf" "$slmops" merge -m "$base" --lora "$work/nothing.gguf" -o "$work/m.gguf"
expect_fail "OUT is an adapter" 1 "a\.gguf" "$slmops" merge -m "$base" --lora "$work/a.gguf" -o "$work/a.gguf"
[ "$(cat "$work/m.gguf")" = old ] && ok "failed merges leave OUT as it was" || not_ok "OUT was changed"

# Merges: FILE:SCALE, several adapters, PEFT folders, --json; the result runs.
run "$slmops" merge -m "$base" --lora "$work/a.gguf:0.5" --lora "$work/peft:-0.5" -o "$work/zero.gguf" --json
grep -q '"weights_changed": 10' "$work/out" && grep -q '"scale": -0.5' "$work/out" &&
    ok "merge --json reports the adapters and the weights changed" || { not_ok "merge --json:"; cat "$work/out"; }
# +0.5 and -0.5 of the same adapter cancel: every weight comes back (to rounding).
run "$slmops" eval -m "$base" --perplexity "$fx/text/tinystories_sample.txt" --ctx 128
want=$(sed -n 's/^Final estimate: PPL = \([0-9.]*\).*/\1/p' "$work/out")
run "$slmops" eval -m "$work/zero.gguf" --perplexity "$fx/text/tinystories_sample.txt" --ctx 128
got=$(sed -n 's/^Final estimate: PPL = \([0-9.]*\).*/\1/p' "$work/out")
[ -n "$want" ] && [ "$got" = "$want" ] && ok "a merge of +0.5 and -0.5 of one adapter is the base (PPL $got)" ||
    not_ok "cancelling adapters give PPL '$got', the base '$want'"
run "$slmops" merge -m "$base" --lora "$work/a.gguf" -o "$work/m.gguf"
grep -q "merged 1 adapter into .* 10 weights changed" "$work/out" && ok "merge says what it did" ||
    { not_ok "merge printed:"; cat "$work/out"; }
run "$slmops" generate -m "$work/m.gguf" -p "Once upon a time" -n 8 --temp 0
ok "the merged model generates"
expect_fail "an adapter is not a model" 1 "a LoRA adapter, not a model.*slmops merge.*a\.gguf" \
    "$slmops" generate -m "$work/a.gguf" -p "Once" -n 2

# convert: a PEFT folder slmops wrote carries its architecture and head counts (PEFT
# ignores them), so it converts alone; GGUF <-> PEFT round trips. (A folder PEFT wrote
# needs --base: tests/adapter/peft-oracle.sh.)
run "$slmops" convert "$work/peft" "$work/p0.gguf"
run "$tool" load "$base" "$work/p0.gguf" "$work/p0c.gguf"
cmp -s "$work/a.gguf" "$work/p0c.gguf" && ok "a PEFT folder slmops wrote converts without its base" ||
    not_ok "the PEFT folder converted alone differs"
run "$slmops" convert "$work/peft" "$work/p.gguf" --base "$base"
run "$slmops" convert "$work/p.gguf" "$work/peft2" --to safetensors --base "$base"
run "$slmops" convert "$work/peft2" "$work/p2.gguf" --base "$base"
cmp -s "$work/a.gguf" "$work/p.gguf" && cmp -s "$work/a.gguf" "$work/p2.gguf" &&
    ok "GGUF -> PEFT -> GGUF -> PEFT -> GGUF gives the same bytes" || not_ok "converted adapters differ"
expect_fail "adapter converted against another model" 1 "is this the adapter's base model" \
    "$slmops" convert "$work/a.gguf" "$work/x.gguf" --base "$fx/gguf/llama-2-tiny-random.gguf"
finish
