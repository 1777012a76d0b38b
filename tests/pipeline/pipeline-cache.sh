#!/bin/sh
# Stage caching (issue 9, acceptance 4): recipes/stories260k-tiny.json (stories260K
# teaches student-micro, a LoRA fine-tune, q8_0, eval, bench, package) runs all six
# stages; run again it runs none and writes nothing (every output, state.json and the
# report keep their bytes and mtimes); with the quantize stage's type changed, only
# that stage and the three that read its output run again, and the untouched
# stages' outputs are the same files.
. "$(dirname "$0")/../cli/lib.sh"
need gguf/stories260K.gguf text/tinystories_sample.txt
export SLMOPS_PLUGIN_PATH
recipe=$top_srcdir/recipes/stories260k-tiny.json
W=$work/run
fixtures="-i teacher=$fx/gguf/stories260K.gguf -i text=$fx/text/tinystories_sample.txt"
run() { # RECIPE [OPTIONS]: run the pipeline, stdout and stderr in $work/out, $work/err
    r=$1
    shift
    # shellcheck disable=SC2086
    "$slmops" pipeline "$r" -w "$W" $fixtures "$@" >"$work/out" 2>"$work/err" ||
        { echo "slmops pipeline failed:"; cat "$work/err"; return 1; }
}
stamps() { # every file under the work folder with its size and mtime, sorted
    find "$W" -type f -newer "$work/mark" -print 2>/dev/null | sort
}

run "$recipe" || { not_ok "the first run"; finish; }
grep -q "^pipeline stories260k-tiny: 6 stage(s) run, 0 cached$" "$work/out" &&
    ok "the first run runs all six stages" || not_ok "first run: $(cat "$work/out")"
for f in distill/student.gguf distill/data.jsonl finetune/model.gguf q8/model.gguf \
         eval/report.json bench/report.json package/package/README.md report.html report.json; do
    [ -s "$W/$f" ] && ok "it wrote $f" || not_ok "no $f"
done

sleep 1.1   # mtimes a second apart at least, for filesystems that keep seconds
touch "$work/mark"
run "$recipe" || { not_ok "the second run"; finish; }
grep -q "^pipeline stories260k-tiny: 0 stage(s) run, 6 cached$" "$work/out" &&
    ok "the second run runs nothing" || not_ok "second run: $(cat "$work/out")"
[ "$(grep -c 'done before, cached$' "$work/err")" -eq 6 ] && ok "each stage says it is cached" ||
    not_ok "stages not cached: $(cat "$work/err")"
changed=$(stamps)
[ -z "$changed" ] && ok "the second run wrote no file" || not_ok "the second run wrote: $changed"

# The quantize stage's type: q8_0 -> q4_0; the inputs the copy names are given with -i.
sed 's/"quant": "q8_0"/"quant": "q4_0"/' "$recipe" >"$work/changed.json"
grep -q '"quant": "q4_0"' "$work/changed.json" || { not_ok "could not edit the recipe"; finish; }
touch "$work/mark"
run "$work/changed.json" -i "prompts=$top_srcdir/tests/distill/data/story-prompts.txt" \
    -i "task=$top_srcdir/tests/cli/data/task-stories.jsonl" || { not_ok "the third run"; finish; }
grep -q "^pipeline stories260k-tiny: 4 stage(s) run, 2 cached$" "$work/out" &&
    ok "a changed quantize type reruns four stages, two cached" || not_ok "third run: $(cat "$work/out")"
for s in distill finetune; do
    grep -q "stage $s ($s): done before, cached" "$work/err" && ok "$s stays cached" ||
        not_ok "$s ran again"
done
for s in "q8 (quantize)" "eval (eval)" "bench (bench)" "package (package)"; do
    grep -qF "stage $s: running" "$work/err" && ok "$s runs again" || not_ok "$s did not run"
done
changed=$(stamps)
case $changed in *distill/*|*finetune/*) not_ok "an earlier stage's files changed: $changed" ;;
                 *) ok "the distill and finetune outputs are untouched" ;; esac
"${PYTHON3:-python3}" -c 'import json, sys
s = json.load(open(sys.argv[1]))["stages"]["q8"]["results"]["quantize"]
d = json.load(open(sys.argv[2]))
q = {m["label"]: m for m in d["models"]}["student-q8"]
sys.exit(not (s["type"] == "q4_0" and q["file_bytes"] == s["file_bytes_out"]))' "$W/state.json" "$W/report.json" &&
    ok "the state and the report have the q4_0 model" || not_ok "the report does not show the q4_0 model"
finish
