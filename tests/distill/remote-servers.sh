#!/bin/sh
# Issue 9, acceptance 3: `slmops distill --teacher-url` against real OpenAI-compatible
# servers on loopback ports, stories260K behind each: llama.cpp's llama-server
# (chat with chatml, and /completions) with an API key, and `slmops serve`. The data set
# holds one answer per sample, in the {"messages"} or {"prompt","completion"} form of
# the API, with the remote teacher in its provenance; a re-run sends nothing (the
# cache answers it all, which the servers' absence then proves).
. "${top_srcdir:?run through make check}/tests/cli/lib.sh"
need gguf/stories260K.gguf
bin=$(llama_cpp_bin) || exit $?
export SLMOPS_PLUGIN_PATH
py=${PYTHON3:-python3}
M=$fx/gguf/stories260K.gguf
S=$work/student.gguf
"$slmops" init --arch llama --preset student-micro --random --type f32 --vocab-from "$M" "$S" \
    >/dev/null 2>&1 || { echo "FAIL: init"; exit 1; }
head -n 6 "$top_srcdir/tests/distill/data/story-prompts.txt" >"$work/p.txt"
key=remote-servers-$$
printf '%s\n' "$key" >"$work/key"
free_port() { "$py" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
pids=
cleanup() { for p in $pids; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done; rm -rf "$work"; }
trap cleanup EXIT
distill() { # OUT URL OPTIONS...
    out=$1 u=$2
    shift 2
    "$slmops" distill --teacher-url "$u" --teacher-model stories260K --prompts "$work/p.txt" \
        --student "$S" -o "$work/$out.gguf" --samples-per-prompt 2 -n 24 --concurrency 2 \
        --steps 1 --ctx 128 -t 1 --json "$@" >"$work/$out.json" 2>"$work/$out.err"
}
check() { # OUT FORM: every sample answered once, in FORM, provenance naming the server
    "$py" - "$work/$1.json" "$work/$1.gguf.data.jsonl" "$work/$1.gguf.teacher-cache.jsonl" "$2" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))["synth"]
d = [json.loads(l) for l in open(sys.argv[2])]
c = [json.loads(l) for l in open(sys.argv[3])]
assert len(c) == len({(e["line"], e["sample"]) for e in c}) == 12, c
assert all(e["response"] for e in c), c
assert r["teacher_failed"] == 0 and r["generated"] == 12 and r["form"] == sys.argv[4], r
assert d and len(d) == r["kept"]
for l in d:
    assert l["provenance"]["teacher"].startswith("stories260K@http://127.0.0.1:"), l
    assert ("messages" in l) == (sys.argv[4] == "messages"), l
PY
}

port=$(free_port)
"$bin/llama-server" -m "$M" --host 127.0.0.1 --port "$port" --alias stories260K -t 1 -tb 1 \
    --api-key-file "$work/key" --chat-template chatml -np 2 -c 512 >"$work/llama.log" 2>&1 &
lpid=$!
pids="$pids $lpid"
for _ in $(seq 200); do
    "$py" -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:$port/health', timeout=1)" \
        2>/dev/null && break
    sleep 0.1
done
url=http://127.0.0.1:$port/v1
distill lc "$url" --teacher-api-key-file "$work/key" --chat-template chatml &&
    check lc messages && ok "llama-server (chat): every sample answered, once, in {\"messages\"}" ||
    { not_ok "llama-server chat"; cat "$work/lc.err"; tail -n 5 "$work/llama.log"; }
distill lp "$url" --teacher-api-key-file "$work/key" --teacher-api completions &&
    check lp prompt-completion && ok "llama-server (/completions): every sample answered, once" ||
    { not_ok "llama-server completions"; cat "$work/lp.err"; }
kill "$lpid"
wait "$lpid" 2>/dev/null
distill lc "$url" --teacher-api-key-file "$work/key" --chat-template chatml &&
    check lc messages && grep -q "(12 cached, 0 failed" "$work/lc.err" &&
    ok "with llama-server gone, a re-run is answered by the cache alone" ||
    { not_ok "re-run from the cache"; cat "$work/lc.err"; }

serve_start "$work/serve.err" -m "$M" -t 1 --parallel 2 --chat-template chatml -a stories260K
pids="$pids $pid"
distill sc "http://127.0.0.1:$port/v1" --chat-template chatml &&
    check sc messages && ok "slmops serve (chat): every sample answered, once" ||
    { not_ok "slmops serve"; cat "$work/sc.err"; }
finish
