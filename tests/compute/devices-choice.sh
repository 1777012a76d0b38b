#!/bin/sh
# Device choice: with the CPU and the two-device test backend testbe2 (a discrete
# GPU by score, and a CPU-emulated one), `slmops devices` lists both testbe2 devices
# separately, auto picks the discrete one and says why, ranking the CPU above the
# emulated device; --device and SLMOPS_DEVICE force one; a missing index fails.
set -eu
: "${top_builddir:?run from make check}"
lib=$top_builddir/tests/compute/.libs/testbe2.so
[ -f "$lib" ] || { echo "SKIP: $lib not built (make check builds it)" >&2; exit 77; }
tmp=$(mktemp -d "${TMPDIR:-/tmp}/slmops-devices.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
fail() {
    echo "FAIL: $*" >&2
    exit 1
}
cat >"$tmp/testbe2.json" <<JSON
{"file_format_version": "1.0.0", "name": "testbe2", "kind": "backend", "version": "0.1.0",
 "abi_version": 1, "library_path": "$lib", "description": "version-2 test backend",
 "provides": {"backend": "testbe2", "device_types": ["dgpu", "igpu"],
   "ops": {"add": ["f32"], "scale": ["f32"]}, "training": false}}
JSON
SLMOPS_PLUGIN_PATH=$tmp:$top_builddir/manifests/uninstalled
export SLMOPS_PLUGIN_PATH
unset SLMOPS_DEVICE || true
slmops=$top_builddir/slmops

field() {   # field FILE EXPR: a Python expression over the JSON document d
    python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$1" "$2"
}

"$slmops" devices --json >"$tmp/auto.json" || fail "slmops devices --json exited $?"
[ "$(field "$tmp/auto.json" '",".join(x["id"] for x in d["devices"] if x["plugin"]=="testbe2")')" = \
  "testbe2:0,testbe2:1" ] || { cat "$tmp/auto.json" >&2; fail "testbe2's two devices are not listed separately"; }
[ "$(field "$tmp/auto.json" 'd["auto"]')" = testbe2:0 ] || fail "auto does not pick the discrete device"
[ "$(field "$tmp/auto.json" 'd["chosen"]')" = testbe2:0 ] || fail "chosen is not auto's pick"
why=$(field "$tmp/auto.json" 'd["why"]')
case $why in
# (other plugins the build made, e.g. vulkan on lavapipe, may add emulated devices)
"auto: the highest score (100, dgpu) of "[3-9]" device(s); then cpu:0 10, testbe2:1 5 (CPU-emulated"*) ;;
*) fail "auto's reason does not rank discrete > CPU > emulated: $why" ;;
esac

"$slmops" devices --device testbe2:1 --json >"$tmp/forced.json" || fail "--device testbe2:1 exited $?"
[ "$(field "$tmp/forced.json" 'd["chosen"]')" = testbe2:1 ] || fail "--device testbe2:1 not chosen"
[ "$(field "$tmp/forced.json" 'd["auto"]')" = testbe2:0 ] || fail "auto changed under --device"
field "$tmp/forced.json" 'd["why"]' | grep -q 'named by the device spec "testbe2:1"' ||
    fail "--device reason missing"

SLMOPS_DEVICE=testbe2:1 "$slmops" devices >"$tmp/env.txt" || fail "SLMOPS_DEVICE run exited $?"
grep -q '^chosen: testbe2:1$' "$tmp/env.txt" || { cat "$tmp/env.txt" >&2; fail "SLMOPS_DEVICE not chosen"; }
grep -q 'why: named by SLMOPS_DEVICE "testbe2:1"' "$tmp/env.txt" || fail "SLMOPS_DEVICE reason missing"

rc=0
"$slmops" devices --device testbe2:2 >/dev/null 2>"$tmp/err.txt" || rc=$?
[ "$rc" = 1 ] || fail "--device testbe2:2 exited $rc, expected 1"
grep -q '^slmops devices: --device testbe2:2: no device testbe2:2: testbe2 has 2 device(s)$' \
    "$tmp/err.txt" || { cat "$tmp/err.txt" >&2; fail "unexpected message for a missing index"; }
echo "PASS: devices listed separately, auto explained, --device and SLMOPS_DEVICE force one"
