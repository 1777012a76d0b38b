#!/bin/sh
# Oracle: slmops' quantizers give the same bytes as the `gguf` Python package's
# ports of ggml's reference quantizers (skipped, exit 77, when it is unavailable).
set -u
: "${top_srcdir:?run through make check}" "${top_builddir:?run through make check}"

python=${PYTHON3:-python3}
[ "$python" = : ] && python=python3
if ! command -v "$python" > /dev/null 2>&1; then
    echo "SKIP: no python3 to run the oracle"
    exit 77
fi
tool="$top_builddir/tests/quantize/quant-tool"
if [ ! -x "$tool" ]; then
    echo "FAIL: $tool is not built"
    exit 1
fi
if ! "$python" -c 'import numpy, gguf.quants' > /dev/null 2>&1; then
    # One attempt, quietly: a machine without network access simply skips.
    "$python" -m pip install -q gguf numpy > /dev/null 2>&1 || :
fi
for pkg in numpy gguf; do
    if ! "$python" -c "import $pkg" > /dev/null 2>&1; then
        echo "SKIP: the '$pkg' Python package is not installed (pip install $pkg)"
        exit 77
    fi
done
exec "$python" "$top_srcdir/tests/quantize/oracle.py" "$tool"
