#!/bin/sh
# The same pytest suite (tests/serve/test_openai.py) against llama.cpp's llama-server
# on the same GGUF, so that it checks OpenAI compatibility rather than slmops habits:
# one llama-server for chat and completions, one with --embeddings (it serves only
# embeddings then), both with an API key. The tests that check what only slmops does
# are strict xfails there, each with its reason (at most five).
. "$(dirname "$0")/../cli/lib.sh"
need gguf/stories260K.gguf
needs_python openai pytest jsonschema
bin=$(llama_cpp_bin) || exit $?
py=${PYTHON3:-python3}
key=openai-peer-$$
printf '%s\n' "$key" >"$work/key"
free_port() { "$py" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
pids=
cleanup() { for p in $pids; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done; rm -rf "$work"; }
trap cleanup EXIT

# start NAME ARGS...: llama-server on a free port, waiting for /health; sets port.
start() {
    name=$1
    shift
    port=$(free_port)
    "$bin/llama-server" -m "$fx/gguf/stories260K.gguf" --host 127.0.0.1 --port "$port" \
        --alias stories260K -t 1 -tb 1 --api-key-file "$work/key" "$@" >"$work/$name.log" 2>&1 &
    pids="$pids $!"
    for _ in $(seq 200); do
        "$py" -c "import urllib.request, sys; urllib.request.urlopen('http://127.0.0.1:$port/health', timeout=1)" \
            2>/dev/null && return 0
        sleep 0.1
    done
    echo "FAIL: llama-server ($name) did not start:"
    tail -n 20 "$work/$name.log"
    exit 1
}
start chat --chat-template chatml -np 2
chat_port=$port
start embed --embeddings --pooling mean
SLMOPS_SERVE_URL=http://127.0.0.1:$chat_port/v1 SLMOPS_SERVE_EMBED_URL=http://127.0.0.1:$port/v1 \
    SLMOPS_SERVE_KEY=$key SLMOPS_SERVE_PEER=llama-server \
    "$py" -m pytest -q -rx -p no:cacheprovider "$(dirname "$0")/test_openai.py" || failures=1
finish
