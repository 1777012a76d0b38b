#!/bin/sh
# Acceptance of crash-isolated first loads (issue 7 item 6): a plugin library that
# crashes, exits or hangs while loading, and one replaced after its verdict was
# cached. Each time `slmops plugins` exits 0 naming the reason, and every other
# plugin still works: `slmops generate` on a real model prints text.
. "${top_srcdir:?run through make check}/tests/cli/lib.sh"
need gguf/stories260K.gguf
libs="$top_builddir/tests/registry/.libs"
model="$fx/gguf/stories260K.gguf"

manifest() { # NAME LIBRARY
    cat <<JSON
{
  "file_format_version": "1.0.0",
  "name": "$1",
  "kind": "backend",
  "version": "1.0.0",
  "abi_version": 1,
  "library_path": "$2",
  "description": "plugin isolation test plugin",
  "provides": {"backend": "fake", "device_types": ["cpu"], "ops": {"add": ["f32"]}}
}
JSON
}

# use CASE: plugins from $work/CASE first, then the build tree's; a fresh cache.
use() {
    mkdir -p "$work/$1"
    SLMOPS_PLUGIN_PATH="$work/$1:$top_builddir/manifests/uninstalled"
    XDG_CACHE_HOME="$work/cache-$1"
    export SLMOPS_PLUGIN_PATH XDG_CACHE_HOME
}

# expect_plugins CASE NAME REASON: `slmops plugins` exits 0 and shows NAME disabled
# with REASON, the table and JSON agree, and the in-tree plugins load.
expect_plugins() {
    "$slmops" plugins >"$work/$1.out" 2>"$work/$1.err"; rc=$?
    "$slmops" plugins --json >"$work/$1.json" 2>/dev/null; rc_json=$?
    if [ "$rc" -ne 0 ] || [ "$rc_json" -ne 0 ]; then
        not_ok "$1: slmops plugins exited $rc / $rc_json"; sed 's/^/    /' "$work/$1.err"; return
    fi
    row=$(grep -E "^$2 +backend .* disabled " "$work/$1.out")
    if ! printf '%s\n' "$row" | grep -F -- "$3" >/dev/null; then
        not_ok "$1: $2 not disabled with '$3':"; sed 's/^/    /' "$work/$1.out"; return
    fi
    grep -F "$3" "$work/$1.json" >/dev/null || { not_ok "$1: reason not in --json"; return; }
    grep -F "$3" "$work/$1.err" | grep -F "$work/$1/" >/dev/null ||
        { not_ok "$1: the warning does not name the manifest"; sed 's/^/    /' "$work/$1.err"; return; }
    grep -E '^format-gguf +format .* loaded' "$work/$1.out" >/dev/null ||
        { not_ok "$1: format-gguf not loaded"; return; }
    ok "$1: plugins names '$3'"
}

# expect_generate CASE: the other plugins still run a model.
expect_generate() {
    "$slmops" generate -m "$model" -p "Once upon a time" -n 12 --temp 0 \
        >"$work/$1.gen" 2>"$work/$1.gen.err"; rc=$?
    if [ "$rc" -eq 0 ] && [ "$(wc -w <"$work/$1.gen")" -ge 3 ]; then
        ok "$1: generate prints text"
    else
        not_ok "$1: generate exited $rc with $(wc -c <"$work/$1.gen") bytes:"
        sed 's/^/    /' "$work/$1.gen.err"
    fi
}

use crash
manifest fake-broken "$libs/fake-ctor-crash.so" >"$work/crash/broken.json"
expect_plugins crash fake-broken 'library crashed while loading (SIGSEGV)'
expect_generate crash
expect_plugins crash fake-broken 'library crashed while loading (SIGSEGV)'   # cached

use exit
manifest fake-broken "$libs/fake-ctor-exit.so" >"$work/exit/broken.json"
expect_plugins exit fake-broken 'library exited while loading'
expect_generate exit

# The only case that waits out the timeout; later runs take the cached verdict.
use hang
manifest fake-broken "$libs/fake-ctor-hang.so" >"$work/hang/broken.json"
expect_plugins hang fake-broken 'library did not answer in 5 s'
start=$(date +%s)
expect_generate hang
expect_plugins hang fake-broken 'library did not answer in 5 s'
took=$(($(date +%s) - start))
if [ "$took" -lt 4 ]; then ok "hang: the verdict is cached ($took s)"; else not_ok "hang: later runs took $took s"; fi

# A library replaced after its verdict was cached is judged again, both ways.
use replaced
cp "$libs/fake-good.so" "$work/replaced/fake.so"
manifest fake-good "$work/replaced/fake.so" >"$work/replaced/good.json"
"$slmops" plugins >"$work/replaced.before" 2>&1
if grep -E '^fake-good +backend .* loaded' "$work/replaced.before" >/dev/null; then
    ok "replaced: the good library loads and its verdict is cached"
else
    not_ok "replaced: the good library did not load"; sed 's/^/    /' "$work/replaced.before"
fi
cp "$libs/fake-ctor-crash.so" "$work/replaced/fake.so.new" && mv "$work/replaced/fake.so.new" "$work/replaced/fake.so"
expect_plugins replaced fake-good 'library crashed while loading (SIGSEGV)'
expect_generate replaced
cp "$libs/fake-good.so" "$work/replaced/fake.so.new" && mv "$work/replaced/fake.so.new" "$work/replaced/fake.so"
"$slmops" plugins >"$work/replaced.after" 2>&1
if grep -E '^fake-good +backend .* loaded' "$work/replaced.after" >/dev/null; then
    ok "replaced: the good library loads again once restored"
else
    not_ok "replaced: a stale verdict kept the restored library disabled"
    sed 's/^/    /' "$work/replaced.after"
fi
finish
