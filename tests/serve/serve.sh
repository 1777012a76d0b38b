#!/bin/sh
# `slmops serve` on a free loopback port with stories260K: greedy answers (plain and
# streamed, alone and concurrent) against `slmops generate` and `slmops chat`, a
# client leaving mid-stream, malformed requests with their statuses, SIGTERM.
. "$(dirname "$0")/../cli/lib.sh"
need gguf/stories260K.gguf
m=$fx/gguf/stories260K.gguf
py=${PYTHON3:-python3}
export SLMOPS_PLUGIN_PATH
n=24
tmpl=chatml

# The CLI's greedy texts: what the server must answer.
gen() { "$slmops" generate -m "$m" --temp 0 -n $n --json -p "$1" >"$work/gen-$2.json" ||
            { echo "FAIL: slmops generate failed"; exit 1; }; }
gen "Once upon a time" 0
gen "The cat sat on the mat and" 1
gen "Lily and Tom went to the park. They" 2
gen "One day, a little bird" 3
"$slmops" chat -m "$m" --chat-template $tmpl --temp 0 -n $n -p "Hello there" \
    </dev/null >"$work/chat.txt" 2>"$work/chat.err" ||
    { echo "FAIL: slmops chat failed:"; cat "$work/chat.err"; exit 1; }
"$py" - "$work" $n >"$work/expect.json" <<'PY' || exit 1
import json, sys
work, n = sys.argv[1], int(sys.argv[2])
g = [json.load(open(f"{work}/gen-{i}.json")) for i in range(4)]
chat = open(f"{work}/chat.txt", encoding="utf-8").read()
assert chat.endswith("\n")
json.dump({"model": "stories260K", "n": n, "parallel": 4, "prompt": g[0]["prompt"],
           "generate": g[0]["text"], "prompt_tokens": len(g[0]["prompt_tokens"]),
           "message": "Hello there", "chat": chat[:-1],
           "prompts": [{"prompt": x["prompt"], "generate": x["text"]} for x in g]},
          sys.stdout)
PY

"$slmops" serve -m "$m" --port 0 --parallel 4 --ctx 16384 --chat-template $tmpl \
    2>"$work/serve.err" &
pid=$!
port=
for _ in $(seq 100); do
    port=$(sed -n 's|^slmops serve: listening on http://127.0.0.1:\([0-9]*\) .*|\1|p' "$work/serve.err")
    [ -n "$port" ] && break
    kill -0 $pid 2>/dev/null || break
    sleep 0.1
done
if [ -z "$port" ]; then
    echo "FAIL: slmops serve did not start:"
    cat "$work/serve.err"
    kill $pid 2>/dev/null
    exit 1
fi
ok "serve listens on 127.0.0.1:$port"

"$py" "$(dirname "$0")/serve_check.py" "$port" "$work/expect.json" || failures=$((failures + 1))

left=$(sed -n 's/^slmops serve: .*: the client left after \([0-9]*\) tokens; its slot is free$/\1/p' "$work/serve.err")
if [ -n "$left" ] && [ "$left" -lt 4000 ]; then
    ok "the stream of the client that left stopped after $left tokens"
else
    not_ok "no early stop logged for the client that left:"
    sed 's/^/    /' "$work/serve.err"
fi

kill -TERM $pid
wait $pid
rc=$?
if [ $rc -eq 0 ] && grep -q '^slmops serve: Terminated: stopping$' "$work/serve.err"; then
    ok "SIGTERM stops the server, exit 0"
else
    not_ok "SIGTERM: exit $rc"
    sed 's/^/    /' "$work/serve.err"
fi
finish
