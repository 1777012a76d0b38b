#!/bin/sh
# debian/ builds the split issue 11 asks for: `dpkg-buildpackage -us -uc -b` on a
# clean source tree (`make distdir`) makes the library package (core, CPU backend,
# format, quantizer and trainer plugins), the CLI, -dev (headers, .pc files, SDK
# template, slmops-conform), one package per GPU backend holding only its .so and
# manifest, and one per communication plugin (slmops-comm-mpi). The CLI, unpacked
# with the library into a fresh root, runs there, and a backend package adds or
# removes exactly that backend.
set -u
: "${top_srcdir:?run through make check}" "${top_builddir:?run through make check}"
for t in dpkg-buildpackage dpkg-deb dpkg-architecture dh; do
    command -v "$t" > /dev/null 2>&1 && continue
    echo "SKIP: $t not found (apt-get install dpkg-dev debhelper)"
    exit 77
done
tmp=$(mktemp -d) || exit 99
trap 'chmod -R u+w "$tmp"; rm -rf "$tmp"' EXIT
ma=$(dpkg-architecture -qDEB_HOST_MULTIARCH) || exit 99
fail=0
bad() { echo "FAIL: $*"; fail=1; }

# A clean tree: what `make dist` ships, so debian/ must be in it.
if ! ${MAKE:-make} -s -C "$top_builddir" distdir distdir="$tmp/slmops" > "$tmp/distdir.log" 2>&1; then
    cat "$tmp/distdir.log"; echo "FAIL: make distdir"; exit 1
fi
[ -f "$tmp/slmops/debian/control" ] || { echo "FAIL: debian/ is not in the distribution"; exit 1; }
jobs=$(nproc 2>/dev/null || echo 2)
if ! (cd "$tmp/slmops" && DEB_BUILD_OPTIONS="nocheck parallel=$jobs" \
        dpkg-buildpackage -us -uc -b > "$tmp/build.log" 2>&1); then
    tail -40 "$tmp/build.log"; echo "FAIL: dpkg-buildpackage -us -uc -b"; exit 1
fi

# What each package must hold (paths without the leading ./; docs aside).
# The packages' layout (paths inside a package, relative to the root it is unpacked in).
lib="usr/lib/$ma"
manifests="usr/share/slmops/plugins"
owner() {   # package a path belongs in, or "" if none may hold it
    case $1 in
        usr/share/doc/*) echo any ;;
        usr/lib/debug/*) echo dbgsym ;;
        "$lib"/libslmops.so.*) echo libslmops0 ;;
        "$lib"/libslmops.so | "$lib"/pkgconfig/slmops.pc | "$lib"/pkgconfig/slmops-plugin.pc \
        | usr/include/slmops/*.h | usr/bin/slmops-conform | usr/share/man/man1/slmops-conform.1.gz \
        | usr/share/slmops/sdk/*) echo libslmops-dev ;;
        usr/bin/slmops | usr/share/man/man1/slmops.1.gz | usr/share/slmops/recipe.schema.json) echo slmops ;;
        usr/share/slmops/manifest.schema.json | usr/share/slmops/plugins/*.mixes) echo libslmops0 ;;
        "$lib"/slmops/comm/*.so | usr/share/slmops/plugins/comm/*.json)
            p=$(basename "$1"); p=${p%.so}; echo "slmops-${p%.json}" ;;
        "$lib"/slmops/plugins/*.so | usr/share/slmops/plugins/*.json)
            p=$(basename "$1"); p=${p%.so}; p=${p%.json}
            case $p in
                cpu-* | format-* | quantizer-* | trainer-*) echo libslmops0 ;;
                *) echo "slmops-backend-${p#backend-}" ;;
            esac ;;
        *) echo "" ;;
    esac
}
debs=$(ls "$tmp"/*.deb 2>/dev/null)
for want in libslmops0 slmops libslmops-dev; do
    ls "$tmp/${want}_"*.deb > /dev/null 2>&1 || bad "no ${want} package was built"
done
seen="$tmp/seen"; : > "$seen"
for deb in $debs; do
    pkg=$(dpkg-deb -f "$deb" Package)
    dpkg-deb -c "$deb" | awk '$1 !~ /^d/ {print $6}' | sed 's|^\./||' > "$tmp/$pkg.list"
    echo "$pkg: $(wc -l < "$tmp/$pkg.list") files"
    while read -r f; do
        o=$(owner "$f")
        case $o in
            any) continue ;;
            dbgsym) case $pkg in *-dbgsym) continue ;; esac ;;
        esac
        [ "$o" = "$pkg" ] || bad "$pkg holds $f (belongs in: ${o:-no package})"
        echo "$f" >> "$seen"
    done < "$tmp/$pkg.list"
done
dups=$(sort "$seen" | uniq -d)
[ -z "$dups" ] || bad "in two packages: $dups"
grep -qx "$lib/slmops/plugins/cpu-x86-64.so" "$seen" || bad "the CPU backend is in no package"
grep -qx "usr/bin/slmops" "$seen" || bad "the CLI is in no package"

# The library and the CLI unpacked into a fresh root run there (their manifests
# name plugins relative to themselves); each backend package adds just itself.
unpack() {   # root, packages...
    r=$1; shift
    for p in "$@"; do dpkg-deb -x "$tmp/${p}_"*.deb "$r" || bad "cannot unpack $p"; done
}
python=${PYTHON3:-python3}
[ "$python" = : ] && python=python3
# slmops as unpacked under ROOT: its library and manifests, not the system's.
slmops_in() {   # ROOT ARGS...
    r=$1; shift
    LD_LIBRARY_PATH="$r/$lib" SLMOPS_PLUGIN_PATH="$r/$manifests" "$r/usr/bin/slmops" "$@"
}
plugins_in() {   # root -> names of the plugins that load there, one a line
    slmops_in "$1" plugins --json 2> "$tmp/plugins.err" | "$python" -c '
import json, sys
for p in json.load(sys.stdin)["plugins"]:
    if p["state"] not in ("disabled", "shadowed", "unknown"):
        print(p["name"])' | sort
}
unpack "$tmp/root" libslmops0 slmops
if ! slmops_in "$tmp/root" devices > "$tmp/devices.out" 2>&1; then
    cat "$tmp/devices.out"; bad "slmops devices fails in a root of libslmops0 + slmops"
elif ! grep -q "cpu" "$tmp/devices.out"; then
    cat "$tmp/devices.out"; bad "slmops devices lists no CPU device in a fresh root"
fi
plugins_in "$tmp/root" > "$tmp/base.list"
[ -s "$tmp/base.list" ] || { cat "$tmp/plugins.err"; bad "no plugin loads in a root of libslmops0 + slmops"; }
for deb in $debs; do
    pkg=$(dpkg-deb -f "$deb" Package)
    case $pkg in slmops-backend-*-dbgsym) continue ;; slmops-backend-*) ;; *) continue ;; esac
    cp -a "$tmp/root" "$tmp/root-$pkg"
    unpack "$tmp/root-$pkg" "$pkg"
    plugins_in "$tmp/root-$pkg" > "$tmp/with.list"
    added=$(comm -13 "$tmp/base.list" "$tmp/with.list" | tr '\n' ' ')
    lost=$(comm -23 "$tmp/base.list" "$tmp/with.list" | tr '\n' ' ')
    [ -n "$added" ] || bad "installing $pkg adds no plugin"
    [ -z "$lost" ] || bad "installing $pkg removes plugins: $lost"
    echo "$pkg adds: $added"
    # A backend package's devices appear in the root it was unpacked into (this
    # machine has lavapipe and PoCL, which the README's first command installs).
    case $pkg in
        slmops-backend-vulkan) dev=vulkan:0 driver=mesa-vulkan-drivers ;;
        slmops-backend-opencl) dev=opencl:0 driver=pocl-opencl-icd ;;
        *) dev= ;;
    esac
    if [ -n "$dev" ]; then
        slmops_in "$tmp/root-$pkg" devices > "$tmp/devices-$pkg.out" 2>&1
        grep -q "$dev" "$tmp/devices-$pkg.out" || {
            cat "$tmp/devices-$pkg.out"
            bad "slmops devices in a root of libslmops0 + slmops + $pkg lists no $dev (is $driver installed?)"
        }
    fi
done

[ $fail = 0 ] && echo "ok: $(echo "$debs" | wc -w) packages, split as debian/control says"
exit $fail
