#!/bin/sh
# Every manifest slmops ships (build-tree, installed-form, SDK template) must match
# docs/manifest.schema.json, and deliberately broken manifests must not.
set -u
: "${top_srcdir:?run through make check}" "${top_builddir:?run through make check}"

python=${PYTHON3:-python3}
[ "$python" = : ] && python=python3   # configure found none: try PATH
if ! "$python" -c 'import jsonschema' 2>/dev/null; then
    # Not a skip: the README's first command installs it (tests/requirements.txt).
    echo "FAIL: '$python' cannot import jsonschema (the README's first command installs it)"
    exit 1
fi

tmp=$(mktemp -d) || exit 99
trap 'rm -rf "$tmp"' EXIT

# The uninstalled manifests must exist: a build without them would pass vacuously.
set -- "$top_builddir"/manifests/uninstalled/*.json
if [ ! -e "$1" ]; then
    echo "FAIL: no manifests in $top_builddir/manifests/uninstalled"
    exit 1
fi
uninstalled="$*"
installed=""
for m in "$top_builddir"/manifests/*.json; do
    [ -e "$m" ] && installed="$installed $m"
done
if [ -z "$installed" ]; then
    echo "FAIL: no installed-form manifests in $top_builddir/manifests"
    exit 1
fi

# Manifest sources (every in-tree one, also those this configuration does not
# build) and the SDK template's: fill placeholders the way their builds do, so that
# only the structure is judged.
sources=""
for m in "$top_srcdir"/manifests/*.json.in "$top_srcdir"/sdk/template/*.json \
         "$top_srcdir"/sdk/template/*.json.in "$top_srcdir"/sdk/template/*/*.json.in; do
    [ -e "$m" ] || continue
    out="$tmp/$(basename "$(dirname "$m")")-$(basename "$m" .in)"
    sed -e 's|@[A-Za-z_]*[Dd][Ii][Rr]@|/usr/lib/slmops/plugins|g' \
        -e 's|@[A-Za-z_]*VERSION@|0.0.0|g' -e 's|@[A-Za-z_]*@|x|g' "$m" > "$out"
    sources="$sources $out"
done

fail=0
# shellcheck disable=SC2086 # the lists are space-separated paths without spaces
"$python" "$top_srcdir/tests/packaging/validate-manifests.py" \
    --schema "$top_srcdir/docs/manifest.schema.json" \
    --ops-source "$top_srcdir/core/util/ops.c" \
    --valid $uninstalled $installed $sources "$top_srcdir"/tests/packaging/manifests/valid/*.json \
    --invalid "$top_srcdir"/tests/packaging/manifests/invalid/*.json || fail=1

# What the schema cannot know: where each form's library_path must point.
for m in $uninstalled; do
    lib=$("$python" -c 'import json,sys; print(json.load(open(sys.argv[1]))["library_path"])' "$m")
    case $lib in
        /*) [ -f "$lib" ] || { echo "FAIL $m: library_path $lib does not exist"; fail=1; } ;;
        *) [ -f "$(dirname "$m")/$lib" ] || { echo "FAIL $m: library_path $lib not found beside it"; fail=1; } ;;
    esac
done
for m in $installed; do
    lib=$("$python" -c 'import json,sys; print(json.load(open(sys.argv[1]))["library_path"])' "$m")
    case $lib in
        /*) echo "FAIL $m: installed library_path '$lib' is absolute: an install moved to another root would not load"; fail=1 ;;
        */plugins/*.so) ;;
        *) echo "FAIL $m: installed library_path '$lib' is not a relative .../plugins/NAME.so"; fail=1 ;;
    esac
done
exit $fail
