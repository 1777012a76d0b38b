#!/bin/sh
# Acceptance 6: sdk/template builds out of tree against a DESTDIR install of this
# build with pkg-config only, loads, shows its device and passes slmops-conform.
# sdk-template-v2.sh runs it on sdk/template-v2 through the three variables below.
set -eu
template=${SLM_TEMPLATE:-template}
plugin=${SLM_TEMPLATE_PLUGIN:-template-backend}
family=${SLM_TEMPLATE_FAMILY:-template}

: "${top_builddir:?run from make check}" "${top_srcdir:?run from make check}"
make=${MAKE:-make}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/slmops-template.XXXXXX")
trap 'chmod -R u+w "$tmp" 2>/dev/null; rm -rf "$tmp"' EXIT
stage=$tmp/stage

fail() {
    echo "FAIL: $*" >&2
    exit 1
}

run_logged() {   # run_logged LOG CMD...: keep quiet unless it fails
    log=$1
    shift
    "$@" >"$log" 2>&1 || { cat "$log" >&2; fail "$* (see above)"; }
}

# 1. Install slmops into a staging folder, as a packager would.
run_logged "$tmp/install.log" env -u MAKEFLAGS -u MFLAGS \
    "$make" -C "$top_builddir" install DESTDIR="$stage"
pc=$(find "$stage" -name slmops-plugin.pc | head -n 1)
[ -n "$pc" ] || fail "make install did not install slmops-plugin.pc"

# 2. Build the template from a copy, seeing slmops only through pkg-config.
PKG_CONFIG_PATH=$(dirname "$pc")
PKG_CONFIG_SYSROOT_DIR=$stage
PKG_CONFIG_LIBDIR=$PKG_CONFIG_PATH
export PKG_CONFIG_PATH PKG_CONFIG_SYSROOT_DIR PKG_CONFIG_LIBDIR
cflags=$(pkg-config --cflags slmops-plugin)
case $cflags in
*"$stage"/*) ;;
*) fail "pkg-config --cflags slmops-plugin gives '$cflags', not the staged headers" ;;
esac
case $cflags in
*"$top_srcdir"*) fail "template flags point into the source tree: $cflags" ;;
esac
plugindir=$(pkg-config --variable=plugindir slmops-plugin)
# pkgconf prefixes variables with the sysroot; classic pkg-config does not.
case $plugindir in
"$stage"/*) ;;
*) plugindir=$stage$plugindir ;;
esac

work=$tmp/template
cp -R "$top_srcdir/sdk/$template" "$work"
chmod -R u+w "$work"
manifests=$tmp/manifests
run_logged "$tmp/build.log" env -u MAKEFLAGS -u MFLAGS "$make" -C "$work" \
    CFLAGS="-O2 -Werror" plugindir="$plugindir" manifestdir="$manifests" install
[ -f "$plugindir/$plugin.so" ] || fail "$plugin.so not installed in $plugindir"
[ -f "$manifests/$plugin.json" ] || fail "template manifest not installed"
grep -q "\"library_path\": \"$plugindir/$plugin.so\"" "$manifests/$plugin.json" ||
    fail "manifest does not name the installed library"

# 3. The build tree's tools see it next to the CPU backend.
SLMOPS_PLUGIN_PATH=$manifests:$top_builddir/manifests/uninstalled
export SLMOPS_PLUGIN_PATH
slmops=$top_builddir/slmops
conform=$top_builddir/sdk/conform/slmops-conform

"$slmops" plugins --json >"$tmp/plugins.json" || fail "slmops plugins exited $?"
grep -q "\"name\": \"$plugin\"" "$tmp/plugins.json" || fail "$plugin not listed"
"$slmops" plugins >"$tmp/plugins.txt"
grep -E "^$plugin +backend .*(available|loaded)" "$tmp/plugins.txt" ||
    { cat "$tmp/plugins.txt" >&2; fail "$plugin is not usable"; }

"$slmops" devices >"$tmp/devices.txt" || fail "slmops devices exited $?"
grep -E "^$family:0 +$plugin +accel" "$tmp/devices.txt" ||
    { cat "$tmp/devices.txt" >&2; fail "device $family:0 missing"; }
grep -E '^auto: cpu' "$tmp/devices.txt" >/dev/null || fail "auto no longer picks the CPU"

"$conform" --plugin "$plugin" -v >"$tmp/conform.txt" 2>&1 ||
    { cat "$tmp/conform.txt" >&2; fail "slmops-conform --plugin $plugin failed"; }
tail -n 1 "$tmp/conform.txt"
grep -Eq "^$family:0 \\($plugin\\): [1-9][0-9]* passed, 0 failed" "$tmp/conform.txt" ||
    fail "unexpected conformance summary"

# `slmops selftest` runs the same suite on every device, the template's included.
"$slmops" selftest >"$tmp/selftest.txt" 2>&1 ||
    { cat "$tmp/selftest.txt" >&2; fail "slmops selftest failed"; }
grep -Eq "^$family:0 \\($plugin\\): [1-9][0-9]* passed, 0 failed" "$tmp/selftest.txt" ||
    { cat "$tmp/selftest.txt" >&2; fail "selftest did not test $family:0"; }

# 4. The suite is not vacuous: the same plugin with SCALE off by 0.1% must fail.
broken=$tmp/broken
cp -R "$top_srcdir/sdk/$template" "$broken"
chmod -R u+w "$broken"
sed -e 's|r = x \* n->fp\[0\];|r = x * n->fp[0] * 1.001f;|' "$work/$plugin.c" \
    >"$broken/$plugin.c"
! cmp -s "$work/$plugin.c" "$broken/$plugin.c" || fail "could not break the copy"
run_logged "$tmp/broken.log" env -u MAKEFLAGS -u MFLAGS "$make" -C "$broken" all
if SLMOPS_PLUGIN_PATH=$broken:$top_builddir/manifests/uninstalled \
    "$conform" --plugin "$plugin" >"$tmp/broken.txt" 2>&1; then
    cat "$tmp/broken.txt" >&2
    fail "slmops-conform passed a plugin whose scale is wrong"
fi
grep -Eq '^FAIL +forward +scale ' "$tmp/broken.txt" || fail "the scale failure is not reported"
echo "PASS: template built against the staged install, listed, device shown, conformant"
