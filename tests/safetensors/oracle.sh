#!/bin/sh
# Interoperability with the `safetensors` Python package: it reads what slmops
# writes (names, shapes, dtypes, values, q/k permutation) and slmops reads what it
# writes. The README's first command installs the package.
set -u
py=${PYTHON:-python3}
fixtures=${SLMOPS_FIXTURES:-${top_srcdir:-.}/../shared/fixtures}
tool=${top_builddir:-.}/tests/safetensors/st-convert
here=$(dirname "$0")
gguf=$fixtures/gguf/stories260K.gguf

if [ ! -r "$gguf" ]; then
    echo "SKIP: $gguf not found (set SLMOPS_FIXTURES)"
    exit 77
fi
if ! "$py" -c "import safetensors, numpy" 2>/dev/null; then
    echo "FAIL: python3 cannot import safetensors and numpy (the README's first command installs them)"
    exit 1
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/st-oracle-XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT

# slmops -> package: a Hugging Face folder, and the same tensors under GGUF names.
"$tool" "$gguf" "$tmp/hf" format-safetensors || exit 1
"$tool" "$gguf" "$tmp/ref.safetensors" || exit 1
"$py" "$here/oracle.py" check-folder "$tmp/hf" "$tmp/ref.safetensors" || exit 1
# The lone file carries the GGUF's metadata (issue 7, item 9), readable by the package.
"$py" "$here/oracle.py" check-kv "$tmp/ref.safetensors" || exit 1

# package -> slmops: the folder's weights re-saved by the package (its own order
# and header), read back by slmops in folder mode.
mkdir "$tmp/pkg" && cp "$tmp/hf/config.json" "$tmp/pkg/" || exit 1
"$py" "$here/oracle.py" resave "$tmp/hf/model.safetensors" "$tmp/pkg/model.safetensors" || exit 1
"$tool" "$tmp/pkg" "$tmp/back.safetensors" || exit 1
"$py" "$here/oracle.py" same "$tmp/ref.safetensors" "$tmp/back.safetensors" || exit 1

# package -> slmops -> package: every dtype slmops has a type for, with metadata.
"$py" "$here/oracle.py" make-mixed "$tmp/mixed.safetensors" || exit 1
"$tool" "$tmp/mixed.safetensors" "$tmp/mixed-copy.safetensors" || exit 1
"$py" "$here/oracle.py" same "$tmp/mixed.safetensors" "$tmp/mixed-copy.safetensors" || exit 1
echo "PASS: safetensors package and slmops agree"
