#!/bin/sh
# Acceptance: `slmops plugins [--json]` with one valid and one broken manifest in
# SLMOPS_PLUGIN_PATH, for each way a plugin can be broken: exit 0, the broken
# file and its reason reported, the valid plugin listed and usable.
set -u
: "${top_builddir:?run through make check}"
slmops="$top_builddir/slmops"
libs="$top_builddir/tests/registry/.libs"
work=$(mktemp -d "${TMPDIR:-/tmp}/slmops-cli-XXXXXX") || exit 99
trap 'rm -rf "$work"' EXIT
failures=0

manifest() { # NAME LIBRARY [FILE_FORMAT_VERSION] [ABI]
    cat <<JSON
{
  "file_format_version": "${3:-1.0.0}",
  "name": "$1",
  "kind": "backend",
  "version": "1.0.0",
  "abi_version": ${4:-1},
  "library_path": "$2",
  "description": "registry CLI test plugin",
  "provides": {"backend": "$1", "device_types": ["cpu"], "ops": {}}
}
JSON
}

# A hang (a FIFO read as a manifest) fails the case instead of the whole run.
run() {
    if command -v timeout >/dev/null; then timeout 60 "$slmops" "$@"; else "$slmops" "$@"; fi
}

# check CASE REASON: $work/CASE holds good.json and broken.json.
check() {
    dir="$work/$1"
    run plugins >"$dir.out" 2>&1; rc=$?
    run plugins --json >"$dir.json" 2>"$dir.err"; rc_json=$?
    ok=yes
    [ "$rc" -eq 0 ] && [ "$rc_json" -eq 0 ] || { echo "$1: exit $rc / $rc_json"; ok=no; }
    grep -F "$dir/broken.json" "$dir.out" >/dev/null || { echo "$1: broken file not named"; ok=no; }
    grep -F -- "$2" "$dir.out" >/dev/null || { echo "$1: reason '$2' not shown"; ok=no; }
    escaped=$(printf '%s' "$2" | sed 's/"/\\"/g')
    grep -F -- "$escaped" "$dir.json" >/dev/null || { echo "$1: reason '$escaped' not in JSON"; ok=no; }
    states=$(awk -F'"' '/"name":/ {n=$4} /"state":/ {print n "=" $4}' "$dir.json")
    echo "$states" | grep -E '^fake-good=(available|loaded)$' >/dev/null ||
        { echo "$1: fake-good not usable: $states"; ok=no; }
    echo "$states" | grep -E '=disabled$' >/dev/null || { echo "$1: nothing disabled"; ok=no; }
    grep -E '^fake-good +backend .* loaded' "$dir.out" >/dev/null ||
        { echo "$1: fake-good not loaded in the table"; ok=no; }
    if [ "$ok" = yes ]; then echo "ok - $1"; else failures=$((failures + 1)); cat "$dir.out"; fi
}

case_dir() {
    mkdir "$work/$1" && manifest fake-good "$libs/fake-good.so" >"$work/$1/good.json"
    SLMOPS_PLUGIN_PATH="$work/$1"; export SLMOPS_PLUGIN_PATH
}

case_dir not-json;       echo '{ "name": ' >"$work/not-json/broken.json"
check not-json "not valid JSON at line"
case_dir missing-field;  manifest fake-broken "$libs/fake-good.so" | grep -v '"description"' >"$work/missing-field/broken.json"
check missing-field 'missing required field "description"'
case_dir wrong-type;     manifest fake-broken "$libs/fake-good.so" 1.0.0 '"one"' >"$work/wrong-type/broken.json"
check wrong-type 'field "abi_version" has the wrong type'
case_dir unknown-major;  manifest fake-broken "$libs/fake-good.so" 2.0.0 >"$work/unknown-major/broken.json"
check unknown-major "unsupported file_format_version 2.0.0"
case_dir duplicate-key;  printf '{"name": "a", "name": "b"}\n' >"$work/duplicate-key/broken.json"
check duplicate-key "duplicate object key"
case_dir missing-library; manifest fake-broken "$libs/no-such-plugin.so" >"$work/missing-library/broken.json"
check missing-library "No such file or directory"
case_dir missing-entry;  manifest fake-broken "$libs/fake-noentry.so" >"$work/missing-entry/broken.json"
check missing-entry "has no slm_plugin_entry symbol"
case_dir abi-old;        manifest fake-broken "$libs/fake-abi0.so" >"$work/abi-old/broken.json"
check abi-old "speaks ABI version 0"
case_dir abi-new;        manifest fake-broken "$libs/fake-abi99.so" >"$work/abi-new/broken.json"
check abi-new "speaks ABI version 99"
case_dir wrong-name;     manifest fake-wrongname "$libs/fake-wrongname.so" >"$work/wrong-name/broken.json"
check wrong-name "descriptor name"
case_dir wrong-kind;     manifest fake-wrongkind "$libs/fake-wrongkind.so" >"$work/wrong-kind/broken.json"
check wrong-kind "descriptor kind quantizer"
case_dir wrong-version;  manifest fake-wrongversion "$libs/fake-wrongversion.so" >"$work/wrong-version/broken.json"
check wrong-version 'descriptor version "9.9.9"'
case_dir null-iface;     manifest fake-nulliface "$libs/fake-nulliface.so" >"$work/null-iface/broken.json"
check null-iface "descriptor has a NULL interface"
# Item 5: a named pipe called *.json must not block every verb.
case_dir fifo;           mkfifo "$work/fifo/broken.json"
check fifo "is a FIFO, not a regular file"
case_dir folder;         mkdir "$work/folder/broken.json"
check folder "is a directory, not a regular file"
case_dir fifo-library;   mkfifo "$work/fifo-library/lib.so"; manifest fake-broken "$work/fifo-library/lib.so" >"$work/fifo-library/broken.json"
check fifo-library "lib.so is a FIFO, not a regular file"

# Bad usage is an error with a message, unlike broken plugins.
if "$slmops" plugins --bogus >/dev/null 2>"$work/usage.err"; then
    echo "not ok - bad usage exited 0"; failures=$((failures + 1))
elif ! grep -F -- "--bogus" "$work/usage.err" >/dev/null; then
    echo "not ok - bad usage message lacks the argument"; failures=$((failures + 1))
else
    echo "ok - bad usage"
fi
[ "$failures" -eq 0 ]
