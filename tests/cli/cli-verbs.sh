#!/bin/sh
# The model verbs on bad input: usage errors exit 2 with a hint, runtime errors
# exit 1 with "slmops VERB: what, where, why"; plus info, tokenize and chat on
# real files.
. "$(dirname "$0")/lib.sh"
need gguf/stories260K.gguf llama2c/tok512.bin
m=$fx/gguf/stories260K.gguf

for verb in info tokenize generate chat eval convert; do
    expect_fail "$verb without arguments is a usage error" 2 "slmops $verb: .*" "$slmops" $verb
    "$slmops" $verb --help >"$work/h" 2>&1 && grep -q "^Usage: slmops $verb" "$work/h" &&
        ok "$verb --help" || not_ok "$verb --help"
done
expect_fail "generate: unknown flag" 2 "unknown option '--bogus'" "$slmops" generate -m "$m" --bogus
expect_fail "generate: bad number" 2 "--temp needs a number" "$slmops" generate -m "$m" --temp abc
expect_fail "generate: -n needs a value" 2 "-n needs a value" "$slmops" generate -m "$m" -n
expect_fail "generate: missing model file" 1 "slmops generate: .*nonexistent.gguf" \
    "$slmops" generate -m "$work/nonexistent.gguf"
expect_fail "generate: nonexistent device" 1 "slmops generate: .*nosuchdevice" \
    "$slmops" generate -m "$m" --device nosuchdevice:3 -n 1
printf 'not a model at all, not even close to one.............................\n' >"$work/junk.gguf"
expect_fail "info: a file no plugin reads" 1 "slmops info: .*junk.gguf" "$slmops" info "$work/junk.gguf"
expect_fail "eval: missing text file" 1 "slmops eval: .*missing.txt" \
    "$slmops" eval -m "$m" --perplexity "$work/missing.txt"
expect_fail "serve: --repack and --no-repack contradict" 2 "give --repack or --no-repack, not both" \
    "$slmops" serve -m "$m" --repack --no-repack
expect_fail "chat: unknown template name" 2 "unknown chat template 'nope'" \
    "$slmops" chat -m "$m" --chat-template nope
expect_fail "chat: a model without a template asks for one" 1 \
    "has no chat template; choose one with --chat-template NAME \(chatml, .*\) or --chat-template-file FILE" \
    "$slmops" chat -m "$m" </dev/null
expect_fail "chat: a template that does not parse says where" 1 \
    "--chat-template: chat template line 1, col 8: expected an expression" "$slmops" chat -m "$m" --chat-template '{% for %}'
expect_fail "chat: a directory as template file" 1 "is a directory" \
    "$slmops" chat -m "$m" --chat-template-file "$work"

"$slmops" info "$m" >"$work/info" 2>&1
grep -q "^architecture: *llama" "$work/info" && grep -q "^parameters: *292800" "$work/info" &&
    grep -Eq "^  f32 +48 " "$work/info" && grep -q "512 tokens" "$work/info" &&
    ok "info: architecture, parameters, tensor types, vocabulary" || { not_ok "info"; cat "$work/info"; }
"$slmops" info --json "$m" >"$work/info.json" 2>&1
grep -q '"embedding_length": 64' "$work/info.json" && ok "info --json: hyper-parameters" ||
    not_ok "info --json"

ids=$("$slmops" tokenize --tokenizer "$fx/llama2c/tok512.bin" --ids --bos "Once upon a time" 2>&1)
[ "$ids" = "1 403 407 261 378" ] && ok "tokenize --ids --bos" || not_ok "tokenize gave '$ids'"
ids2=$("$slmops" tokenize -m "$m" --ids --bos "Once upon a time" 2>&1)
[ "$ids2" = "$ids" ] && ok "tokenize: the GGUF's vocabulary agrees with tok512.bin" ||
    not_ok "tokenize -m gave '$ids2'"

# A Hugging Face folder and llama.cpp's GGUF of the same GPT-2 vocabulary agree.
if [ -d "$fx/hf/gpt2-tokenizer" ] && [ -f "$fx/llama.cpp-vocab/ggml-vocab-gpt-2.gguf" ]; then
    a=$("$slmops" tokenize --tokenizer "$fx/hf/gpt2-tokenizer" --ids "Hello world, it's 2024!" 2>&1)
    b=$("$slmops" tokenize --tokenizer "$fx/llama.cpp-vocab/ggml-vocab-gpt-2.gguf" --ids \
        "Hello world, it's 2024!" 2>&1)
    [ -n "$a" ] && [ "$a" = "$b" ] && ok "tokenize: HF folder and GGUF give the same ids ($a)" ||
        not_ok "tokenize: HF folder gave '$a', GGUF '$b'"
else
    echo "skip - no $fx/hf/gpt2-tokenizer or llama.cpp-vocab/ggml-vocab-gpt-2.gguf"
fi

printf 'Hello\nAnd then?\n' | "$slmops" chat -m "$m" --chat-template chatml -n 8 --seed 1 \
    >"$work/chat" 2>"$work/chat.err"
rc=$?
[ "$rc" -eq 0 ] && [ "$(wc -l <"$work/chat")" -ge 2 ] && ok "chat: two turns on piped stdin" ||
    { not_ok "chat exit $rc"; cat "$work/chat.err"; }
finish
