#!/bin/sh
# Issue 7, item 20: `selftest --device SPEC`, as the man page documents it, tests that
# one device (a forced CPU variant included) and names a spec that matches nothing.
. "$(dirname "$0")/lib.sh"

"$slmops" selftest --device cpu-x86-64:0 >"$work/out" 2>"$work/err"
rc=$?
[ $rc -eq 0 ] && grep -q '^cpu:0 (cpu-x86-64): [1-9][0-9]* passed, 0 failed' "$work/out" &&
    [ "$(grep -c ' passed, ' "$work/out")" -eq 1 ] &&
    ok "selftest --device cpu-x86-64:0 tests that variant alone" ||
    { not_ok "selftest --device cpu-x86-64:0: exit $rc"; cat "$work/out" "$work/err"; }
"$slmops" selftest --device=cpu --json >"$work/json" 2>"$work/err" &&
    grep -q '"id": "cpu:0"' "$work/json" && ok "selftest --device=cpu --json" ||
    not_ok "selftest --device=cpu --json"
expect_fail "selftest --device with no such backend" 1 "--device nosuch:0: .*nosuch" \
    "$slmops" selftest --device nosuch:0
finish
