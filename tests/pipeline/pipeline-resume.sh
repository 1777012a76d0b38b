#!/bin/sh
# Resume after SIGKILL (issue 9, acceptance 4): a recipe whose distill stage trains 120
# steps with a checkpoint every 5 is killed with SIGKILL while it trains; the rerun
# says it resumes from the stage's checkpoint, keeps the teacher's data set (the synth
# step is not run again), continues the step count (the training log's steps are 1..120,
# each once) and ends with the same student, byte for byte, as a run never interrupted
# (the train job resumes bit for bit). The quantize stage after it then runs.
. "$(dirname "$0")/../cli/lib.sh"
need gguf/stories260K.gguf
export SLMOPS_PLUGIN_PATH
cat >"$work/recipe.json" <<'JSON'
{
  "recipe": 1,
  "name": "resume",
  "threads": 1,
  "inputs": {"teacher": "teacher.gguf", "prompts": "prompts.txt"},
  "stages": [
    {"name": "distill", "type": "distill", "teacher": "@inputs.teacher",
     "prompts": "@inputs.prompts", "student_preset": "student-micro", "alpha": 0.9,
     "temperature": 1,
     "synth": {"samples_per_prompt": 2, "max_tokens": 48, "temperature": 1, "seed": 3},
     "train": {"steps": 120, "ctx": 128, "lr": 0.01, "save_every": 5, "keep": 2, "seed": 3}},
    {"name": "q8", "type": "quantize", "model": "@distill.student", "quant": "q8_0"}
  ]
}
JSON
in="-i teacher=$fx/gguf/stories260K.gguf -i prompts=$top_srcdir/tests/distill/data/story-prompts.txt"

# shellcheck disable=SC2086
"$slmops" pipeline "$work/recipe.json" -w "$work/a" $in >"$work/a.out" 2>"$work/a.err" &
pid=$!
ck=$work/a/distill/checkpoints
for _ in $(seq 2400); do   # until a checkpoint past step 5 exists and training goes on
    n=0
    [ -f "$work/a/distill/train-log.jsonl" ] && n=$(wc -l <"$work/a/distill/train-log.jsonl")
    [ "$n" -ge 12 ] && [ "$n" -lt 100 ] && [ -n "$(ls "$ck" 2>/dev/null)" ] && break
    kill -0 $pid 2>/dev/null || break
    sleep 0.05
done
kill -KILL $pid 2>/dev/null
wait $pid
rc=$?
[ $rc -eq 137 ] && ok "the pipeline was killed while training (step $n)" ||
    { not_ok "the pipeline was not killed while training (exit $rc, step $n)"; cat "$work/a.err"; finish; }
grep -q '"status": "running"' "$work/a/state.json" && ok "state.json says the stage was running" ||
    not_ok "state.json: $(cat "$work/a/state.json")"
data_before=$(cksum <"$work/a/distill/data.jsonl")

# shellcheck disable=SC2086
"$slmops" pipeline "$work/recipe.json" -w "$work/a" $in >"$work/a2.out" 2>"$work/a2.err" ||
    { not_ok "the rerun failed"; cat "$work/a2.err"; finish; }
grep -q "stage distill: resuming from its last checkpoint" "$work/a2.err" &&
    ok "the rerun resumes the distill stage from its checkpoint" || not_ok "no resume: $(cat "$work/a2.err")"
grep -q "^pipeline resume: 2 stage(s) run, 0 cached$" "$work/a2.out" && ok "then runs the stage after it" ||
    not_ok "rerun: $(cat "$work/a2.out")"
[ "$(cksum <"$work/a/distill/data.jsonl")" = "$data_before" ] &&
    ok "the teacher's data set is the one the killed run wrote" || not_ok "the data set changed"
"${PYTHON3:-python3}" -c 'import json, sys
steps = [json.loads(l)["step"] for l in open(sys.argv[1])]
s = json.load(open(sys.argv[2]))["stages"]["distill"]["results"]["train"]
sys.exit(not (steps == list(range(1, 121)) and s["resumed_from"]))' \
    "$work/a/distill/train-log.jsonl" "$work/a/state.json" &&
    ok "the training log holds steps 1..120 once each and the job resumed" ||
    not_ok "the training log's steps or resumed_from are wrong"

# shellcheck disable=SC2086
"$slmops" pipeline "$work/recipe.json" -w "$work/b" $in >"$work/b.out" 2>"$work/b.err" ||
    { not_ok "the uninterrupted run failed"; cat "$work/b.err"; finish; }
cmp -s "$work/a/distill/student.gguf" "$work/b/distill/student.gguf" &&
    ok "the resumed student is byte for byte the uninterrupted run's" ||
    not_ok "the resumed student differs from the uninterrupted run's"
finish
