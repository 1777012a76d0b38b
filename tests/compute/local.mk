# tests/compute build fragment.
