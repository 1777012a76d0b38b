#!/bin/sh
# Issue 7, defect 3: a write error on standard output (a full disk, /dev/full) fails
# the verb with coreutils' message, for plain, streamed and JSON output alike.
. "$(dirname "$0")/lib.sh"
need gguf/stories260K.gguf llama2c/tok512.bin text/tinystories_sample.txt
[ -w /dev/full ] || { echo "SKIP: /dev/full is not writable here"; exit 77; }
m=$fx/gguf/stories260K.gguf

full() { # NAME CMD...: CMD with stdout on /dev/full exits 1 with the ENOSPC message
    name=$1
    shift
    "$@" >/dev/full 2>"$work/err"
    rc=$?
    if [ $rc -eq 1 ] && grep -q '^slmops: write error: No space left on device$' "$work/err"; then
        ok "$name"
    else
        not_ok "$name: exit $rc"
        sed 's/^/    /' "$work/err"
    fi
}

full "tokenize --ids" "$slmops" tokenize --tokenizer "$fx/llama2c/tok512.bin" --ids "Once upon a time"
full "tokenize (one token a line)" "$slmops" tokenize -m "$m" "Once upon a time"
full "generate (streamed, flushed per token)" "$slmops" generate -m "$m" -n 16 --temp 0
full "generate --json" "$slmops" generate -m "$m" -n 4 --temp 0 --json
full "info" "$slmops" info "$m"
full "info --json" "$slmops" info --json "$m"
full "plugins" "$slmops" plugins
full "plugins --json" "$slmops" plugins --json
full "devices --json" "$slmops" devices --json
full "eval" "$slmops" eval -m "$m" --perplexity "$fx/text/tinystories_sample.txt" --ctx 128
full "quantize --json" "$slmops" quantize "$m" "$work/q.gguf" --type q8_0 --json
full "--help" "$slmops" generate --help
full "help VERB" "$slmops" help info
full "--version" "$slmops" --version
# A verb that had failed already keeps its own status and message.
"$slmops" info "$work/missing.gguf" >/dev/full 2>"$work/err"
[ $? -eq 1 ] && grep -q 'missing.gguf' "$work/err" && ok "an earlier failure keeps its message" ||
    not_ok "an earlier failure"
finish
