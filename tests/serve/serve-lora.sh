#!/bin/sh
# Per-request adapters: `slmops serve --lora A=FILE --lora B=FILE` with requests for
# MODEL, MODEL+A and MODEL+B streamed at once, so that they share decode steps (the
# base product once, each adapter's update only on its own rows): each greedy text
# equals what `slmops generate` gives with that adapter alone (or none).
. "$(dirname "$0")/../cli/lib.sh"
need gguf/stories260K.gguf
tool=$top_builddir/tests/adapter/adapter-tool
m=$fx/gguf/stories260K.gguf
py=${PYTHON3:-python3}
export SLMOPS_PLUGIN_PATH
run() { "$@" >"$work/out" 2>"$work/err" || { echo "FAIL: $*"; cat "$work/err"; exit 1; }; }
run "$tool" new "$m" "$work/a.gguf" rank=4 alpha=16 seed=3 targets=q,k,v,o,gate,up,down b_seed=11 b_scale=0.03
run "$tool" new "$m" "$work/b.gguf" rank=8 alpha=4 seed=4 targets=q,k,v,o b_seed=12 b_scale=0.1
n=40
gen() { # OUT [--lora FILE]
    out=$1
    shift
    run "$slmops" generate -m "$m" "$@" -p "Once upon a time" -n $n --temp 0 --json
    cp "$work/out" "$work/$out"
}
gen base.json
gen a.json --lora "$work/a.gguf:0.5"
gen b.json --lora "$work/b.gguf"

expect_fail "serve --lora without a NAME= is refused" 2 "serve names each adapter" \
    "$slmops" serve -m "$m" --lora "$work/a.gguf" --port 0
expect_fail "serve --lora names must differ" 2 "given twice" \
    "$slmops" serve -m "$m" --lora "A=$work/a.gguf" --lora "A=$work/b.gguf" --port 0

serve_start "$work/serve.err" -m "$m" -t 1 --parallel 3 --lora "A=$work/a.gguf:0.5" \
    --lora "B=$work/b.gguf"

"$py" - "$port" "$work" $n <<'PY' || failures=$((failures + 1))
import http.client, json, sys, threading
port, work, n = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
want = {name: json.load(open(f"{work}/{f}.json"))["text"]
        for name, f in (("stories260K", "base"), ("stories260K+A", "a"), ("stories260K+B", "b"))}
failures = 0
def check(name, cond, detail=""):
    global failures
    print(f"ok - {name}" if cond else f"not ok - {name}: {detail}")
    failures += not cond

c = http.client.HTTPConnection("127.0.0.1", port)
c.request("GET", "/v1/models")
ids = [m["id"] for m in json.loads(c.getresponse().read())["data"]]
check("/v1/models lists the base and each adapter", ids == list(want), str(ids))
check("the adapters change the text", len(set(want.values())) == 3, str(want))

# Three streams at once: each reads its first chunk, then all wait until every one
# has, so the three are in their slots together and share the steps that follow.
started, texts, busy = threading.Barrier(4), {}, []
def stream(model):
    s = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    s.request("POST", "/v1/completions", json.dumps({
        "model": model, "prompt": "Once upon a time", "max_tokens": n, "temperature": 0,
        "stream": True}), {"Content-Type": "application/json"})
    r = s.getresponse()
    first = r.readline()
    started.wait()
    started.wait()
    body = first + r.read()
    text = ""
    for block in body.decode().split("\n\n"):
        if block.startswith("data: ") and block != "data: [DONE]":
            text += json.loads(block[6:])["choices"][0]["text"]
    texts[model] = text
threads = [threading.Thread(target=stream, args=(m,)) for m in want]
for t in threads:
    t.start()
started.wait()
h = http.client.HTTPConnection("127.0.0.1", port)
h.request("GET", "/health")
busy = json.loads(h.getresponse().read())
started.wait()
for t in threads:
    t.join()
check("the three requests ran together", busy["slots_processing"] == 3, str(busy))
for model, text in want.items():
    check(f"{model} in a shared batch equals `slmops generate`" +
          (" --lora" if "+" in model else ""), texts.get(model) == text,
          f"{texts.get(model)!r} != {text!r}")

# Embeddings follow the model named too: the base's, unchanged by an adapter's in
# between, and the adapter's different.
def embed(model):
    c.request("POST", "/v1/embeddings", json.dumps({"model": model, "input": "Once upon a time"}),
              {"Content-Type": "application/json"})
    r = c.getresponse()
    return json.loads(r.read())["data"][0]["embedding"] if r.status == 200 else r.status
base1, a1, base2, a2 = embed("stories260K"), embed("stories260K+A"), embed("stories260K"), \
    embed("stories260K+A")
check("embeddings: MODEL+NAME uses the adapter, MODEL the base",
      base1 == base2 and a1 == a2 and max(abs(x - y) for x, y in zip(base1, a1)) > 1e-3,
      f"{str(base1)[:60]} {str(a1)[:60]}")

c.request("POST", "/v1/completions", json.dumps({"model": "stories260K+C", "prompt": "a"}),
          {"Content-Type": "application/json"})
r = c.getresponse()
check("an unknown adapter: 404", r.status == 404 and
      json.loads(r.read())["error"]["code"] == "model_not_found")
sys.exit(1 if failures else 0)
PY
kill -TERM $pid
wait $pid || not_ok "serve exited $? on SIGTERM"
finish
