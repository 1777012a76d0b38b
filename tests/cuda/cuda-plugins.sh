#!/bin/sh
# The CUDA backend on this machine. Without a CUDA device (no GPU, or no driver):
# `slmops plugins` lists backend-cuda as disabled with "no CUDA device (<the CUDA
# runtime's reason>)" and prints no warning, `slmops devices` lists no cuda device,
# and --device cuda:0 fails naming the backend. With a device: slmops-conform --plugin backend-cuda must pass, then
# the script exits 77 saying that the no-device checks were not run.
. "$(dirname "$0")/../cli/lib.sh"

"$slmops" plugins >"$work/plugins.txt" 2>"$work/plugins.err" ||
    { echo "FAIL: slmops plugins exited $?"; cat "$work/plugins.err"; exit 1; }
grep -q '^backend-cuda ' "$work/plugins.txt" ||
    { echo "FAIL: backend-cuda is built but not listed by slmops plugins"; cat "$work/plugins.txt"; exit 1; }

if grep -Eq '^backend-cuda +backend .*(available|loaded)' "$work/plugins.txt"; then
    conform=$top_builddir/sdk/conform/slmops-conform
    "$conform" --plugin backend-cuda >"$work/conform.txt" 2>&1 ||
        { echo "FAIL: slmops-conform --plugin backend-cuda:"; tail -n 30 "$work/conform.txt"; exit 1; }
    tail -n 1 "$work/conform.txt"
    echo "SKIP: a CUDA device is present (slmops-conform passed on it); the no-device checks need a machine without one"
    exit 77
fi

line=$(grep '^backend-cuda ' "$work/plugins.txt")
case $line in
*" disabled "*"no CUDA device ("*")"*) ok "slmops plugins: $line" ;;
*) not_ok "backend-cuda is not disabled with 'no CUDA device (...)': $line" ;;
esac
# a machine without a GPU is not a fault: no warning on every command, but the
# registry says it at info level
[ ! -s "$work/plugins.err" ] && ok "nothing on stderr by default" ||
    { not_ok "slmops plugins printed on stderr:"; cat "$work/plugins.err"; }
SLMOPS_LOG=info "$slmops" plugins 2>&1 >/dev/null | grep -q 'info: registry: .*backend-cuda.json: no CUDA device (' &&
    ok "SLMOPS_LOG=info shows the reason" ||
    not_ok "SLMOPS_LOG=info does not show the registry's line about backend-cuda"

"$slmops" plugins --json >"$work/plugins.json" 2>/dev/null
tr -d '\n' <"$work/plugins.json" | grep -q '"name": "backend-cuda",[^}]*"state": "disabled", *"reason": "no CUDA device (' &&
    ok "slmops plugins --json: state disabled, reason no CUDA device" ||
    not_ok "slmops plugins --json does not show backend-cuda disabled with its reason"

"$slmops" devices >"$work/devices.txt" 2>"$work/devices.err" &&
    grep -q '^cpu:0 ' "$work/devices.txt" && ! grep -q '^cuda:' "$work/devices.txt" &&
    ok "slmops devices: cpu:0 and no cuda device" ||
    { not_ok "slmops devices:"; cat "$work/devices.txt" "$work/devices.err"; }

expect_fail "--device cuda:0 fails, naming the backend" 1 "no usable backend or plugin named \"cuda\"" \
    "$slmops" devices --device cuda:0
finish
