# tests/cpu build fragment.
