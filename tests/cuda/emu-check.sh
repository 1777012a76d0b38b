#!/bin/sh
# The CUDA backend's sources on the CPU emulator (tests/cuda/emu, built as the
# plugin backend-cuda-emu, family cudaemu): slmops-conform passes with every
# recording captured into a CUDA graph (SLMOPS_CUDA_GRAPHS=1) and with none (0); test-cuda runs on it (every op, the long
# reductions, stories260K against the CPU backend); and with the runtime finding
# no device, the plugin is disabled with "no CUDA device (...)".
. "$(dirname "$0")/../cli/lib.sh"
need gguf/stories260K.gguf   # test-cuda's generation part, which this check requires

lib=$top_builddir/tests/cuda/.libs/backend-cuda-emu.so
[ -f "$lib" ] || { echo "FAIL: $lib was not built"; exit 1; }
mkdir "$work/mf"
# The plugin's own manifest (built or not: this runs in every build tree), renamed.
version=$(sed -n 's/^#define PACKAGE_VERSION "\(.*\)"$/\1/p' "$top_builddir/config.h")
sed -e 's|"name": "backend-cuda"|"name": "backend-cuda-emu"|' -e 's|"backend": "cuda"|"backend": "cudaemu"|' \
    -e 's|"library_path": "[^"]*"|"library_path": "'"$lib"'"|' -e "s|@PACKAGE_VERSION@|$version|" \
    "$top_srcdir/manifests/backend-cuda.json.in" >"$work/mf/backend-cuda-emu.json"
SLMOPS_PLUGIN_PATH=$work/mf:$top_builddir/manifests/uninstalled
export SLMOPS_PLUGIN_PATH
conform=$top_builddir/sdk/conform/slmops-conform

SLMOPS_CUDA_GRAPHS=1 "$conform" --plugin backend-cuda-emu >"$work/conform.txt" 2>&1 &&
    grep -Eq '^cudaemu:0 \(backend-cuda-emu\): [1-9][0-9]* passed, 0 failed' "$work/conform.txt" &&
    ok "slmops-conform: $(tail -n 1 "$work/conform.txt")" ||
    { not_ok "slmops-conform --plugin backend-cuda-emu:"; grep -v '^ok\|PASS' "$work/conform.txt" | tail -n 40; }

SLMOPS_CUDA_GRAPHS=0 "$conform" --plugin backend-cuda-emu >"$work/conform0.txt" 2>&1 &&
    ok "without CUDA graphs: $(tail -n 1 "$work/conform0.txt")" ||
    { not_ok "slmops-conform without CUDA graphs:"; tail -n 20 "$work/conform0.txt"; }

SLMOPS_TEST_CUDA_DEVICE=cudaemu:0 SLMOPS_TEST_CUDA_PLUGIN=backend-cuda-emu \
    "$top_builddir/tests/cuda/test-cuda" >"$work/test-cuda.txt" 2>&1
rc=$?
if [ "$rc" -eq 0 ] && ! grep -q SKIP "$work/test-cuda.txt"; then
    ok "test-cuda on the emulator: $(grep -E '^[0-9]+%' "$work/test-cuda.txt")"
else
    not_ok "test-cuda on the emulator (exit $rc):"; tail -n 30 "$work/test-cuda.txt"
fi

SLMOPS_CUDA_EMU_NODEV=1 "$slmops" plugins >"$work/plugins.txt" 2>"$work/plugins.err"
line=$(grep '^backend-cuda-emu ' "$work/plugins.txt")
case $line in
*" disabled "*"no CUDA device ("*")"*) ok "no device: $line" ;;
*) not_ok "no device: backend-cuda-emu is not disabled with 'no CUDA device (...)': $line" ;;
esac
finish
