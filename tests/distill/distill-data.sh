#!/bin/sh
# Issue 9, section 2: the data set `slmops distill` has its teacher write. With
# stories260K (a base model: {"prompt","completion"} lines) and greedy sampling, the
# samples of a prompt are identical: deduplication keeps one each, --no-dedup all;
# a regex checker keeps exactly the responses that match; an answer checker the
# ones that contain the prompt's answer; every line names its teacher, prompt line,
# sample and seed; bad prompt files and options are refused by name.
. "${top_srcdir:?run through make check}/tests/cli/lib.sh"
need gguf/stories260K.gguf llama2c/llama2_tokenizer.bin gguf/llama-2-tiny-random.gguf
T=$fx/gguf/stories260K.gguf
P=$top_srcdir/tests/distill/data/story-prompts.txt
py=${PYTHON3:-python3}
distill() { # DATA OPTIONS...: the data set into DATA, one training step
    data=$1
    shift
    "$slmops" distill -m "$T" --student-preset student-micro -o "$work/s.gguf" \
        --data-out "$data" --steps 1 --ctx 128 -n 24 -t 2 --json "$@" >"$work/report.json" \
        2>"$work/err"
}

if distill "$work/greedy.jsonl" --prompts "$P" --samples-per-prompt 3 --sample-temp 0; then
    ok "distill with greedy samples exits 0"
else
    not_ok "distill failed"; cat "$work/err"
fi
$py - "$work/report.json" "$work/greedy.jsonl" "$T" <<'PY' && ok "dedup keeps one of 3 identical samples per prompt; provenance on each line" || not_ok "dedup or provenance"
import json, sys
r = json.load(open(sys.argv[1]))["synth"]
lines = [json.loads(l) for l in open(sys.argv[2])]
assert r["prompts"] == 24 and r["generated"] == 72, r
assert r["kept"] == len(lines) == 24 - r["dropped"]["empty"], r
assert r["dropped"]["duplicate"] == 48, r
for l in lines:
    p = l["provenance"]
    assert set(l) == {"prompt", "completion", "provenance"}, l
    assert p["teacher"] == sys.argv[3] and p["temperature"] == 0 and p["sample"] == 0
    assert p["max_tokens"] == 24 and str(p["seed"]).isdigit() and p["prompt_line"] >= 1
PY

distill "$work/all.jsonl" --prompts "$P" --samples-per-prompt 3 --sample-temp 0 --no-dedup &&
    [ "$(wc -l <"$work/all.jsonl")" -eq 72 ] && ok "--no-dedup keeps all 72" ||
    { not_ok "--no-dedup"; cat "$work/err"; }

distill "$work/re.jsonl" --prompts "$P" --samples-per-prompt 2 --check regex --check-regex '\bLily\b' &&
$py - "$work/report.json" "$work/re.jsonl" <<'PY' && ok "the regex checker keeps exactly the matching responses" || { not_ok "regex checker"; cat "$work/err"; }
import json, re, sys
r = json.load(open(sys.argv[1]))["synth"]
lines = [json.loads(l) for l in open(sys.argv[2])]
assert lines and all(re.search(r"\bLily\b", l["completion"]) for l in lines)
assert r["kept"] == len(lines) and r["dropped"]["check_failed"] > 0, r
assert r["kept"] + sum(r["dropped"].values()) == r["generated"] == 48, r
PY

printf '%s\n' '{"prompt": "Once upon a time, there was a little", "answer": "girl"}' \
    '{"prompt": "Lily and her mom went to the", "answer": "spaceship", "system": "Story:"}' \
    >"$work/qa.jsonl"
distill "$work/qa-data.jsonl" --prompts "$work/qa.jsonl" --samples-per-prompt 2 --sample-temp 0 \
    --no-dedup --check contains &&
$py - "$work/qa-data.jsonl" <<'PY' && ok "the answer checker keeps the answered prompt's responses only" || { not_ok "answer checker"; cat "$work/err"; }
import json, sys
lines = [json.loads(l) for l in open(sys.argv[1])]
assert len(lines) == 2 and all(l["provenance"]["prompt_line"] == 1 for l in lines), lines
assert all("girl" in l["completion"].lower() for l in lines)
PY
expect_fail "a checker that keeps nothing is an error" 1 "kept none of the 2 responses" \
    "$slmops" distill -m "$T" --prompts "$work/qa.jsonl" --student-preset student-micro \
    -o "$work/n.gguf" --data-out "$work/none.jsonl" --check exact --sample-temp 0 -n 8
[ ! -e "$work/none.jsonl" ] && ok "no data set is left after that" || not_ok "a data set was left"

distill "$work/chat.jsonl" --prompts "$P" --chat-template chatml --system "Tell a story." &&
$py - "$work/report.json" "$work/chat.jsonl" <<'PY' && ok "with a chat template the lines are {\"messages\"}" || { not_ok "messages form"; cat "$work/err"; }
import json, sys
r = json.load(open(sys.argv[1]))
lines = [json.loads(l) for l in open(sys.argv[2])]
assert r["synth"]["form"] == "messages" and r["train"]["steps"] == 1, r
for l in lines:
    assert [m["role"] for m in l["messages"]] == ["system", "user", "assistant"], l
    assert l["messages"][0]["content"] == "Tell a story." and "provenance" in l
PY

printf '%s\n' '{"prompt": "a", "colour": "red"}' >"$work/bad.jsonl"
expect_fail "an unknown prompt key names the line" 1 "bad.jsonl:1: unknown key 'colour'" \
    "$slmops" distill -m "$T" --prompts "$work/bad.jsonl" --student-preset student-micro -o "$work/x.gguf"
expect_fail "a student of another vocabulary" 1 "logit distillation needs the same vocabulary" \
    "$slmops" distill -m "$T" --prompts "$P" --student "$fx/gguf/llama-2-tiny-random.gguf" \
    -o "$work/x.gguf" -n 4 --steps 1 --ctx 64
expect_fail "a bad regular expression" 1 "check_regex '\(': missing closing parenthesis" \
    "$slmops" distill -m "$T" --prompts "$P" --student-preset student-micro -o "$work/x.gguf" \
    --check regex --check-regex '('
[ ! -e "$work/x.gguf" ] && ok "no student is written after a failure" || not_ok "a student was written"
finish
