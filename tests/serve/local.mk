# tests/serve: `slmops serve` over loopback against the CLI's greedy texts, with
# streams, concurrent clients, a client that leaves, and malformed requests; then
# the official openai client under pytest.
TESTS += tests/serve/serve.sh tests/serve/serve-lora.sh tests/serve/serve-load.sh tests/serve/models.sh \
	tests/serve/openai-client.sh tests/serve/openai-peer.sh
EXTRA_DIST += tests/serve/serve.sh tests/serve/serve-lora.sh tests/serve/serve-load.sh tests/serve/models.sh \
	tests/serve/serve_load.py tests/serve/serve_check.py tests/serve/serve_limits.py tests/serve/openai-client.sh tests/serve/openai-peer.sh \
	tests/serve/test_openai.py
