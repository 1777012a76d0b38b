#!/bin/sh
# Issue 7, item 17: llama.cpp's and Ollama's habits work: -t on every verb, --opt=value,
# -n -1, `slmops help [VERB]`, and the prompt from -f FILE or from stdin with -p -.
. "$(dirname "$0")/lib.sh"
need gguf/stories260K.gguf llama2c/tok512.bin text/tinystories_sample.txt
m=$fx/gguf/stories260K.gguf
text=$fx/text/tinystories_sample.txt

# -t N is taken by every verb (the verbs with nothing to parallelise accept it too).
for cmd in "plugins" "devices" "selftest --device cpu-x86-64" "info $m" \
        "tokenize -m $m hello" "generate -m $m -n 2" "eval -m $m --perplexity $text --ctx 256" \
        "convert $m $work/c.gguf" "quantize $m $work/q.gguf --type q8_0" \
        "init --arch llama --preset stories15m --random --type q8_0 $work/i.gguf" \
        "bench -m $m -p 8 -n 4 -r 1"; do
    # shellcheck disable=SC2086 # the words of cmd are the arguments
    "$slmops" $cmd -t 2 >"$work/out" 2>"$work/err" && ok "${cmd%% *} -t 2" ||
        { not_ok "${cmd%% *} -t 2"; cat "$work/err"; }
done
# Echo a chat turn on stdin too, with a model that has no template of its own.
printf 'hello\n' | "$slmops" chat -m "$m" -t 2 --chat-template chatml -n 4 >"$work/out" 2>"$work/err" &&
    ok "chat -t 2" || { not_ok "chat -t 2"; cat "$work/err"; }

# --opt=value for every kind of option; the same run spelled both ways gives the same text.
"$slmops" generate -m "$m" -p "Once upon" -n 24 --temp 0.7 --seed 5 --top-k 20 >"$work/a" 2>/dev/null
"$slmops" generate --model="$m" --prompt="Once upon" --n-predict=24 --temp=0.7 --seed=5 \
    --top-k=20 >"$work/b" 2>/dev/null
[ -s "$work/a" ] && cmp -s "$work/a" "$work/b" && ok "--opt=value equals --opt value" ||
    not_ok "--opt=value"
expect_fail "a flag given a value is refused" 2 "--json takes no value" \
    "$slmops" generate -m "$m" --json=yes
expect_fail "--opt= with an empty number is refused" 2 "--n-predict needs a whole number" \
    "$slmops" generate -m "$m" --n-predict=

# -n -1: until an end-of-generation token or a full context.
"$slmops" generate -m "$m" -n -1 --ctx 64 --temp 0 --json >"$work/j" 2>"$work/err"
python3 - "$work/j" <<'PY' && ok "-n -1 runs until the context is full" || not_ok "-n -1: $(cat "$work/err")"
import json, sys
d = json.load(open(sys.argv[1]))
assert d["stop_reason"] in ("context", "eos"), d["stop_reason"]
# Every cell holds a token; the last token sampled needs no cell of its own.
assert d["stop_reason"] == "eos" or len(d["prompt_tokens"]) + len(d["tokens"]) == 64 + 1, len(d["tokens"])
PY

# slmops help, slmops help VERB.
"$slmops" help >"$work/h" && grep -q '^  generate ' "$work/h" && ok "slmops help" || not_ok "slmops help"
"$slmops" help generate >"$work/h1" && "$slmops" generate --help >"$work/h2" &&
    cmp -s "$work/h1" "$work/h2" && ok "slmops help generate = generate --help" ||
    not_ok "slmops help generate"
expect_fail "help of an unknown verb" 2 "unknown verb 'frobnicate'" "$slmops" help frobnicate

# The prompt from a file and from standard input.
printf 'Once upon a time' >"$work/prompt.txt"
"$slmops" generate -m "$m" -p "Once upon a time" -n 16 --temp 0 >"$work/p1" 2>/dev/null
"$slmops" generate -m "$m" -f "$work/prompt.txt" -n 16 --temp 0 >"$work/p2" 2>/dev/null
"$slmops" generate -m "$m" --file="$work/prompt.txt" -n 16 --temp 0 >"$work/p3" 2>/dev/null
printf 'Once upon a time' | "$slmops" generate -m "$m" -p - -n 16 --temp 0 >"$work/p4" 2>/dev/null
[ -s "$work/p1" ] && cmp -s "$work/p1" "$work/p2" && cmp -s "$work/p1" "$work/p3" &&
    cmp -s "$work/p1" "$work/p4" && ok "generate: -p TEXT, -f FILE, --file=FILE and -p - agree" ||
    not_ok "generate prompt sources"
i1=$("$slmops" tokenize -m "$m" --ids "Once upon a time")
i2=$("$slmops" tokenize -m "$m" --ids -f "$work/prompt.txt")
i3=$(printf 'Once upon a time' | "$slmops" tokenize -m "$m" --ids -p -)
i4=$(printf 'Once upon a time' | "$slmops" tokenize -m "$m" --ids -)
[ -n "$i1" ] && [ "$i1" = "$i2" ] && [ "$i1" = "$i3" ] && [ "$i1" = "$i4" ] &&
    ok "tokenize: TEXT, -f FILE, -p - and - agree ($i1)" || not_ok "tokenize: '$i1' '$i2' '$i3' '$i4'"
# A large prompt, bigger than any command line.
python3 -c 'print("Once upon a time " * 40000, end="")' >"$work/big.txt"
n=$("$slmops" tokenize -m "$m" --ids -f "$work/big.txt" | wc -w)
[ "$n" -gt 100000 ] && ok "a 680 kB prompt from a file ($n tokens)" || not_ok "big prompt: $n tokens"
expect_fail "-p and -f together are refused" 2 "not both" \
    "$slmops" generate -m "$m" -p x -f "$work/prompt.txt"
finish
