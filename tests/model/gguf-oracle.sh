#!/bin/sh
# Runs gguf-oracle.py with the `gguf` Python package (llama.cpp's gguf-py), which the
# README's first command installs.
set -u
: "${top_srcdir:?run through make check}" "${top_builddir:?run through make check}"

python=${PYTHON3:-python3}
[ "$python" = : ] && python=python3
if ! "$python" -c 'import gguf, numpy' 2>/dev/null; then
    echo "FAIL: python3 cannot import gguf and numpy (the README's first command installs them)"
    exit 1
fi

tmp=$(mktemp -d) || exit 99
trap 'rm -rf "$tmp"' EXIT
exec "$python" "$top_srcdir/tests/model/gguf-oracle.py" \
    "$top_builddir/tests/model/gguf-dump" "$tmp"
