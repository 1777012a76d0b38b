#!/bin/sh
# Messages of model verbs when no format plugin reads a file: a format plugin that
# shadows another is named with both manifests (issue 7 item 15), and a build tree
# without plugins on the search path is told how to get them (item 16).
. "${top_srcdir:?run through make check}/tests/cli/lib.sh"
need gguf/stories260K.gguf
libs="$top_builddir/tests/registry/.libs"
uninstalled="$top_builddir/manifests/uninstalled"
model="$fx/gguf/stories260K.gguf"
XDG_CACHE_HOME="$work/cache"; export XDG_CACHE_HOME
mkdir "$work/stale" || exit 99

# Item 15: a stale format-gguf ahead of the real one is named with both manifests.
sed "s|\"library_path\": \"[^\"]*\"|\"library_path\": \"$libs/fake-abi0.so\"|" \
    "$uninstalled/format-gguf.json" >"$work/stale/format-gguf.json"
SLMOPS_PLUGIN_PATH="$work/stale:$uninstalled"; export SLMOPS_PLUGIN_PATH
expect_fail "a disabled shadowing reader is named with what it shadows" 1 \
    "format-gguf \\($work/stale/format-gguf.json, which shadows $uninstalled/format-gguf.json\\) is disabled: plugin speaks ABI version 0" \
    "$slmops" info "$model"
cp "$uninstalled/format-gguf.json" "$work/stale/format-gguf.json"
head -c 300 "$model" >"$work/cut.gguf"
expect_fail "a failed read names the shadowing reader" 1 \
    "\\(format plugin format-gguf \\($work/stale/format-gguf.json, which shadows $uninstalled/format-gguf.json\\)\\)" \
    "$slmops" info "$work/cut.gguf"

# Item 16: a build tree without SLMOPS_PLUGIN_PATH says how to get plugins.
expect_fail "no plugins at all: the hint" 1 \
    "no format plugin that reads files is available \\(search path: empty\\); run 'make install', or set SLMOPS_PLUGIN_PATH=<build>/manifests/uninstalled" \
    env -u SLMOPS_PLUGIN_PATH SLMOPS_PLUGIN_PATH_ONLY=1 "$slmops" info "$model"
finish
