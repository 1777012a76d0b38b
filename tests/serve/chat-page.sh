#!/bin/sh
# The chat page (GET /) in headless Chromium (Debian's chromium and chromium-driver,
# driven through WebDriver by tests/serve/chat_page.py): the API key entered, a
# message sent, the streamed reply equal to `slmops chat`'s greedy one, tokens/s
# shown; the screenshot is kept as tests/serve/chat-page.png in the build folder.
. "$(dirname "$0")/../cli/lib.sh"
need gguf/stories260K.gguf
chromium=$(command -v chromium || command -v chromium-browser) ||
    { echo "SKIP: chromium not found (Debian: apt-get install chromium chromium-driver)"; exit 77; }
driver=$(command -v chromedriver) ||
    { echo "SKIP: chromedriver not found (Debian: apt-get install chromium-driver)"; exit 77; }
m=$fx/gguf/stories260K.gguf
n=24
export SLMOPS_PLUGIN_PATH
"$slmops" chat -m "$m" --chat-template chatml --temp 0 -n $n -p "Hello there" </dev/null \
    >"$work/chat.txt" 2>"$work/chat.err" || { echo "FAIL: slmops chat:"; cat "$work/chat.err"; exit 1; }
"${PYTHON3:-python3}" -c 'import sys; t = open(sys.argv[1], encoding="utf-8").read(); open(sys.argv[2], "w", encoding="utf-8").write(t[:-1])' \
    "$work/chat.txt" "$work/expect.txt"   # the reply without the newline chat ends it with
key=page-$$
printf '%s\n' "$key" >"$work/key"
serve_start "$work/serve.err" -m "$m" -t 1 --chat-template chatml --api-key-file "$work/key"
"${PYTHON3:-python3}" "$(dirname "$0")/chat_page.py" "$driver" "$chromium" \
    "http://127.0.0.1:$port/" "$key" "$work/expect.txt" $n "$top_builddir/tests/serve/chat-page.png" ||
    failures=$((failures + 1))
kill -TERM $pid
wait $pid || not_ok "serve exited $? on SIGTERM"
finish
