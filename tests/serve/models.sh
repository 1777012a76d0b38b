#!/bin/sh
# The model catalog: `slmops models add|list|show|rm` in $XDG_DATA_HOME (its bad
# uses refused), and an alias where -m takes a path: generate (its plain adapters
# applied), chat (its chat template), serve (the alias in /v1/models, its named
# adapters as ALIAS+NAME, each answering as `generate --lora` does).
. "$(dirname "$0")/../cli/lib.sh"
need gguf/stories260K.gguf
tool=$top_builddir/tests/adapter/adapter-tool
m=$fx/gguf/stories260K.gguf
py=${PYTHON3:-python3}
export SLMOPS_PLUGIN_PATH XDG_DATA_HOME="$work/xdg"
run() { "$@" >"$work/out" 2>"$work/err" || { echo "FAIL: $*"; cat "$work/err"; exit 1; }; }
run "$tool" new "$m" "$work/a.gguf" rank=4 alpha=16 seed=3 targets=q,k,v,o,gate,up,down b_seed=11 b_scale=0.03
gen() { # OUT -m MODEL [options]
    out=$1
    shift
    run "$slmops" generate "$@" -p "Once upon a time" -n 24 --temp 0 --json
    "$py" -c 'import json, sys; print(json.load(open(sys.argv[1]))["text"])' "$work/out" >"$work/$out"
}
gen base.txt -m "$m"
gen a.txt -m "$m" --lora "$work/a.gguf:0.5"

run "$slmops" models list --json
[ "$(cat "$work/out")" = "{}" ] && ok "an absent catalog lists nothing" || not_ok "models list: $(cat "$work/out")"
run "$slmops" models add tiny "$m" --chat-template chatml
run "$slmops" models add tiny-a "$m" --lora "$work/a.gguf:0.5"
run "$slmops" models add tiny-s "$m" --lora "A=$work/a.gguf:0.5" --chat-template chatml
[ -f "$XDG_DATA_HOME/slmops/models.json" ] && ok "models add writes \$XDG_DATA_HOME/slmops/models.json" ||
    not_ok "no catalog file"
ls "$XDG_DATA_HOME/slmops" | grep -q slmops-tmp && not_ok "a temporary was left" || ok "no temporary left"
run "$slmops" models show tiny-s --json
"$py" - "$work/out" "$work/a.gguf" <<'PY' && ok "models show --json" || not_ok "models show --json: $(cat "$work/out")"
import json, sys
d = json.load(open(sys.argv[1]))["tiny-s"]
assert d["chat_template"] == "chatml" and d["lora"] == [{"name": "A", "path": sys.argv[2], "scale": 0.5}], d
PY
run "$slmops" models list
[ "$(grep -c '^tiny' "$work/out")" = 3 ] && ok "models list: three aliases" || not_ok "models list: $(cat "$work/out")"

expect_fail "add an alias that exists" 1 "in the catalog already" "$slmops" models add tiny "$m"
expect_fail "add a missing file" 1 "No such file" "$slmops" models add gone "$work/none.gguf"
expect_fail "an alias with a slash" 2 "alias 'a/b'" "$slmops" models add a/b "$m"
expect_fail "an unknown subcommand" 2 "unknown subcommand" "$slmops" models move tiny
expect_fail "rm of an alias not there" 1 "not in the catalog" "$slmops" models rm nothing
expect_fail "show of an alias not there" 1 "not in the catalog" "$slmops" models show nothing
printf '{"models": ' >"$work/broken.json"
cp "$XDG_DATA_HOME/slmops/models.json" "$work/good.json"
cp "$work/broken.json" "$XDG_DATA_HOME/slmops/models.json"
expect_fail "a broken catalog is named" 1 "models.json" "$slmops" models list
cp "$work/good.json" "$XDG_DATA_HOME/slmops/models.json"

gen alias.txt -m tiny
cmp -s "$work/alias.txt" "$work/base.txt" && ok "generate -m ALIAS: the model's text" || not_ok "generate -m tiny differs"
gen alias-a.txt -m tiny-a
cmp -s "$work/alias-a.txt" "$work/a.txt" && ok "generate -m ALIAS: its adapter applied" ||
    not_ok "generate -m tiny-a differs from --lora"
gen alias-s.txt -m tiny-s
cmp -s "$work/alias-s.txt" "$work/base.txt" && ok "generate -m ALIAS: named adapters are for serve only" ||
    not_ok "generate -m tiny-s applied its named adapter"
run "$slmops" chat -m "$m" --chat-template chatml -p "Hello there" -n 12 --temp 0 </dev/null
cp "$work/out" "$work/chat.txt"
run "$slmops" chat -m tiny -p "Hello there" -n 12 --temp 0 </dev/null
cmp -s "$work/out" "$work/chat.txt" && ok "chat -m ALIAS: the catalog's chat template" || not_ok "chat -m tiny differs"

serve_start "$work/serve.err" -m tiny-s -t 1
"$py" - "$port" "$work" <<'PY' && ok "serve -m ALIAS: /v1/models, ALIAS and ALIAS+NAME as generate gives them, its chat template" || not_ok "serve -m ALIAS"
import http.client, json, sys
port, work = int(sys.argv[1]), sys.argv[2]
def req(method, path, body=None):
    c = http.client.HTTPConnection("127.0.0.1", port)
    c.request(method, path, json.dumps(body) if body else None)
    r = c.getresponse()
    return r.status, json.loads(r.read())
s, d = req("GET", "/v1/models")
assert [m["id"] for m in d["data"]] == ["tiny-s", "tiny-s+A"], d
for model, f in (("tiny-s", "base.txt"), ("tiny-s+A", "a.txt")):
    s, d = req("POST", "/v1/completions", {"model": model, "prompt": "Once upon a time",
                                           "max_tokens": 24, "temperature": 0})
    want = open(f"{work}/{f}").read()[:-1]
    assert s == 200 and d["choices"][0]["text"] == want and d["model"] == model, (d, want)
s, d = req("POST", "/v1/chat/completions", {"messages": [{"role": "user", "content": "Hi"}],
                                            "max_tokens": 2})
assert s == 200, d
PY
kill -TERM $pid
wait $pid || not_ok "serve exited $? on SIGTERM"
run "$slmops" models rm tiny
run "$slmops" models list --json
"$py" -c 'import json, sys; assert sorted(json.load(open(sys.argv[1]))) == ["tiny-a", "tiny-s"]' "$work/out" &&
    ok "models rm" || not_ok "models rm: $(cat "$work/out")"
finish
