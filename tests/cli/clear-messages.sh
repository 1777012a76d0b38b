#!/bin/sh
# Issue 7, defects 14 and 15: messages say what is actually wrong: a folder given as
# a text file "is a directory", an embedding length that disagrees with the tensors is
# named as such (not as a missing key_length), types are named, not numbered.
. "$(dirname "$0")/lib.sh"
need gguf/stories260K.gguf text/tinystories_sample.txt
m=$fx/gguf/stories260K.gguf
mkdir "$work/folder"
expect_fail "eval: a folder as the text" 1 "folder: is a directory" \
    "$slmops" eval -m "$m" --perplexity "$work/folder"
expect_fail "tokenize -f a folder" 1 "folder: is a directory" "$slmops" tokenize -m "$m" -f "$work/folder"
expect_fail "generate -f a folder" 1 "folder: is a directory" "$slmops" generate -m "$m" -f "$work/folder"
! grep -q "read error" "$work/err" && ok "no bare 'read error'" || not_ok "read error"

python3 "$(dirname "$0")/bad-input/gguf-patch.py" "$m" "$work/e65.gguf" llama.embedding_length 65
expect_fail "embedding length 65" 1 \
    "llama.embedding_length is 65 but token_embd.weight has rows of 64" \
    "$slmops" generate -m "$work/e65.gguf" -n 1
! grep -q key_length "$work/err" && ok "key_length is not blamed" || not_ok "key_length blamed"
python3 "$(dirname "$0")/bad-input/gguf-patch.py" "$m" "$work/h9.gguf" llama.attention.head_count 9
python3 "$(dirname "$0")/bad-input/gguf-patch.py" "$work/h9.gguf" "$work/h9.gguf" \
    llama.attention.head_count_kv 9
expect_fail "64 not divisible by 9 heads, no key_length" 1 \
    "llama.embedding_length 64 is not a multiple of llama.attention.head_count 9, and no llama.attention.key_length" \
    "$slmops" generate -m "$work/h9.gguf" -n 1
finish
