#!/bin/sh
# The recipe schema (docs/recipe.schema.json) and `slmops pipeline --check` agree: every
# recipe under tests/pipeline/recipes/valid (and recipes/*.json) is valid to both, every
# one under invalid/ is invalid to both, and slmops names the field by its JSON pointer
# as invalid/CASE.err says, exit 2. links/ holds recipes the schema accepts but slmops
# refuses (references to unknown or later stages, duplicate names), each with its pointer.
# The oracle is the `jsonschema` package (tests/requirements.txt).
. "$(dirname "$0")/../cli/lib.sh"
needs_python jsonschema
src=$top_srcdir/tests/pipeline/recipes
schema=$top_srcdir/docs/recipe.schema.json
export SLMOPS_PLUGIN_PATH
verdict() { "${PYTHON3:-python3}" "$top_srcdir/tests/pipeline/schema_verdict.py" "$schema" "$1"; }

for r in "$src"/valid/*.json "$top_srcdir"/recipes/*.json; do
    case_=$(basename "$r" .json)
    v=$(verdict "$r") || { not_ok "$case_: the schema oracle failed"; continue; }
    case $v in *": valid") ok "$case_: the schema accepts it" ;; *) not_ok "$case_: $v" ;; esac
    if "$slmops" pipeline --check "$r" >"$work/out" 2>"$work/err"; then
        ok "$case_: slmops accepts it"
    else
        not_ok "$case_: slmops refuses it: $(cat "$work/err")"
    fi
done

for r in "$src"/invalid/*.json; do
    case_=$(basename "$r" .json)
    v=$(verdict "$r") || { not_ok "$case_: the schema oracle failed"; continue; }
    case $v in *": invalid: "*) ok "$case_: the schema refuses it" ;; *) not_ok "$case_: the schema accepts it" ;; esac
    expect_fail "$case_: slmops refuses it naming the field" 2 \
        "^slmops pipeline: .*$case_\.json: $(sed 's/[][\.*^$]/\\&/g' "${r%.json}.err")" \
        "$slmops" pipeline --check "$r"
done

for r in "$src"/links/*.json; do
    case_=$(basename "$r" .json)
    v=$(verdict "$r")
    case $v in *": valid") ok "$case_: the schema cannot see it" ;; *) not_ok "$case_: $v" ;; esac
    expect_fail "$case_: slmops refuses it naming the field" 2 \
        "^slmops pipeline: .*$case_\.json: $(sed 's/[][\.*^$]/\\&/g' "${r%.json}.err")" \
        "$slmops" pipeline --check "$r"
done

printf '{"recipe": 1, "name": "x", "name": "y", "stages": []}\n' >"$work/dup.json"
expect_fail "a duplicate key is refused with its line" 2 'dup\.json: line 1, column [0-9]+: duplicate object key' \
    "$slmops" pipeline --check "$work/dup.json"
printf '{"recipe": 1,' >"$work/cut.json"
expect_fail "a cut recipe is refused with its line" 2 'cut\.json: line 1, column [0-9]+:' \
    "$slmops" pipeline --check "$work/cut.json"
expect_fail "a missing recipe is named" 2 'nope\.json' "$slmops" pipeline --check "$work/nope.json"
# Options of the jobs a stage hands on whole (a distill stage's synth and train) are
# checked by name and type before any stage runs, as recipe errors.
: >"$work/m.gguf"
: >"$work/p.txt"
for bad in 'synth' 'train'; do
    printf '{"recipe": 1, "name": "x", "inputs": {"m": "m.gguf", "p": "p.txt"}, "stages": [{"name": "d", "type": "distill", "teacher": "@inputs.m", "prompts": "@inputs.p", "student_preset": "student-micro", "%s": {"bogus": 1}}]}\n' "$bad" >"$work/job-$bad.json"
    expect_fail "an unknown $bad option is refused before any stage runs" 2 \
        "job-$bad\\.json: /stages/0/$bad: $bad job: unknown option 'bogus'" \
        "$slmops" pipeline "$work/job-$bad.json" -w "$work/w-$bad"
    [ ! -e "$work/w-$bad/d" ] && ok "no stage ran" || not_ok "a stage ran"
done
finish
