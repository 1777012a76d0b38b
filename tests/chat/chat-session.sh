#!/bin/sh
# `slmops chat` behaves like Ollama / llama-cli (issue 7, item 11): /commands and """
# blocks never reach the model, /clear keeps the system message, a full context drops
# the oldest turns, Ctrl-C stops a reply and (at an empty prompt) leaves, timings.
# What the model is given is read back through a template that refuses the message
# REPORT with the conversation it sees (raise_exception's message is shown as is).
. "$(dirname "$0")/../cli/lib.sh"
need gguf/stories260K.gguf
m=$fx/gguf/stories260K.gguf
export SLMOPS_PLUGIN_PATH
cat >"$work/report.jinja" <<'EOF'
{%- if messages[-1].content == 'REPORT' -%}
{{- raise_exception('SEEN ' ~ (messages | map(attribute='role') | join(',')) ~ ' ' ~ (messages | map(attribute='content') | map('tojson') | join('|'))) -}}
{%- endif -%}
{%- for m in messages %}<|im_start|>{{ m.role }}
{{ m.content }}<|im_end|>
{% endfor %}<|im_start|>assistant
EOF
chat() { "$slmops" chat -m "$m" --chat-template-file "$work/report.jinja" --seed 1 "$@"; }

# commands and """ blocks
printf '%s\n' first /help '/nope x' '"""' 'line one' '' 'line two' '"""' '"""single"""' REPORT \
    | chat --system SYS -n 5 >"$work/out" 2>"$work/err"
rc=$?
grep -q '^slmops chat: SEEN system,user,assistant,user,assistant,user,assistant,user "SYS"|"first"|.*|"line one\\n\\nline two"|.*|"single"|.*|"REPORT"$' "$work/err" &&
    [ $rc -eq 1 ] && ok "commands are not sent; a \"\"\" block is one message" ||
    { not_ok "commands and blocks (exit $rc)"; cat "$work/err"; }
grep -q "^  /clear " "$work/out" && ok "/help lists the commands" || not_ok "/help"
grep -q "unknown command '/nope x'" "$work/err" && ok "an unknown command is refused, not sent" ||
    not_ok "unknown command"

# /clear forgets all but the system message
printf '%s\n' first /clear second REPORT | chat --system SYS -n 5 >"$work/out" 2>"$work/err"
grep -q '^slmops chat: SEEN system,user,assistant,user "SYS"|"second"|.*|"REPORT"$' "$work/err" &&
    grep -q "the conversation is cleared (the system message stays)" "$work/err" &&
    ok "/clear keeps the system message only" || { not_ok "/clear"; cat "$work/err"; }

# a message too long for the whole context is refused, and the chat goes on
{ python3 -c 'print("word " * 300)'; printf '%s\n' second REPORT; } |
    chat --system SYS --ctx 128 -n 5 >"$work/out" 2>"$work/err"
grep -q "the message needs [0-9]* tokens but the context holds 128: it is not sent" "$work/err" &&
    grep -q '^slmops chat: SEEN system,user,assistant,user "SYS"|"second"|.*|"REPORT"$' "$work/err" &&
    ok "a message longer than the context is refused; the chat goes on without it" ||
    { not_ok "an over-long message"; cat "$work/err"; }

# /bye and /exit leave at once; nothing after them is read
for cmd in /bye /exit; do
    printf '%s\n' "$cmd" first | chat -n 5 >"$work/out" 2>"$work/err"
    rc=$?
    [ $rc -eq 0 ] && [ ! -s "$work/out" ] && ok "$cmd leaves" ||
        { not_ok "$cmd (exit $rc)"; cat "$work/out" "$work/err"; }
done

# a full context drops the oldest turns (after the system message) and goes on
printf 'Once upon a time\nThe dog ran\nA big tree\nThe sun\nTom said\nREPORT\n' |
    chat --system SYS --ctx 96 -n 24 --verbose >"$work/out" 2>"$work/err"
rc=$?
replies=$(grep -c '^slmops chat: reply:' "$work/err")
if [ $rc -eq 1 ] && [ "$replies" -eq 5 ] && grep -q "oldest turn(s) are dropped" "$work/err" &&
    grep -q '^slmops chat: SEEN system,user,.*"SYS"|' "$work/err" &&
    ! grep -q '^slmops chat: SEEN .*"Once upon a time"' "$work/err"; then
    ok "a full context drops the oldest turns and keeps the system message"
else
    not_ok "context shift (exit $rc, $replies replies)"
    cat "$work/err"
fi
grep -q '^slmops chat: total: prompt [0-9]* tokens in .* ms' "$work/err" && [ $replies -eq 5 ] &&
    ok "--verbose shows each reply's timings, and a total ends the chat" || not_ok "timings"

# Ctrl-C: a model that talks for seconds (random weights never say EOS)
"$slmops" init --arch llama --preset stories15m --random "$work/s15.gguf" >/dev/null 2>&1 ||
    { not_ok "slmops init"; finish; }
mkfifo "$work/in"
rm -f "$work/out" "$work/err"   # "a reply started" is out growing: no earlier one may count
"$slmops" chat -m "$work/s15.gguf" --chat-template chatml --ctx 4096 -n 4000 --seed 1 --verbose \
    <"$work/in" >"$work/out" 2>"$work/err" &
pid=$!
( sleep 60; kill -KILL $pid 2>/dev/null ) &   # a watchdog: never hang the suite
dog=$!
trap 'kill $pid $dog 2>/dev/null; rm -rf "$work"' EXIT
exec 3>"$work/in"
echo "Tell me a story" >&3
wait_for() { # TEST...: poll up to 20 s
    i=0
    while ! "$@"; do
        i=$((i + 1))
        [ $i -gt 200 ] && return 1
        sleep 0.1
    done
}
wait_for test -s "$work/out" || not_ok "no reply started"
kill -INT $pid
if wait_for grep -q '^slmops chat: reply:' "$work/err" && kill -0 $pid 2>/dev/null; then
    tokens=$(sed -n 's/^slmops chat: reply: .* reply \([0-9]*\) tokens.*/\1/p' "$work/err")
    [ "$tokens" -lt 4000 ] && ok "Ctrl-C stops the reply ($tokens tokens) and chat goes on" ||
        not_ok "the reply ran to its end ($tokens tokens)"
else
    not_ok "after Ctrl-C chat is gone or the reply does not end"
    cat "$work/err"
fi
kill -INT $pid   # at the empty prompt: leave
wait $pid
rc=$?
kill $dog 2>/dev/null
exec 3>&-
[ $rc -eq 0 ] && grep -q '^slmops chat: total:' "$work/err" &&
    ok "a second Ctrl-C at the empty prompt leaves (exit 0, timings)" ||
    { not_ok "second Ctrl-C: exit $rc"; cat "$work/err"; }
finish
