#!/bin/sh
# Files written by `slmops init` and `slmops quantize` load in llama.cpp
# (llama-cpp-python), which tokenizes and continues a prompt greedily exactly as
# slmops does. Skipped when llama_cpp cannot be imported.
. "$top_srcdir/tests/cli/lib.sh"
need gguf/stories260K.gguf
python=${PYTHON3:-python3}
"$python" -c 'import llama_cpp' 2>/dev/null || { echo "SKIP: python3 cannot import llama_cpp"; exit 77; }
prompt="Once upon a time"

"$slmops" init --arch llama --preset stories15m --random --type f32 --seed 3 "$work/s15.gguf" \
    2>"$work/err" || { cat "$work/err"; exit 1; }
for t in q8_0 q4_0; do
    "$slmops" quantize "$fx/gguf/stories260K.gguf" "$work/$t.gguf" --type $t >/dev/null \
        2>"$work/err" || { cat "$work/err"; exit 1; }
done
"$python" "$top_srcdir/tests/qcli/llama-cpp-compat.py" greedy "$prompt" 16 "$work/s15.gguf" \
    "$work/q8_0.gguf" "$work/q4_0.gguf" >"$work/llama" 2>"$work/err" || { not_ok "llama.cpp cannot load them"; cat "$work/err"; }

for f in s15 q8_0 q4_0; do
    line=$(grep "\"$work/$f.gguf\"" "$work/llama")
    [ -n "$line" ] && ok "llama.cpp loads $f.gguf" || { not_ok "llama.cpp did not load $f.gguf"; continue; }
    ids=$("$slmops" tokenize -m "$work/$f.gguf" --ids --bos "$prompt" 2>/dev/null | tr ' ' ',' |
        tr -d '\n')
    want=$(echo "$line" | sed 's/.*"ids": \[\([0-9, ]*\)\].*/\1/' | tr -d ' ')
    [ "$ids" = "$want" ] && ok "$f: same token ids ($ids)" || not_ok "$f: ids '$ids', llama.cpp '$want'"
    text=$("$slmops" generate -m "$work/$f.gguf" -p "$prompt" -n 16 --temp 0 2>/dev/null)
    ltext=$(echo "$line" | "$python" -c 'import json,sys; print(json.loads(sys.stdin.read())["text"], end="")')
    [ "$text" = "$prompt$ltext" ] && ok "$f: same greedy text" \
        || not_ok "$f: slmops '$text', llama.cpp '$prompt$ltext'"
done
finish
