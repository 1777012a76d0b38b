#!/bin/sh
# A lone .safetensors file slmops writes loads again (issue 7, item 9): the GGUF's
# hyper-parameters and tokenizer travel in __metadata__, so the file describes and
# generates as the GGUF does, and converts back to the same GGUF content.
set -u
. "$top_srcdir/tests/cli/lib.sh"
need gguf/stories260K.gguf
g=$fx/gguf/stories260K.gguf
one=$work/one.safetensors

# What slmops sees in a model, without the lines naming the file and its format.
describe() { "$slmops" info "$1" --tensors --checksums | grep -v -E '^(file|format):'; }
greedy() { "$slmops" generate -m "$1" --temp 0 -n 64 -p "Once upon a time" 2>/dev/null; }

"$slmops" convert "$g" "$one" 2>"$work/err" && ok "convert GGUF -> one .safetensors" ||
    not_ok "convert: $(cat "$work/err")"
describe "$g" > "$work/want"
if describe "$one" > "$work/got" 2>"$work/err"; then
    cmp -s "$work/want" "$work/got" && ok "the file describes as the GGUF (hyper-parameters, tokenizer, tensors)" ||
        { not_ok "info differs:"; diff "$work/want" "$work/got" | head -20 | sed 's/^/    /'; }
else
    not_ok "info refuses slmops' own file: $(cat "$work/err")"
fi
want=$(greedy "$g")
got=$(greedy "$one")
[ -n "$want" ] && [ "$got" = "$want" ] && ok "greedy generation from the file equals the GGUF's" ||
    not_ok "generation differs: '$got' vs '$want'"

"$slmops" convert "$one" "$work/back.gguf" 2>"$work/err" || not_ok "convert back: $(cat "$work/err")"
describe "$work/back.gguf" > "$work/back" 2>&1
cmp -s "$work/want" "$work/back" && ok "converted back to GGUF, it describes as the original" ||
    { not_ok "the GGUF made from the file differs:"; diff "$work/want" "$work/back" | head -20 | sed 's/^/    /'; }
finish
