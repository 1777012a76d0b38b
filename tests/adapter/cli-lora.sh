#!/bin/sh
# `--lora FILE[:SCALE]` on generate, chat, eval and bench (issue 8): adapters applied at
# run time, unmerged, give what `slmops merge` of the same adapters at the same scales
# gives (greedy text; perplexity within 1e-5 relative), a scale of 0 gives exactly the
# base's output, and the reports name the adapters. (PEFT: peft-oracle.sh; llama.cpp:
# llama-cpp-lora.sh; bad --lora values: tests/cli/bad-input/cases.txt.)
. "${top_srcdir:?run through make check}/tests/cli/lib.sh"
need gguf/stories260K.gguf text/tinystories_sample.txt
tool=$top_builddir/tests/adapter/adapter-tool
base=$fx/gguf/stories260K.gguf
text=$fx/text/tinystories_sample.txt
py=${PYTHON3:-python3}
run() { "$@" >"$work/out" 2>"$work/err" || { echo "FAIL: $*"; cat "$work/err"; exit 1; }; }
# json FILE EXPR: a value of the JSON document in FILE (d), printed by Python.
json() { "$py" -c "import json, sys; d = json.load(open(sys.argv[1])); print($2)" "$1"; }

run "$tool" new "$base" "$work/a.gguf" rank=4 alpha=16 seed=3 targets=q,k,v,o,gate,up,down b_seed=11 b_scale=0.03
run "$tool" new "$base" "$work/b.gguf" rank=8 alpha=4 rslora=1 seed=4 targets=q,k,v,o b_seed=12 b_scale=0.1
run "$tool" load "$base" "$work/b.gguf" "$work/b-peft" format=format-safetensors
run "$slmops" merge -m "$base" --lora "$work/a.gguf:0.5" --lora "$work/b-peft" -o "$work/merged.gguf"
set -- --lora "$work/a.gguf:0.5" --lora "$work/b-peft"

# Greedy text: the adapters at run time, the merged model, and the base apart.
gen() { # OUT MODEL [options...]
    out=$1
    shift
    "$slmops" generate -m "$@" -p "Once upon a time" -n 48 --temp 0 --json >"$work/$out" 2>"$work/err" ||
        { echo "FAIL: generate $*"; cat "$work/err"; exit 1; }
}
gen plain.json "$base"
gen lora.json "$base" "$@"
gen merged.json "$work/merged.gguf"
gen zero.json "$base" --lora "$work/a.gguf:0" --lora "$work/b-peft:0"
tokens() { json "$work/$1" 'd["tokens"]'; }
[ "$(tokens lora.json)" = "$(tokens merged.json)" ] && ok "generate --lora A:0.5 --lora B: the merged model's greedy text" ||
    { not_ok "generate --lora and the merged model differ:"; json "$work/lora.json" 'd["text"]'; json "$work/merged.json" 'd["text"]'; }
[ "$(tokens lora.json)" != "$(tokens plain.json)" ] && ok "the adapters change the text" ||
    not_ok "generate --lora gives the base's text: the comparison proves nothing"
[ "$(tokens zero.json)" = "$(tokens plain.json)" ] && ok "scale 0: the base's text" ||
    not_ok "generate --lora FILE:0 changed the text"
[ "$(json "$work/lora.json" 'd["lora"]')" = "[{'path': '$work/a.gguf', 'scale': 0.5}, {'path': '$work/b-peft', 'scale': 1.0}]" ] &&
    ok "generate --json lists the adapters" || { not_ok "generate --json lists:"; json "$work/lora.json" 'd.get("lora")'; }
[ "$(json "$work/plain.json" '"lora" in d')" = False ] && ok "generate --json without --lora has no lora key" ||
    not_ok "generate --json without --lora names adapters"

# Perplexity: within 1e-5 of the merged model; scale 0 exactly the base's.
ev() { # OUT MODEL [options...]
    out=$1
    shift
    "$slmops" eval -m "$@" --perplexity "$text" --ctx 128 --json >"$work/$out" 2>"$work/err" ||
        { echo "FAIL: eval $*"; cat "$work/err"; exit 1; }
}
ev plain.ppl "$base"
ev lora.ppl "$base" "$@"
ev merged.ppl "$work/merged.gguf"
ev zero.ppl "$base" --lora "$work/a.gguf:0"
ppl() { json "$work/$1" 'repr(d["ppl"])'; }
if awk -v a="$(ppl lora.ppl)" -v b="$(ppl merged.ppl)" -v p="$(ppl plain.ppl)" \
    'BEGIN { d = (a - b) / b; exit !(d <= 1e-5 && d >= -1e-5 && (a > 1.01 * p || a < 0.99 * p)) }'; then
    ok "eval --lora: PPL $(ppl lora.ppl), merged $(ppl merged.ppl) (base $(ppl plain.ppl))"
else
    not_ok "eval --lora PPL $(ppl lora.ppl), merged $(ppl merged.ppl), base $(ppl plain.ppl) (want within 1e-5, away from the base)"
fi
[ "$(json "$work/zero.ppl" 'd["running"]')" = "$(json "$work/plain.ppl" 'd["running"]')" ] &&
    ok "eval --lora FILE:0: the base's perplexity, bit for bit ($(ppl zero.ppl))" ||
    not_ok "eval --lora FILE:0 gives $(ppl zero.ppl), the base $(ppl plain.ppl)"
[ "$(json "$work/lora.ppl" 'len(d["lora"])')" = 2 ] && ok "eval --json lists the adapters" ||
    not_ok "eval --json does not list the adapters"

# chat (greedy, one turn) and bench run with adapters too.
echo "Tell me a story" >"$work/msg"
chat() { "$slmops" chat -m "$@" --chat-template chatml -n 24 --temp 0 <"$work/msg" 2>"$work/err"; }
chat "$base" "$@" >"$work/chat.lora" && chat "$work/merged.gguf" >"$work/chat.merged" &&
    cmp -s "$work/chat.lora" "$work/chat.merged" && [ -s "$work/chat.lora" ] &&
    ok "chat --lora: the merged model's reply" || { not_ok "chat --lora and the merged model differ:"; cat "$work/err" "$work/chat.lora" "$work/chat.merged"; }
run "$slmops" bench -m "$base" "$@" -p 16 -n 4 -r 1 --json
[ "$(json "$work/out" 'len(d["lora"]), len(d["results"])')" = "2 2" ] && ok "bench --lora runs and lists the adapters" ||
    { not_ok "bench --lora --json:"; cat "$work/out"; }
finish
