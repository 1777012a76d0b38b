# tests/serve: `slmops serve` over loopback against the CLI's greedy texts, with
# streams, concurrent clients, a client that leaves, and malformed requests.
TESTS += tests/serve/serve.sh
EXTRA_DIST += tests/serve/serve.sh tests/serve/serve_check.py
