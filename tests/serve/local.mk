# tests/serve: `slmops serve` over loopback against the CLI's greedy texts, with
# streams, concurrent clients, a client that leaves, hostile requests, limits and
# drain; per-request adapters; load; the model catalog; the chat page in headless
# Chromium; the official openai client under pytest, against slmops and llama-server.
# Every server runs one thread (-t 1): spin-waiting thread pools on a machine shared
# with other work stretched these tests from seconds to minutes.
TESTS += tests/serve/serve.sh tests/serve/serve-lora.sh tests/serve/serve-load.sh tests/serve/models.sh \
	tests/serve/chat-page.sh tests/serve/openai-client.sh tests/serve/openai-peer.sh \
	tests/serve/prompt-cache.sh
EXTRA_DIST += tests/serve/prompt-cache.sh tests/serve/serve.sh tests/serve/serve-lora.sh tests/serve/serve-load.sh tests/serve/models.sh \
	tests/serve/chat-page.sh tests/serve/chat_page.py tests/lib/webdriver.py \
	tests/serve/serve_load.py tests/serve/serve_check.py tests/serve/serve_limits.py tests/serve/openai-client.sh tests/serve/openai-peer.sh \
	tests/serve/test_openai.py
CLEANFILES += tests/serve/chat-page.png
