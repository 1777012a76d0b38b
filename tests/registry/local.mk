# tests/registry build fragment.
