# Sourced by the tests/cli scripts: where slmops and the fixtures are, a scratch
# folder, and the checks they share. A missing fixture skips (exit 77) naming it.
: "${top_builddir:?run through make check}" "${SLMOPS_FIXTURES:?run through make check}"
slmops="$top_builddir/slmops"
fx=$SLMOPS_FIXTURES
work=$(mktemp -d "${TMPDIR:-/tmp}/slmops-cli-XXXXXX") || exit 99
trap 'rm -rf "$work"' EXIT
failures=0

need() { # FIXTURE...: skip the whole script unless each exists
    for f in "$@"; do
        [ -e "$fx/$f" ] || { echo "SKIP: fixture $fx/$f not found"; exit 77; }
    done
}

ok() { echo "ok - $1"; }
not_ok() { echo "not ok - $1"; failures=$((failures + 1)); }

# expect_fail NAME STATUS PATTERN CMD...: CMD exits STATUS and stderr matches PATTERN.
expect_fail() {
    name=$1 want=$2 pattern=$3
    shift 3
    "$@" >"$work/out" 2>"$work/err"
    rc=$?
    if [ "$rc" -eq "$want" ] && grep -E -- "$pattern" "$work/err" >/dev/null; then
        ok "$name"
    else
        not_ok "$name: exit $rc (want $want), stderr:"
        sed 's/^/    /' "$work/err"
    fi
}

finish() {
    [ "$failures" -eq 0 ] && exit 0
    echo "$failures check(s) failed"
    exit 1
}
