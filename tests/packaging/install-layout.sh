#!/bin/sh
# `make install DESTDIR=...` lays slmops out as distro packages expect: versioned
# library, plugins and manifests in their folders, headers, .pc files, man pages.
set -u
: "${top_srcdir:?run through make check}" "${top_builddir:?run through make check}"
: "${slm_libdir:?}" "${slm_bindir:?}" "${slm_includedir:?}" "${slm_mandir:?}"
: "${slm_pkglibdir:?}" "${slm_pkgdatadir:?}" "${slm_version:?}"

python=${PYTHON3:-python3}
[ "$python" = : ] && python=python3   # configure found none: try PATH
tmp=$(mktemp -d) || exit 99
trap 'chmod -R u+w "$tmp"; rm -rf "$tmp"' EXIT
D="$tmp/root"

if ! ${MAKE:-make} -s -C "$top_builddir" install DESTDIR="$D" > "$tmp/install.log" 2>&1; then
    cat "$tmp/install.log"
    echo "FAIL: make install DESTDIR=$D"
    exit 1
fi

fail=0
bad() { echo "FAIL: $*"; fail=1; }
need() { [ -e "$D$1" ] || bad "$1 not installed"; }

# Library: real file, soname link, development link; the soname carries the major.
need "$slm_libdir/libslmops.so"
need "$slm_libdir/libslmops.so.0"
soname=$(readelf -d "$D$slm_libdir/libslmops.so.0" 2>/dev/null | sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p')
[ "$soname" = "libslmops.so.0" ] || bad "SONAME of libslmops.so.0 is '$soname', expected libslmops.so.0"

need "$slm_bindir/slmops"
need "$slm_bindir/slmops-conform"
need "$slm_mandir/man1/slmops.1"
need "$slm_mandir/man1/slmops-conform.1"
need "$slm_libdir/pkgconfig/slmops.pc"
need "$slm_libdir/pkgconfig/slmops-plugin.pc"

# Every public and plugin-SDK header, nothing from core/internal.
for h in "$top_srcdir"/core/include/slmops/*.h "$top_srcdir"/sdk/include/slmops/*.h version.h; do
    need "$slm_includedir/slmops/$(basename "$h")"
done
# The umbrella header is the one include an application needs: it names them all.
for h in "$top_srcdir"/core/include/slmops/*.h version.h; do
    b=$(basename "$h")
    [ "$b" = slmops.h ] && continue
    grep -q "^#include <slmops/$b>" "$top_srcdir/core/include/slmops/slmops.h" ||
        bad "slmops/slmops.h does not include slmops/$b"
done
# Internal headers share some public names (device.h, types.h): compare contents.
for h in "$top_srcdir"/core/internal/*.h; do
    i="$D$slm_includedir/slmops/$(basename "$h")"
    [ -e "$i" ] && cmp -s "$h" "$i" && bad "internal header core/internal/$(basename "$h") installed"
done

# Plugins: every manifest this build made is installed; each names a library
# installed where the manifest says, and that is $(pkglibdir)/plugins.
for m in "$top_builddir"/manifests/*.json; do
    [ -e "$m" ] || { bad "no manifests built in $top_builddir/manifests"; break; }
    need "$slm_pkgdatadir/plugins/$(basename "$m")"
done
n=0
for m in "$D$slm_pkgdatadir"/plugins/*.json; do
    [ -e "$m" ] || { bad "no manifests in $slm_pkgdatadir/plugins"; break; }
    n=$((n + 1))
    lib=$("$python" -c 'import json,sys; print(json.load(open(sys.argv[1]))["library_path"])' "$m")
    # Relative to the manifest's folder, so the install still loads when moved.
    case $lib in
        /*) bad "$(basename "$m"): library_path '$lib' is absolute"; continue ;;
    esac
    abs=$(realpath -m "$slm_pkgdatadir/plugins/$lib")
    case $abs in
        "$(realpath -m "$slm_pkglibdir")"/plugins/*.so) [ -f "$D$abs" ] || bad "$(basename "$m"): $lib ($abs) not installed" ;;
        *) bad "$(basename "$m"): library_path '$lib' ($abs) is not in $slm_pkglibdir/plugins" ;;
    esac
done
for so in "$D$slm_pkglibdir"/plugins/*.so; do
    [ -e "$so" ] || continue
    [ -e "$D$slm_pkgdatadir/plugins/$(basename "$so" .so).json" ] \
        || bad "plugin $(basename "$so") has no manifest in $slm_pkgdatadir/plugins"
done

# Nothing installed may point back into the build tree.
if grep -rlF "$top_builddir" "$D$slm_pkgdatadir" "$D$slm_libdir/pkgconfig" > "$tmp/leaks" 2>/dev/null; then
    bad "installed files name the build tree: $(tr '\n' ' ' < "$tmp/leaks")"
fi

# The .pc files describe this install, and a program builds against it with
# pkg-config alone, headers compile on their own, and it runs.
export PKG_CONFIG_PATH="$D$slm_libdir/pkgconfig"
v=$(pkg-config --modversion slmops 2>&1)
[ "$v" = "$slm_version" ] || bad "pkg-config --modversion slmops: '$v', expected $slm_version"
pd=$(pkg-config --variable=plugindir slmops-plugin 2>&1)
[ "$pd" = "$slm_pkglibdir/plugins" ] || bad "slmops-plugin.pc plugindir '$pd', expected $slm_pkglibdir/plugins"
md=$(pkg-config --variable=manifestdir slmops-plugin 2>&1)
[ "$md" = "$slm_pkgdatadir/plugins" ] || bad "slmops-plugin.pc manifestdir '$md', expected $slm_pkgdatadir/plugins"
sc=$(pkg-config --variable=manifest_schema slmops-plugin 2>&1)
[ -f "$D$sc" ] || bad "slmops-plugin.pc manifest_schema '$sc' is not installed"
# From here on, flags point into the DESTDIR as they would into a sysroot.
export PKG_CONFIG_SYSROOT_DIR="$D"

cat > "$tmp/user.c" <<'CEOF'
#include <stdio.h>
#include <string.h>
#include <slmops/slmops.h>
#include <slmops/plugin.h>
#include <slmops/plugin-backend.h>
#include <slmops/plugin-quantizer.h>
#include <slmops/plugin-trainer.h>
#include <slmops/plugin-format.h>
int main(void)
{
    puts(slm_version());
    return strcmp(slm_version(), SLMOPS_VERSION_STRING) != 0;
}
CEOF
# shellcheck disable=SC2046 # pkg-config output is a list of flags
if ! ${CC:-cc} -std=c11 -Wall -Wextra -Werror -o "$tmp/user" "$tmp/user.c" \
        $(pkg-config --cflags --libs slmops) > "$tmp/cc.log" 2>&1; then
    cat "$tmp/cc.log"
    bad "a program using every installed header does not build with pkg-config slmops"
elif ! out=$(LD_LIBRARY_PATH="$D$slm_libdir" "$tmp/user"); then
    bad "the program linked against the installed library printed '$out', expected $slm_version"
fi

# The staged install runs where it lies (as a package unpacked into another root):
# every installed plugin loads through its manifest's relative library_path.
if ! LD_LIBRARY_PATH="$D$slm_libdir" SLMOPS_PLUGIN_PATH="$D$slm_pkgdatadir/plugins" \
        "$D$slm_bindir/slmops" plugins --json > "$tmp/plugins.json" 2> "$tmp/plugins.err"; then
    cat "$tmp/plugins.err"
    bad "the installed slmops plugins failed under DESTDIR"
elif ! "$python" - "$tmp/plugins.json" "$n" <<'PYEOF'
import json, re, sys
rows = json.load(open(sys.argv[1]))
rows = rows.get("plugins", rows) if isinstance(rows, dict) else rows
# a backend disabled because this machine lacks its hardware ("no CUDA device
# (...)", said by its init) has loaded its library: the path resolved
absent = lambda r: r.get("state") == "disabled" and re.match(r"no \w+ device \(", r.get("reason", ""))
broken = [r for r in rows if r.get("state") in ("disabled", "shadowed", "unknown") and not absent(r)]
if len(rows) != int(sys.argv[2]) or broken:
    print("FAIL: installed plugins: %d listed, %s expected; not loadable: %s"
          % (len(rows), sys.argv[2], [(r.get("name"), r.get("state"), r.get("reason")) for r in broken]))
    sys.exit(1)
PYEOF
then
    bad "installed plugins do not load from the staged root"
fi

[ $fail = 0 ] && echo "ok: install layout under DESTDIR ($n manifests)"
exit $fail
