#!/bin/sh
# Oracle: slmops' quantizers give the same bytes as the `gguf` Python package's
# ports of ggml's reference quantizers and as llama.cpp's own llama-quantize.
set -u
: "${top_srcdir:?run through make check}" "${top_builddir:?run through make check}"

python=${PYTHON3:-python3}
[ "$python" = : ] && python=python3
tool="$top_builddir/tests/quantize/quant-tool"
if [ ! -x "$tool" ]; then
    echo "FAIL: $tool is not built"
    exit 1
fi
for pkg in numpy gguf; do
    if ! "$python" -c "import $pkg" > /dev/null 2>&1; then
        echo "FAIL: python3 cannot import $pkg (the README's first command installs it)"
        exit 1
    fi
done
peer_script=${SLMOPS_FIXTURES:?run through make check}/../peers/llama-cpp.sh
[ -x "$peer_script" ] || { echo "SKIP: $peer_script not found"; exit 77; }
peer=$("$peer_script") || { echo "FAIL: $peer_script failed"; exit 1; }
exec "$python" "$top_srcdir/tests/quantize/oracle.py" "$tool" "$peer"
