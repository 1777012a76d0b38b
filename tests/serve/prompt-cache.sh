#!/bin/sh
# `slmops serve`'s prompt cache (issue 10): a freed slot keeps its cells, and a request
# whose prompt starts the same way takes that slot and runs only the rest. With
# stories260K, greedy: a repeated prompt runs one token (cached_tokens = prompt_tokens
# - 1), a longer prompt sharing a start reuses it, and every answer equals `slmops generate`'s, as with --no-prompt-cache (which caches
# nothing); /metrics counts the cached tokens.
. "$(dirname "$0")/../cli/lib.sh"
need gguf/stories260K.gguf
m=$fx/gguf/stories260K.gguf
py=${PYTHON3:-python3}
export SLMOPS_PLUGIN_PATH
n=20
p1="Once upon a time, there was a little girl named Lily. She loved to play"
p2="$p1 with her dog in the big green park near her house. One day"

for i in 1 2; do
    eval p=\$p$i
    "$slmops" generate -m "$m" --temp 0 -n $n --json -p "$p" >"$work/gen-$i.json" ||
        { echo "FAIL: slmops generate failed"; exit 1; }
done

# start_server LOG ARGS...: slmops serve on a free port; sets pid and port.
start_server() {
    log=$1
    shift
    serve_start "$log" -m "$m" -t 1 --parallel 2 --ctx 1024 "$@"
}

# check PORT CACHE: the requests and what each must report (CACHE 1: the cache is on).
check() {
    "$py" - "$1" "$2" "$work" $n <<'PY'
import http.client, json, sys
port, cache, work, n = int(sys.argv[1]), sys.argv[2] == "1", sys.argv[3], int(sys.argv[4])
gen = [json.load(open(f"{work}/gen-{i}.json")) for i in (1, 2)]
bad = 0

def post(prompt, **extra):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    body = {"prompt": prompt, "max_tokens": n, "temperature": 0, **extra}
    c.request("POST", "/v1/completions", json.dumps(body), {"Content-Type": "application/json"})
    r = c.getresponse()
    d = json.loads(r.read())
    assert r.status == 200, d
    return d["choices"][0]["text"], d["usage"]

def check(name, ok, detail=""):
    global bad
    print(("ok - " if ok else "not ok - ") + name + ("" if ok else f": {detail}"))
    bad += not ok

n1, n2 = len(gen[0]["prompt_tokens"]), len(gen[1]["prompt_tokens"])
t, u = post(gen[0]["prompt"])
check("first request: the generate text, nothing cached",
      t == gen[0]["text"] and u["prompt_tokens_details"]["cached_tokens"] == 0, (t, u))
t, u = post(gen[0]["prompt"])
want = n1 - 1 if cache else 0
check(f"the same prompt again: the same text, {want} of {n1} prompt tokens cached",
      t == gen[0]["text"] and u["prompt_tokens_details"]["cached_tokens"] == want, (t, u))
t, u = post(gen[1]["prompt"])
c = u["prompt_tokens_details"]["cached_tokens"]
ok = n1 - 2 <= c <= n1 if cache else c == 0
check(f"a longer prompt sharing the start: the generate text, {c} of {n2} cached",
      t == gen[1]["text"] and u["prompt_tokens"] == n2 and ok, (t, u))
t, u = post(gen[1]["prompt"])
check("and again: the same text", t == gen[1]["text"], (t, u))
c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
c.request("GET", "/metrics")
metrics = c.getresponse().read().decode()
total = [float(l.split()[1]) for l in metrics.splitlines()
         if l.startswith("slmops_prompt_tokens_cached_total ")]
check("/metrics counts the cached tokens", total and (total[0] > 0) == cache, total)
sys.exit(1 if bad else 0)
PY
}

start_server "$work/serve.err"
check $port 1 || failures=$((failures + 1))
kill -TERM $pid; wait $pid
start_server "$work/serve2.err" --no-prompt-cache
check $port 0 || failures=$((failures + 1))
kill -TERM $pid; wait $pid
finish
