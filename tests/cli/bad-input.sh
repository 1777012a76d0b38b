#!/bin/sh
# Issue 7, acceptance 1: each case of tests/cli/bad-input/cases.txt exits with its
# status (1 or 2, never 0 and never a signal), prints one line on stderr naming the
# file or flag and the reason, changes and leaves nothing in the scratch folder, and
# ends within the time limit. SLMOPS_UNDER_TEST and SLMOPS_UNDER_TEST_PLUGINS name
# another build of slmops and its manifests to run the table against (the ASan+UBSan
# one: tests/cli/bad-input-asan.sh); the scratch folder is made with this build's.
. "$(dirname "$0")/lib.sh"
need gguf/stories260K.gguf llama2c/stories260K.bin llama2c/llama2_tokenizer.bin \
    text/tinystories_sample.txt
bin=${SLMOPS_UNDER_TEST:-$slmops}
plugins=${SLMOPS_UNDER_TEST_PLUGINS:-$SLMOPS_PLUGIN_PATH}
limit=${BAD_INPUT_TIMEOUT:-30}
cases=$(dirname "$0")/bad-input/cases.txt
M=$fx/gguf/stories260K.gguf F=$fx W=$work/w

# The scratch folder: inputs to refuse and outputs that must survive untouched.
mkdir -p "$W/dir" || exit 99
cp "$M" "$W/in.gguf" && ln -s in.gguf "$W/link.gguf" && ln "$W/in.gguf" "$W/hard.gguf" &&
    mkfifo "$W/fifo" && mknod "$W/null" c 1 3 &&
    python3 -c 'import socket, sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])' "$W/sock" &&
    printf 'not a model at all, not even close to one...............................\n' \
        >"$W/junk.gguf" && : >"$W/empty.gguf" && head -c 4096 "$M" >"$W/trunc.gguf" &&
    printf 'Once upon a time there was a cat.\n' >"$W/short.txt" &&
    printf 'Once upon a time' >"$W/prompt.txt" &&
    printf '{"text": "Once upon a time"}\nnot json\n' >"$W/bad.jsonl" &&
    printf '{"text": 5}\n' >"$W/types.jsonl" && printf 'caf\351\n' >"$W/latin1.txt" &&
    : >"$W/empty.txt" &&
    printf '{"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}]}\n' >"$W/msg.jsonl" && printf '{"prompt": "%s", "completion": "x"}\n' \
        "Once upon a time there was a little girl named Lily who loved to play" >"$W/long.jsonl" &&
    python3 "$(dirname "$0")/bad-input/gguf-patch.py" "$M" "$W/e65.gguf" llama.embedding_length 65 &&
    python3 "$(dirname "$0")/bad-input/gguf-patch.py" "$M" "$W/h7.gguf" llama.attention.head_count 7 &&
    "$slmops" init --arch llama --preset stories15m --random --type q4_0 "$W/s15.gguf" 2>/dev/null &&
    "$slmops" convert "$M" "$W/hf" --to safetensors 2>/dev/null &&
    cp "$F/llama2c/tok512.bin" "$W/tok.bin" &&
    "$top_builddir/tests/adapter/adapter-tool" new "$M" "$W/lora.gguf" rank=4 targets=q,v b_seed=2 \
        2>/dev/null &&
    python3 "$(dirname "$0")/bad-input/gguf-patch.py" "$W/lora.gguf" "$W/lora-qwen2.gguf" general.architecture qwen2 ||
    { echo "FAIL: cannot set up the scratch folder"; exit 99; }

# Every entry's name, kind, size, inode, mtime and device numbers, and every file's hash.
snapshot() {
    find "$W" -mindepth 1 -exec stat -c '%n %F %s %i %Y %t:%T' {} + | sort
    find "$W" -type f -exec sha256sum {} + | sort
}

trim() { printf '%s' "$1" | sed 's/^[[:space:]]*//; s/[[:space:]]*$//'; }

n=0
# Fields are separated by " | " (a pattern may hold "|" without spaces around it).
field() { printf '%s\n' "$1" | awk -v i="$2" -F ' [|] ' '{ print $i }'; }
while IFS= read -r line; do
    case $line in ''|'#'*) continue ;; esac
    n=$((n + 1))
    name=$(trim "$(field "$line" 1)") want=$(trim "$(field "$line" 2)")
    pattern=$(trim "$(field "$line" 3)")
    cmd=$(trim "$(field "$line" 4)" | sed 's/^slmops/"$bin"/')
    snapshot >"$work/before"
    eval "SLMOPS_PLUGIN_PATH=\$plugins timeout -k 5 $limit $cmd" </dev/null >"$work/out" 2>"$work/err"
    rc=$?
    snapshot >"$work/after"
    why=
    if [ $rc -eq 124 ] || [ $rc -eq 137 ]; then
        why="did not end within $limit s"
    elif [ $rc -ne "$want" ]; then
        why="exit $rc, want $want"
    elif [ "$(wc -l <"$work/err")" -ne 1 ]; then
        why="$(wc -l <"$work/err") lines on stderr, want one"
    elif ! grep -Eq -- "$pattern" "$work/err"; then
        why="stderr does not match /$pattern/"
    elif ! cmp -s "$work/before" "$work/after"; then
        why="the scratch folder changed: $(diff "$work/before" "$work/after" | grep '^[<>]' | head -n 3 | tr '\n' ' ')"
    fi
    if [ -z "$why" ]; then
        ok "$name: $(cat "$work/err")"
    else
        not_ok "$name: $why"
        sed 's/^/    | /' "$work/err" | head -n 20
    fi
done <"$cases"
[ $n -ge 60 ] && ok "$n cases" || not_ok "only $n cases (want at least 60)"
finish
