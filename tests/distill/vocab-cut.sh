#!/bin/sh
# Issue 9: a student's own vocabulary, cut from its teacher's to the tokens its data set
# uses (`slmops init --vocab-data`, `distill --student-vocab data`; the demo's student).
# For byte-level BPE vocabularies of llama.cpp's test set: the cut vocabulary is far
# smaller, gives the data's text the very same tokens as the whole one (renumbered),
# still tokenizes text the data never showed (into the same bytes), and llama.cpp's
# tokenizer reads the cut model as slmops does. A SentencePiece vocabulary and bad
# option combinations are refused by name.
. "${top_srcdir:?run through make check}/tests/cli/lib.sh"
need llama.cpp-vocab/ggml-vocab-gpt-2.gguf llama.cpp-vocab/ggml-vocab-falcon.gguf \
    llama.cpp-vocab/ggml-vocab-deepseek-llm.gguf llama.cpp-vocab/ggml-vocab-starcoder.gguf \
    llama.cpp-vocab/ggml-vocab-llama-spm.gguf text/tinystories_sample.txt text/botchan.txt
py=${PYTHON3:-python3}
V=$fx/llama.cpp-vocab

# The data set: one example, 200 lines of TinyStories. Unseen: 60 ASCII lines of Botchan
# (another book, other words), which the cut vocabulary must still spell.
head -n 200 "$fx/text/tinystories_sample.txt" >"$work/seen.txt"
$py - "$work/seen.txt" "$work/data.jsonl" <<'PY'
import json, sys
text = open(sys.argv[1], encoding="utf-8").read()
open(sys.argv[2], "w", encoding="utf-8").write(json.dumps({"text": text}) + "\n")
PY
$py - "$fx/text/botchan.txt" "$work/unseen.txt" <<'PY'
import sys
lines = [l for l in open(sys.argv[1], encoding="utf-8", errors="replace")
         if l.strip() and l.isascii()][200:260]
open(sys.argv[2], "w").write("".join(lines))
PY

pieces() { # MODEL FILE: the text of each token, one a line
    "$slmops" tokenize -m "$1" -f "$2" 2>"$work/err" | cut -f2-
}
n_vocab() {
    "$slmops" info --json "$1" | $py -c 'import json,sys; print(json.load(sys.stdin)["tokenizer"]["n_vocab"])'
}

for name in gpt-2 falcon deepseek-llm starcoder; do
    full=$V/ggml-vocab-$name.gguf cut=$work/$name.gguf
    if ! "$slmops" init --arch llama --preset student-micro --random --type f32 \
            --vocab-from "$full" --vocab-data "$work/data.jsonl" "$cut" >/dev/null 2>"$work/err"; then
        not_ok "$name: init --vocab-data failed"; cat "$work/err"; continue
    fi
    nf=$(n_vocab "$full") nc=$(n_vocab "$cut")
    [ "$nc" -gt 256 ] && [ $((nc * 8)) -lt "$nf" ] &&
        ok "$name: the cut vocabulary keeps $nc of $nf tokens" ||
        not_ok "$name: the cut vocabulary keeps $nc of $nf tokens (want 256 < n < 1/8)"
    pieces "$full" "$work/seen.txt" >"$work/want"
    pieces "$cut" "$work/seen.txt" >"$work/got"
    if [ -s "$work/want" ] && cmp -s "$work/want" "$work/got"; then
        ok "$name: the data's text gives the same $(wc -l <"$work/got") tokens"
    else
        not_ok "$name: the data's text tokenizes differently"
        diff "$work/want" "$work/got" | head -n 6
    fi
    # Unseen text: more tokens, the same bytes.
    pieces "$full" "$work/unseen.txt" | tr -d '\n' >"$work/want"
    pieces "$cut" "$work/unseen.txt" >"$work/got.lines"
    tr -d '\n' <"$work/got.lines" >"$work/got"
    nu=$(wc -l <"$work/got.lines")
    if [ -s "$work/want" ] && cmp -s "$work/want" "$work/got"; then
        ok "$name: unseen text still spells out ($nu tokens)"
    else
        not_ok "$name: unseen text does not spell out the same"; head -c 300 "$work/got"; echo
    fi
done

# llama.cpp reads the cut model's vocabulary as slmops does.
peer=$(llama_cpp_bin) || exit $?
text="Once upon a time, a little dog named Spot found a shiny red ball in the park."
want=$("$peer/llama-tokenize" -m "$work/gpt-2.gguf" -p "$text" --ids --log-disable \
    2>"$work/peer.err" | tr -d '[] ')
ids=$("$slmops" tokenize -m "$work/gpt-2.gguf" --ids "$text" 2>&1 | tr ' ' ',')
[ -n "$want" ] && [ "$ids" = "$want" ] && ok "llama.cpp tokenizes with the cut vocabulary as slmops does" ||
    { not_ok "cut vocabulary: slmops '$ids', llama.cpp '$want'"; cat "$work/peer.err"; }

expect_fail "a SentencePiece vocabulary is refused" 1 "byte-level BPE.*'llama'" \
    "$slmops" init --arch llama --preset student-micro --random --type f32 \
    --vocab-from "$V/ggml-vocab-llama-spm.gguf" --vocab-data "$work/data.jsonl" "$work/spm.gguf"
[ ! -e "$work/spm.gguf" ] && ok "nothing written for a refused vocabulary" ||
    not_ok "a refused init wrote $work/spm.gguf"
expect_fail "--vocab-data needs --vocab-from" 1 "vocab_from" \
    "$slmops" init --arch llama --preset student-micro --random --vocab-data "$work/data.jsonl" \
    "$work/x.gguf"
expect_fail "a missing data set is named" 1 "no-such.jsonl" \
    "$slmops" init --arch llama --preset student-micro --random --vocab-from "$V/ggml-vocab-gpt-2.gguf" \
    --vocab-data "$work/no-such.jsonl" "$work/x.gguf"
expect_fail "distill --student-vocab data needs --kd-loss none" 2 "kd-loss none" \
    "$slmops" distill -m "$V/ggml-vocab-gpt-2.gguf" --prompts "$work/seen.txt" \
    --student-preset student-micro --student-vocab data -o "$work/s.gguf"
expect_fail "distill --student-vocab takes teacher or data" 2 "student-vocab 'all'" \
    "$slmops" distill -m "$V/ggml-vocab-gpt-2.gguf" --prompts "$work/seen.txt" \
    --student-preset student-micro --student-vocab all --kd-loss none -o "$work/s.gguf"
cat >"$work/recipe.json" <<'EOF'
{"recipe": 1, "name": "cut", "inputs": {"t": "t.gguf", "p": "p.txt"},
 "stages": [{"name": "d", "type": "distill", "teacher": "@inputs.t", "prompts": "@inputs.p",
             "student_preset": "student-micro", "student_vocab": "data"}]}
EOF
expect_fail "a recipe cutting the vocabulary under logit KD is refused" 2 "student_vocab.*kd_loss" \
    "$slmops" pipeline --check "$work/recipe.json"
finish
