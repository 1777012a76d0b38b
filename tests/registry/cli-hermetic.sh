#!/bin/sh
# Item 22: make check sees only the build tree's plugins. Plugins installed for the
# user or the system (here: a copy of an uninstalled manifest under a different
# name, in XDG_DATA_HOME and XDG_DATA_DIRS) must not show up, whatever HOME holds.
. "${top_srcdir:?run through make check}/tests/cli/lib.sh"
: "${SLMOPS_PLUGIN_PATH:?run through make check}"

for d in home/slmops/plugins dirs/slmops/plugins; do
    mkdir -p "$work/$d" || exit 99
    sed 's/"name": "quantizer-q8_0"/"name": "quantizer-installed"/' \
        "$top_builddir/manifests/uninstalled/quantizer-q8_0.json" >"$work/$d/installed.json"
done
XDG_DATA_HOME="$work/home" XDG_DATA_DIRS="$work/dirs" "$slmops" plugins --json >"$work/p.json" 2>"$work/err"
rc=$?
[ "$rc" -eq 0 ] && ok "plugins exits 0" || not_ok "plugins exited $rc"
path=$(sed -n 's/^  "search_path": "\(.*\)",$/\1/p' "$work/p.json")
if [ "$path" = "$SLMOPS_PLUGIN_PATH" ]; then
    ok "the search path is SLMOPS_PLUGIN_PATH alone"
else
    not_ok "the search path is '$path', not '$SLMOPS_PLUGIN_PATH'"
fi
if grep -F quantizer-installed "$work/p.json" >/dev/null; then
    not_ok "a plugin installed outside the build tree is listed"
else
    ok "installed plugins stay out of sight"
fi
finish
