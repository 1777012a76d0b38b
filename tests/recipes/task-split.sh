#!/bin/sh
# Issue 9, section 4: the demo's task generator (recipes/capitals.py) writes the same
# files every run (those the demo reads, recipes/capitals/), held-out prompts that no training prompt repeats (at least 200),
# every held-out country also taught, and answers a "contains" check cannot pass by
# repeating the question; bad options are refused.
. "${top_srcdir:?run through make check}/tests/cli/lib.sh"
py=${PYTHON3:-python3}
gen=$top_srcdir/recipes/capitals.py

"$py" "$gen" "$work/a" >/dev/null && "$py" "$gen" "$work/b" >/dev/null ||
    { echo "FAIL: $gen failed"; exit 1; }
same=0
for f in train.prompts.jsonl train.task.jsonl heldout.task.jsonl; do
    cmp -s "$work/a/$f" "$work/b/$f" || { not_ok "$f differs between two runs"; same=1; }
done
[ $same -eq 0 ] && ok "two runs write the same files"
same=0
for f in train.prompts.jsonl train.task.jsonl heldout.task.jsonl; do
    cmp -s "$work/a/$f" "$top_srcdir/recipes/capitals/$f" ||
        { not_ok "recipes/capitals/$f is not what recipes/capitals.py writes: run it again"; same=1; }
done
[ $same -eq 0 ] && ok "the demo's task files are the generator's output"
"$py" "$gen" --seed 10 "$work/c" >/dev/null
if cmp -s "$work/a/heldout.task.jsonl" "$work/c/heldout.task.jsonl"; then
    not_ok "--seed 10 gives the same split as the default seed"
else
    ok "the seed chooses the split"
fi

if "$py" - "$work/a" <<'PY'
import json, sys
d = sys.argv[1]
rows = lambda f: [json.loads(l) for l in open(f"{d}/{f}", encoding="utf-8")]
prompts = rows("train.prompts.jsonl")
train, held = rows("train.task.jsonl"), rows("heldout.task.jsonl")
q = lambda r: r["messages"][-1]["content"]
seen = {p["prompt"] for p in prompts}
assert seen == {q(r) for r in train}, "train.prompts and train.task ask different questions"
assert len(held) >= 200, f"{len(held)} held-out prompts, fewer than 200"
both = seen & {q(r) for r in held}
assert not both, f"held-out prompts also in training: {sorted(both)[:3]}"
assert len({q(r) for r in held}) == len(held), "a held-out prompt is repeated"
country = lambda r: r["id"].split("/")[0]
untaught = {country(r) for r in held} - {country(r) for r in train}
assert not untaught, f"held-out countries never taught: {sorted(untaught)[:3]}"
for r in train + held:
    assert r["match"] == "contains" and r["answer"], r
    for a in r["answer"]:
        assert a.lower() not in q(r).lower(), f"{a!r} is inside {q(r)!r}"
for p, r in zip(prompts, train):
    assert p["answer"] == r["answer"][0], (p, r)
print(f"{len(prompts)} training, {len(held)} held-out")
PY
then ok "held-out prompts are disjoint from training, >= 200, their countries taught"
else not_ok "the split is not disjoint, too small or uncheckable"
fi

expect_fail "--train 0 is refused" 1 "capitals.py: --train and --heldout must be at least 1" \
    "$py" "$gen" --train 0 "$work/d"
expect_fail "--train 6 --heldout 3 (9 of 8 phrasings) is refused" 1 "add up to at most 8" \
    "$py" "$gen" --train 6 --heldout 3 "$work/d"
finish
