#!/bin/sh
# libslmops exports exactly the symbols listed in core/libslmops.sym, and that list
# holds every function the installed public headers declare.
set -u
: "${top_srcdir:?run through make check}" "${top_builddir:?run through make check}"

python=${PYTHON3:-python3}
[ "$python" = : ] && python=python3   # configure found none: try PATH
sym="$top_srcdir/core/libslmops.sym"
lib=""
for f in "$top_builddir"/.libs/libslmops.so.*.*.*; do
    [ -f "$f" ] && lib=$f
done
if [ -z "$lib" ]; then
    echo "FAIL: no $top_builddir/.libs/libslmops.so.X.Y.Z (is the library built?)"
    exit 1
fi
command -v nm > /dev/null || { echo "FAIL: nm not found (Debian: binutils)"; exit 1; }

tmp=$(mktemp -d) || exit 99
trap 'rm -rf "$tmp"' EXIT

# Data symbols (D/B/R) count as well as functions: anything exported is ABI.
nm -D --defined-only "$lib" | awk 'NF == 3 && $2 ~ /^[TDBRVWiu]$/ { print $3 }' \
    | sed 's/@.*//' | sort -u > "$tmp/exported"
grep -v '^[[:space:]]*\(#\|$\)' "$sym" | sort -u > "$tmp/listed"
"$python" "$top_srcdir/tests/packaging/public-functions.py" \
    "$top_srcdir"/core/include/slmops/*.h "$top_srcdir"/core/include/slmops/version.h.in \
    | sort -u > "$tmp/declared"

fail=0
report() {
    # $1: what the lines mean, $2: file of names
    if [ -s "$2" ]; then
        echo "FAIL: $1:"
        sed 's/^/    /' "$2"
        fail=1
    fi
}
comm -23 "$tmp/exported" "$tmp/listed" > "$tmp/d1"
report "exported by $(basename "$lib") but not listed in core/libslmops.sym" "$tmp/d1"
comm -13 "$tmp/exported" "$tmp/listed" > "$tmp/d2"
report "listed in core/libslmops.sym but not exported" "$tmp/d2"
comm -23 "$tmp/declared" "$tmp/listed" > "$tmp/d3"
report "declared in core/include/slmops/*.h but not in core/libslmops.sym" "$tmp/d3"
grep -v '^slm_' "$tmp/listed" > "$tmp/d4"
report "listed symbols outside the slm_ namespace" "$tmp/d4"

[ $fail = 0 ] && echo "ok: $(wc -l < "$tmp/listed") symbols exported, as listed and declared"
exit $fail
