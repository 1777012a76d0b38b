#!/bin/sh
# Issue 9, acceptance 3: `slmops distill --teacher-url` against a fault-injecting
# OpenAI-compatible server (fault_server.py): 429s, 500s, a connection closed
# mid-answer and a permanent 400. Every sample ends answered (cached once) or reported
# failed; a re-run asks only the failed ones; a torn last cache line is dropped; a
# SIGKILLed run resumes without asking again what it had cached; the API key comes
# from a file or a variable; remote-only misuse is refused by name.
. "${top_srcdir:?run through make check}/tests/cli/lib.sh"
need gguf/stories260K.gguf
py=${PYTHON3:-python3}
srv=$top_srcdir/tests/distill/fault_server.py
S=$work/student.gguf
"$slmops" init --arch llama --preset student-micro --random --type f32 \
    --vocab-from "$fx/gguf/stories260K.gguf" "$S" >/dev/null 2>&1 || { echo "FAIL: init"; exit 1; }
pids=
trap 'for p in $pids; do kill "$p" 2>/dev/null; done; rm -rf "$work"' EXIT
serve() { # NAME OPTIONS...: a fault server; its URL in $url, its log in $work/NAME.log
    name=$1
    shift
    "$py" "$srv" "$work/$name.port" "$work/$name.log" "$@" &
    pids="$pids $!"
    i=0
    while [ ! -s "$work/$name.port" ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
    [ -s "$work/$name.port" ] || { echo "FAIL: the fault server did not start"; exit 1; }
    url=http://127.0.0.1:$(cat "$work/$name.port")/v1
    : >>"$work/$name.log"
}
distill() { # OUT OPTIONS...
    out=$1
    shift
    "$slmops" distill --teacher-url "$url" --teacher-model fake --student "$S" \
        -o "$work/$out.gguf" --steps 1 --ctx 128 --chat-template chatml --json "$@" \
        >"$work/$out.json" 2>"$work/$out.err"
}

printf '%s\n' 'Tell a story about a cat' 'Why is the sky blue [429]' 'Count to three [500]' \
    'Say hi [cut]' 'Never works [400]' 'Name a color' 'Name a fruit [429]' 'Say bye [cut]' \
    >"$work/p.txt"
serve f
distill a --prompts "$work/p.txt" --samples-per-prompt 2 --concurrency 3 ||
    { not_ok "distill against the fault server failed"; cat "$work/a.err"; }
$py - "$work/a.json" "$work/a.gguf.teacher-cache.jsonl" "$work/a.gguf.data.jsonl" \
    "$work/f.log" "$work/a.err" <<'PY' && ok "429/500/cut retried to an answer, each sample cached once; the 400 prompt reported failed" || not_ok "faults"
import json, sys
rep, cache, data, log, err = sys.argv[1:]
r = json.load(open(rep))["synth"]
c = [json.loads(l) for l in open(cache)]
d = [json.loads(l) for l in open(data)]
g = [json.loads(l) for l in open(log)]
keys = [(e["line"], e["sample"]) for e in c]
assert len(keys) == len(set(keys)) == 14, keys                 # 7 prompts x 2, once each
assert all(line != 5 for line, _ in keys)                      # the 400 prompt: not cached
assert r["teacher_failed"] == 2 and r["generated"] == 14 and r["kept"] == len(d) == 14, r
ok = {}
for e in g:
    if e["status"] == 200:
        ok[(e["prompt"], e["seed"])] = ok.get((e["prompt"], e["seed"]), 0) + 1
assert len(ok) == 14 and set(ok.values()) == {1}, ok          # one 200 per sample
bad = {s: sum(1 for e in g if "[%s]" % s in e["prompt"] and e["status"] != 200) for s in ("429", "500", "cut", "400")}
assert bad == {"429": 4, "500": 4, "cut": 4, "400": 2}, bad  # retried as injected; 400 not retried
e = open(err).read()
assert e.count("prompt line 5, sample") == 2 and "HTTP 400: injected 400" in e, e
for l in d:
    assert l["provenance"]["teacher"].startswith("fake@http://127.0.0.1:"), l
    assert l["messages"][-1]["role"] == "assistant", l
PY

n0=$(wc -l <"$work/f.log")
distill a --prompts "$work/p.txt" --samples-per-prompt 2 --concurrency 3 &&
    [ "$(($(wc -l <"$work/f.log") - n0))" -eq 2 ] && [ "$(wc -l <"$work/a.gguf.teacher-cache.jsonl")" -eq 14 ] &&
    ok "a re-run asks only the 2 failed requests again" ||
    { not_ok "re-run sent $(($(wc -l <"$work/f.log") - n0)) requests (want 2)"; cat "$work/a.err"; }

printf '{"key":"0123","line":1,"sam' >>"$work/a.gguf.teacher-cache.jsonl"
n0=$(wc -l <"$work/f.log")
distill a --prompts "$work/p.txt" --samples-per-prompt 2 &&
    grep -q "dropped a torn last line" "$work/a.err" &&
    ! grep -q '"key":"0123"' "$work/a.gguf.teacher-cache.jsonl" &&
    [ "$(wc -l <"$work/a.gguf.teacher-cache.jsonl")" -eq 14 ] &&
    [ "$(($(wc -l <"$work/f.log") - n0))" -eq 2 ] &&
    ok "a torn last cache line is dropped and cut off the file" ||
    { not_ok "torn line"; cat "$work/a.err"; }

# SIGKILL while requests are in flight (each answer takes 0.2 s, 2 at a time).
seq 1 24 | sed 's/^/Question number /' >"$work/k.txt"
serve slow --delay 0.2
# exec: $! is slmops itself, not a subshell the kill would leave it running behind.
(exec "$slmops" distill --teacher-url "$url" --teacher-model fake --student "$S" \
    -o "$work/k.gguf" --steps 1 --ctx 128 --chat-template chatml --prompts "$work/k.txt" \
    --concurrency 2 >/dev/null 2>&1) &
dpid=$!
i=0
while [ "$(cat "$work/k.gguf.teacher-cache.jsonl" 2>/dev/null | wc -l)" -lt 6 ] && [ $i -lt 200 ]; do
    sleep 0.05; i=$((i + 1))
done
kill -KILL $dpid
wait $dpid 2>/dev/null
cp "$work/k.gguf.teacher-cache.jsonl" "$work/k-killed.jsonl"
wc -l <"$work/slow.log" >"$work/k-mark"
distill k --prompts "$work/k.txt" --concurrency 2 ||
    { not_ok "the resumed run failed"; cat "$work/k.err"; }
$py - "$work/k-killed.jsonl" "$work/k.gguf.teacher-cache.jsonl" "$work/slow.log" \
    "$(cat "$work/k-mark")" "$work/k.json" <<'PY' && ok "a SIGKILLed run resumes without asking again what it had cached" || not_ok "resume after SIGKILL"
import json, sys
killed, cache, log, mark, rep = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5]
k = [json.loads(l) for l in open(killed) if l.endswith("\n")]
c = [json.loads(l) for l in open(cache)]
g = [json.loads(l) for l in open(log)]
assert 6 <= len(k) < 24, len(k)
done = {e["seed"] for e in k}
after = [e["seed"] for e in g[mark:]]
assert not done & set(after), done & set(after)
assert len(c) == len({(e["line"], e["sample"]) for e in c}) == 24, len(c)
assert json.load(open(rep))["synth"]["kept"] == 24
PY

# The API key: from a file or a named variable, never the command line.
serve key --key sk-test-123
printf 'sk-test-123\n' >"$work/key"
distill key1 --prompts "$work/p.txt" --teacher-cache "$work/kc.jsonl" --teacher-api-key-file "$work/key" &&
    [ "$(wc -l <"$work/kc.jsonl")" -eq 7 ] && ok "--teacher-api-key-file sends the key" ||
    { not_ok "key file"; cat "$work/key1.err"; }
rm -f "$work/kc.jsonl"
SLM_TEST_KEY=sk-test-123 distill key2 --prompts "$work/p.txt" --teacher-cache "$work/kc.jsonl" \
    --teacher-api-key-env SLM_TEST_KEY && [ "$(wc -l <"$work/kc.jsonl")" -eq 7 ] &&
    ok "--teacher-api-key-env sends the variable's key" || { not_ok "key variable"; cat "$work/key2.err"; }
rm -f "$work/kc.jsonl"
OPENAI_API_KEY=wrong distill key3 --prompts "$work/p.txt" --teacher-cache "$work/kc.jsonl"
grep -q "HTTP 401" "$work/key3.err" && ! grep -q "wrong" "$work/key3.err" &&
    ok "a wrong key (OPENAI_API_KEY) is reported as the 401 it got, the key not printed" ||
    { not_ok "wrong key"; cat "$work/key3.err"; }

expect_fail "a remote teacher refuses logit distillation" 2 "kd-loss forward-kl needs the teacher's logits" \
    "$slmops" distill --teacher-url "$url" --teacher-model x --prompts "$work/p.txt" --student "$S" \
    -o "$work/x.gguf" --kd-loss forward-kl
expect_fail "a remote teacher refuses a preset student" 2 "student-preset takes the teacher's vocabulary" \
    "$slmops" distill --teacher-url "$url" --teacher-model x --prompts "$work/p.txt" \
    --student-preset student-micro -o "$work/x.gguf"
expect_fail "--teacher-url needs --teacher-model" 2 "needs --teacher-model" \
    "$slmops" distill --teacher-url "$url" --prompts "$work/p.txt" --student "$S" -o "$work/x.gguf"
expect_fail "an unset --teacher-api-key-env is named" 1 "SLM_TEST_UNSET: the variable is not set" \
    "$slmops" distill --teacher-url "$url" --teacher-model x --prompts "$work/p.txt" --student "$S" \
    -o "$work/x.gguf" --teacher-api-key-env SLM_TEST_UNSET
expect_fail "--concurrency without --teacher-url" 2 "are for --teacher-url" \
    "$slmops" distill -m "$S" --prompts "$work/p.txt" --student "$S" -o "$work/x.gguf" --concurrency 2
finish
