#!/bin/sh
# Issue 7, item 21: the README's "First steps" block works as written: each command,
# with ../shared/fixtures read from the fixtures folder and /tmp/ from a scratch one,
# exits 0.
. "$(dirname "$0")/lib.sh"
need gguf/stories260K.gguf llama2c/stories260K.bin llama2c/tok512.bin text/tinystories_sample.txt \
    text/tinyshakespeare_input.txt
readme=$top_srcdir/README.md

awk '/^## First steps/ { on = 1 } on && /^```sh/ { code = 1; next } code && /^```/ { exit }
     code' "$readme" >"$work/steps"
[ "$(grep -c '^\./slmops' "$work/steps")" -ge 8 ] && ok "the block has its commands" ||
    { not_ok "no First steps block in README.md"; finish; }
cd "$top_builddir" || exit 99
while IFS= read -r line; do
    case $line in ''|'#'*) continue ;; esac
    cmd=$(printf '%s\n' "$line" | sed "s|\.\./shared/fixtures|$fx|g; s|/tmp/|$work/|g")
    if eval "$cmd" </dev/null >"$work/out" 2>"$work/err"; then
        ok "$line"
    else
        not_ok "$line"
        tail -n 5 "$work/err"
    fi
done <"$work/steps"
finish
