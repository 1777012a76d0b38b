#!/bin/sh
# Runs gguf-oracle.py with the `gguf` Python package (llama.cpp's gguf-py),
# installing it with pip when missing; skips (77) only when it cannot be had.
set -u
: "${top_srcdir:?run through make check}" "${top_builddir:?run through make check}"

python=${PYTHON3:-python3}
[ "$python" = : ] && python=python3
if ! command -v "$python" > /dev/null 2>&1; then
    echo "SKIP: no python3 for the gguf oracle"
    exit 77
fi
if ! "$python" -c 'import gguf, numpy' 2>/dev/null; then
    "$python" -m pip install --quiet gguf > /dev/null 2>&1 || true
fi
if ! "$python" -c 'import gguf, numpy' 2>/dev/null; then
    echo "SKIP: the Python package 'gguf' is not importable and 'pip install gguf' failed"
    exit 77
fi

tmp=$(mktemp -d) || exit 99
trap 'rm -rf "$tmp"' EXIT
exec "$python" "$top_srcdir/tests/model/gguf-oracle.py" \
    "$top_builddir/tests/model/gguf-dump" "$tmp"
