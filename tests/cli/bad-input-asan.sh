#!/bin/sh
# Issue 7, acceptance 1: the bad-input table again, against slmops and its plugins built
# with AddressSanitizer and UndefinedBehaviorSanitizer: any report fails a case (it
# adds lines to stderr, and the sanitizers' exit status differs). The sanitized copy
# of the tree is kept in tests/cli/asan-build and rebuilt only where sources changed.
. "$(dirname "$0")/lib.sh"
need gguf/stories260K.gguf
tree=$top_builddir/tests/cli/asan-build
san="-fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer"

# A fresh copy of the distributed sources; files newer than the kept copy replace it.
rm -rf "$tree.new"
make -s -C "$top_builddir" distdir distdir="$tree.new" >"$work/distdir.log" 2>&1 ||
    { echo "FAIL: make distdir"; tail -n 20 "$work/distdir.log"; exit 1; }
mkdir -p "$tree"
cp -pRu "$tree.new/." "$tree/" && rm -rf "$tree.new" || exit 99
if [ ! -f "$tree/config.status" ]; then
    (cd "$tree" && ./configure -q CFLAGS="-O1 -g $san" LDFLAGS="$san" \
        --enable-vulkan=no --enable-opencl=no --enable-cuda=no \
        SLMOPS_FIXTURES="$SLMOPS_FIXTURES") >"$work/configure.log" 2>&1 ||
        { echo "FAIL: configure with sanitizers"; tail -n 20 "$work/configure.log"; exit 1; }
fi
make -s -C "$tree" -j2 cli-deps >"$work/build.log" 2>&1 ||
    { echo "FAIL: the sanitized build"; tail -n 30 "$work/build.log"; exit 1; }

SLMOPS_UNDER_TEST=$tree/slmops SLMOPS_UNDER_TEST_PLUGINS=$tree/manifests/uninstalled \
    ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 UBSAN_OPTIONS=print_stacktrace=1 \
    BAD_INPUT_TIMEOUT=60 exec sh "$(dirname "$0")/bad-input.sh"
