#!/bin/sh
# The official `openai` Python client (tests/serve/test_openai.py, under pytest)
# against `slmops serve` with stories260K on a free loopback port.
. "$(dirname "$0")/../cli/lib.sh"
need gguf/stories260K.gguf
needs_python openai pytest jsonschema
export SLMOPS_PLUGIN_PATH
key=openai-client-$$
printf '%s\n' "$key" >"$work/key"
serve_start "$work/serve.err" -m "$fx/gguf/stories260K.gguf" -t 1 --parallel 2 \
    --chat-template chatml --api-key-file "$work/key"
SLMOPS_SERVE_URL=http://127.0.0.1:$port/v1 SLMOPS_SERVE_KEY=$key \
    "${PYTHON3:-python3}" -m pytest -q -p no:cacheprovider \
    "$(dirname "$0")/test_openai.py" || failures=1
kill -TERM $pid
wait $pid || { echo "FAIL: slmops serve exited $? on SIGTERM"; failures=1; }
finish
