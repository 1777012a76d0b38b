#!/bin/sh
# Chat templates rendered as Hugging Face transformers renders them (issue 7, item 12):
# every fixtures/chat-templates/expected/TEMPLATE.CONVERSATION.txt byte for byte, every
# .error refused with its message, and the template of every GGUF fixture that has one
# against render.py (python3 + jinja2, installed by the README's first command).
. "$(dirname "$0")/../cli/lib.sh"
need chat-templates/render.py llama.cpp-vocab/ggml-vocab-phi-3.gguf
ct=$fx/chat-templates
render="$top_builddir/tests/chat/chat-render"

conv_of() { # EXPECTED-BASENAME-WITHOUT-EXT: the conversation name it ends with
    for c in "$ct"/conversations/*.json; do
        c=$(basename "$c" .json)
        case $1 in *."$c") echo "$c"; return 0 ;; esac
    done
    return 1
}

n=0
for e in "$ct"/expected/*.txt "$ct"/expected/*.error; do
    [ -e "$e" ] || continue
    base=$(basename "$e"); base=${base%.*}
    conv=$(conv_of "$base") || { not_ok "$base: no conversation for it"; continue; }
    tmpl=${base%."$conv"}
    n=$((n + 1))
    "$render" "$ct/$tmpl.jinja" "$ct/conversations/$conv.json" >"$work/out" 2>"$work/err"
    rc=$?
    case $e in
    *.txt)
        if [ $rc -eq 0 ] && cmp -s "$work/out" "$e"; then
            ok "$base renders as transformers does"
        else
            not_ok "$base (exit $rc): $(head -c 300 "$work/err")"
            [ $rc -eq 0 ] && diff "$e" "$work/out" | head -10
        fi ;;
    *.error)
        # raise_exception's message is shown as is; Python's own errors keep their type
        want=$(tail -n 1 "$e" | sed 's/^jinja2\.exceptions\.TemplateError: //')
        if [ $rc -eq 1 ] && grep -qF -- "$want" "$work/err"; then
            ok "$base is refused: $want"
        else
            not_ok "$base: exit $rc, stderr [$(cat "$work/err")], want [$want]"
        fi ;;
    esac
done
[ $n -ge 51 ] && ok "$n expected renderings checked" || not_ok "only $n expected files found in $ct"

# The GGUF fixtures that carry a template render as render.py renders their template.
if ! python3 -c 'import jinja2' 2>"$work/py"; then
    not_ok "python3 cannot import jinja2 (install it with the README's first command): $(cat "$work/py")"
    finish
fi
found=0
for f in $(find "$fx" -name '*.gguf' | sort); do
    "$render" --model "$f" --print-template >"$work/t.jinja" 2>"$work/err"
    rc=$?
    [ $rc -eq 3 ] && continue   # no tokenizer.chat_template in this file
    name=${f#"$fx"/}
    if [ $rc -ne 0 ]; then
        not_ok "$name: cannot read its template: $(cat "$work/err")"
        continue
    fi
    found=$((found + 1))
    bos=$("$render" --model "$f" --print-bos) && eos=$("$render" --model "$f" --print-eos)
    for c in "$ct"/conversations/*.json; do
        cn=$(basename "$c" .json)
        python3 "$ct/render.py" "$work/t.jinja" "$c" --bos-token "$bos" --eos-token "$eos" \
            >"$work/want" 2>"$work/want.err"
        prc=$?
        "$render" --model "$f" "$c" >"$work/got" 2>"$work/err"
        rc=$?
        if [ $prc -eq 0 ] && [ $rc -eq 0 ] && cmp -s "$work/want" "$work/got"; then
            ok "$name with $cn renders as render.py does"
        elif [ $prc -ne 0 ] && [ $rc -eq 1 ]; then
            ok "$name with $cn is refused by both: $(cat "$work/err")"
        else
            not_ok "$name with $cn: render.py exit $prc, slmops exit $rc: $(cat "$work/err")"
            diff "$work/want" "$work/got" | head -10
        fi
    done
done
[ $found -ge 1 ] && ok "$found GGUF fixture(s) carry a template" ||
    not_ok "no GGUF fixture with a template found (the phi-3 vocabulary has one)"
finish
