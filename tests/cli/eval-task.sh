#!/bin/sh
# `slmops eval --task` (issue 9, section 1) on stories260K and a handmade task file:
# every example's answer, log-likelihoods, verdict, the accuracy and its Wilson
# interval agree with a numpy oracle (eval_task_oracle.py); bad task files are refused.
. "$(dirname "$0")/lib.sh"
need gguf/stories260K.gguf llama2c/stories260K.bin llama2c/tok512.bin
needs_python numpy
M=$fx/gguf/stories260K.gguf
T=$(dirname "$0")/data/task-stories.jsonl

if "$slmops" eval -m "$M" --task "$T" -o "$work/res.json" >"$work/out" 2>"$work/err"; then
    ok "eval --task exits 0"
else
    not_ok "eval --task failed"; cat "$work/err"
fi
cat "$work/out"
grep -E '^accuracy +0\.5455 +\(6/11, 95% CI 0\.2801-0\.7873\)$' "$work/out" >/dev/null &&
    ok "accuracy 6/11 with its Wilson interval is printed" || not_ok "no accuracy line"
ls "$work" | grep -q 'slmops-tmp' && not_ok "a temporary is left" || ok "no temporary left"
if "${PYTHON3:-python3}" "$(dirname "$0")/eval_task_oracle.py" "$slmops" "$M" \
    "$fx/llama2c/stories260K.bin" "$fx/llama2c/tok512.bin" "$T" "$work/res.json"; then
    ok "every example agrees with the numpy oracle"
else
    not_ok "slmops and the oracle disagree"
fi
"$slmops" eval -m "$M" --task "$T" --json >"$work/j" 2>"$work/err"
"${PYTHON3:-python3}" - "$work/j" <<'PY' && ok "--json: the same results with settings" || not_ok "--json"
import json, sys
d = json.load(open(sys.argv[1]))
assert d["n"] == 11 and d["correct"] == 6, d
assert d["by_type"]["choice"]["correct"] == 3 and d["by_type"]["choice_norm"]["correct"] == 4
assert len(d["examples"]) == 11 and d["settings"]["max_tokens"] == 32
PY
# --match contains turns the exact examples into substring checks: "Lily" is in "Lily".
"$slmops" eval -m "$M" --task "$T" --match contains --json >"$work/j2" 2>/dev/null
"${PYTHON3:-python3}" -c 'import json, sys; d = json.load(open(sys.argv[1]))["by_type"]
assert "exact" not in d and d["contains"]["n"] == 5, d' "$work/j2" &&
    ok "--match contains applies to examples without \"match\"" || not_ok "--match contains"

printf '%s\n' '{"prompt": "a", "answer": "b"}' '{"prompt": "a", "choices": ["x"], "answer_index": 0}' \
    >"$work/bad1.jsonl"
expect_fail "too few choices names the line" 1 "bad1.jsonl:2: \"choices\" must be an array of at least 2" \
    "$slmops" eval -m "$M" --task "$work/bad1.jsonl"
printf '%s\n' '{"prompt": "a", "answer": "b", "colour": 1}' >"$work/bad2.jsonl"
expect_fail "an unknown key names it" 1 "bad2.jsonl:1: unknown key 'colour'" \
    "$slmops" eval -m "$M" --task "$work/bad2.jsonl"
printf '%s\n' '{"prompt": "a", "choices": ["x", "y"], "answer_index": 2}' >"$work/bad3.jsonl"
expect_fail "answer_index out of range" 1 "bad3.jsonl:1: \"answer_index\" must be the index" \
    "$slmops" eval -m "$M" --task "$work/bad3.jsonl"
printf '%s\n' '{"messages": [{"role": "user", "content": "hi"}], "answer": "b"}' >"$work/msg.jsonl"
expect_fail "messages without a chat template" 1 "msg.jsonl:1: \"messages\" need a chat template" \
    "$slmops" eval -m "$M" --task "$work/msg.jsonl"
printf '%s\n' '{"messages": [{"role": "user", "content": "Tell me a story"}], "answer": "x"}' \
    '{"messages": [{"role": "user", "content": "Once upon a time"}], "choices": [" there", " xylophone"], "answer_index": 0}' \
    '{"prompt": "Once upon a time", "choices": [" there", " xylophone"], "answer_index": 0}' \
    >"$work/msg2.jsonl"
"$slmops" eval -m "$M" --task "$work/msg2.jsonl" --chat-template chatml --json >"$work/m.json" 2>"$work/err" &&
"${PYTHON3:-python3}" - "$work/m.json" <<'PY' && ok "messages are rendered with --chat-template" || { not_ok "messages with --chat-template"; cat "$work/err"; }
import json, math, sys
d = json.load(open(sys.argv[1]))
g, chat, plain = d["examples"]
assert g["output"] and d["settings"]["chat_template"] == "chatml", d
assert all(math.isfinite(x) for x in chat["loglik"] + plain["loglik"])
assert chat["loglik"] != plain["loglik"], "the template changed nothing"
PY
printf '\n\n' >"$work/empty.jsonl"
expect_fail "an empty task file" 1 "holds no example" "$slmops" eval -m "$M" --task "$work/empty.jsonl"
cp "$T" "$work/t.jsonl"
expect_fail "the output may not be the task file" 1 "t.jsonl" \
    "$slmops" eval -m "$M" --task "$work/t.jsonl" -o "$work/t.jsonl"
cmp -s "$T" "$work/t.jsonl" && ok "the task file is untouched" || not_ok "the task file changed"
finish
