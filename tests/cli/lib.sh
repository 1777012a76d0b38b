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

# The folder of llama.cpp's binaries, the peer built by ../shared/peers/llama-cpp.sh
# (the README's first command builds it; later calls return its cache at once).
llama_cpp_bin() {
    script=$fx/../peers/llama-cpp.sh
    [ -x "$script" ] || { echo "SKIP: $script not found" >&2; exit 77; }
    "$script" 2>"$work/peer.log" || { echo "FAIL: $script failed:" >&2; tail -n 5 "$work/peer.log" >&2; exit 1; }
}

# needs_python MODULE...: a test oracle the README's first command installs; never
# skipped, never installed by the test.
needs_python() {
    for mod in "$@"; do
        "${PYTHON3:-python3}" -c "import $mod" 2>/dev/null ||
            { echo "FAIL: python3 cannot import $mod (the README's first command installs it)"; exit 1; }
    done
}

# serve_start LOG ARGS...: `slmops serve ARGS --port 0` in the background, stderr in
# LOG; sets pid and port once it listens; the test fails if it never does.
serve_start() {
    _log=$1
    shift
    "$slmops" serve --port 0 "$@" 2>"$_log" &
    pid=$!
    port=
    for _ in $(seq 100); do
        port=$(sed -n 's|^slmops serve: listening on http://127.0.0.1:\([0-9]*\) .*|\1|p' "$_log")
        [ -n "$port" ] && break
        kill -0 $pid 2>/dev/null || break
        sleep 0.1
    done
    [ -n "$port" ] && return 0
    echo "FAIL: slmops serve $* did not start:"
    cat "$_log"
    kill $pid 2>/dev/null
    exit 1
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
