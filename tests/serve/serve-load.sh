#!/bin/sh
# Load: 8 concurrent streaming clients x 6 requests of mixed lengths on a server with
# 4 slots (so requests queue too), 0 errors, then SIGTERM exits 0. The full 8 x 50 is
# bench/serve-load.
. "$(dirname "$0")/../cli/lib.sh"
need gguf/stories260K.gguf
export SLMOPS_PLUGIN_PATH
serve_start "$work/serve.err" -m "$fx/gguf/stories260K.gguf" -t 1 --parallel 4 \
    --chat-template chatml --access-log none
if "${PYTHON3:-python3}" "$(dirname "$0")/serve_load.py" "$port" 8 "${SERVE_LOAD_REQUESTS:-6}" \
    >"$work/load.out"; then
    ok "$(cat "$work/load.out")"
else
    not_ok "load:"
    sed 's/^/    /' "$work/load.out"
fi
kill -TERM $pid
wait $pid || not_ok "serve exited $? on SIGTERM"
finish
