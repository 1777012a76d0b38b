#!/bin/sh
# `slmops serve` on a free loopback port with stories260K: greedy answers (plain and
# streamed, alone and concurrent) against `slmops generate` and `slmops chat`, a
# client leaving mid-stream, hostile requests with their statuses, the API key, the
# access log; a second server for the queue limit (429) and draining on SIGTERM.
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
key=k3y-$$-serve-test
printf '%s\n' "$key" >"$work/key"
"$py" - "$work" $n "$key" >"$work/expect.json" <<'PY' || exit 1
import json, sys
work, n, key = sys.argv[1], int(sys.argv[2]), sys.argv[3]
g = [json.load(open(f"{work}/gen-{i}.json")) for i in range(4)]
chat = open(f"{work}/chat.txt", encoding="utf-8").read()
assert chat.endswith("\n")
json.dump({"model": "stories260K", "n": n, "parallel": 4, "prompt": g[0]["prompt"],
           "generate": g[0]["text"], "prompt_tokens": len(g[0]["prompt_tokens"]),
           "message": "Hello there", "chat": chat[:-1],
           "prompts": [{"prompt": x["prompt"], "generate": x["text"]} for x in g],
           "key": key, "allowed_host": "slm.example", "request_timeout": 2},
          sys.stdout)
PY

expect_fail "a non-loopback --host without an API key is refused" 2 "not a loopback address" \
    env -u SLMOPS_API_KEY "$slmops" serve -m "$m" --host 0.0.0.0 --port 0
expect_fail "--host must be numeric" 2 "not a numeric IPv4 or IPv6 address" \
    "$slmops" serve -m "$m" --host example.com --port 0
expect_fail "an unreadable --api-key-file" 1 "api-key-file" \
    "$slmops" serve -m "$m" --api-key-file "$work/no-such-key" --port 0
: >"$work/empty-key"
expect_fail "an empty API key" 1 "the API key is empty" \
    "$slmops" serve -m "$m" --api-key-file "$work/empty-key" --port 0

# start_server LOG ARGS...: slmops serve on a free port; sets pid and port.
start_server() {
    log=$1
    shift
    serve_start "$log" -m "$m" -t 1 --chat-template $tmpl "$@"
}

start_server "$work/serve.err" --parallel 4 --ctx 16384 --api-key-file "$work/key" \
    --allowed-host slm.example --request-timeout 2 --access-log "$work/access.log" \
    --cors-origin http://app.example
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
"$py" - "$work/access.log" "$key" <<'PY' && ok "the access log: a JSON line per request, no prompts, no key" || not_ok "the access log"
import json, sys
text = open(sys.argv[1], encoding="utf-8").read()
lines = [json.loads(l) for l in text.splitlines()]
assert len(lines) >= 60, len(lines)
for l in lines:
    assert {"time", "id", "remote", "method", "path", "status", "total_ms"} <= l.keys(), l
gen = [l for l in lines if l["path"] == "/v1/completions" and l["status"] == 200]
assert gen and all(l["completion_tokens"] > 0 and l["ttft_ms"] is not None for l in gen), gen
assert {401, 403, 413, 404, 405} <= {l["status"] for l in lines}
assert "Once upon a time" not in text and "prompt" not in {k for l in lines for k in l}
assert sys.argv[2] not in text
PY

# A second server: one slot, a queue of one (429 beyond), 8 connections, prompts logged, and
# SIGTERM while requests run (they finish, a new one gets 503, exit 0).
start_server "$work/serve2.err" --parallel 1 --queue 1 --ctx 4096 --log-prompts \
    --shutdown-timeout 60 --max-connections 8
"$py" "$(dirname "$0")/serve_limits.py" "$port" "$pid" || failures=$((failures + 1))
wait $pid
rc=$?
if [ $rc -eq 0 ] && grep -q 'requests in flight may finish' "$work/serve2.err"; then
    ok "SIGTERM under load drains and exits 0"
else
    not_ok "SIGTERM under load: exit $rc"
    sed 's/^/    /' "$work/serve2.err"
fi
if grep -q '"prompt":"Once upon a time' "$work/serve2.err"; then
    ok "--log-prompts puts the prompt in the access log"
else
    not_ok "--log-prompts: no prompt in the access log"
fi
finish
