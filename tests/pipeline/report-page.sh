#!/bin/sh
# The pipeline's report.html in headless Chromium (issue 9, acceptance 4; Debian's
# chromium and chromium-driver, driven through WebDriver by report_page.py as
# tests/serve/chat-page.sh drives the chat page): recipes/stories260k-tiny.json is run,
# then the page must show a row per model in its table, charts whose screenshots hold
# their series' colours (the size-quality chart and one loss chart per training stage),
# fetch nothing and log no console error. report.json is checked too: the summary's
# figures follow from the models' rows. The screenshot is kept as
# tests/pipeline/report.png in the build folder.
. "$(dirname "$0")/../cli/lib.sh"
need gguf/stories260K.gguf text/tinystories_sample.txt
chromium=$(command -v chromium || command -v chromium-browser) ||
    { echo "SKIP: chromium not found (Debian: apt-get install chromium chromium-driver)"; exit 77; }
driver=$(command -v chromedriver) ||
    { echo "SKIP: chromedriver not found (Debian: apt-get install chromium-driver)"; exit 77; }
export SLMOPS_PLUGIN_PATH
W=$work/run
"$slmops" pipeline "$top_srcdir/recipes/stories260k-tiny.json" -w "$W" \
    -i "teacher=$fx/gguf/stories260K.gguf" -i "text=$fx/text/tinystories_sample.txt" \
    >"$work/out" 2>"$work/err" || { echo "FAIL: slmops pipeline:"; cat "$work/err"; exit 1; }
grep -q "^report: $W/report.html$" "$work/out" && ok "the pipeline says where its report is" ||
    not_ok "no report line: $(cat "$work/out")"
"${PYTHON3:-python3}" - "$W/report.json" <<'PY' && ok "report.json: rows and summary agree" || not_ok "report.json"
import json, sys
d = json.load(open(sys.argv[1]))
rows = {m["label"]: m for m in d["models"]}
assert list(rows) == ["teacher", "student", "student-q8"], list(rows)
keys = ("n_params", "file_bytes", "peak_rss_bytes", "prefill_tps", "decode_tps", "ppl", "accuracy")
for m in d["models"]:
    assert all(isinstance(m.get(k), (int, float)) and m[k] > 0 for k in keys if k != "accuracy"), m
    assert 0 <= m["accuracy"] <= 1, m
t, s, sm = rows["teacher"], rows["student-q8"], d["summary"]
near = lambda a, b: abs(a - b) <= 0.051
assert near(sm["accuracy_retained_pct"], 100 * s["accuracy"] / t["accuracy"]), sm
assert near(sm["decode_time_saved_pct"], 100 * (1 - t["decode_tps"] / s["decode_tps"])), sm
assert near(sm["memory_saved_pct"], 100 * (1 - s["peak_rss_bytes"] / t["peak_rss_bytes"])), sm
assert rows["student"]["n_params"] < t["n_params"] and s["file_bytes"] < rows["student"]["file_bytes"]
assert [c["stage"] for c in d["curves"]] == ["distill", "finetune"], d["curves"]
assert all(len(c["train"]) and len(c["val"]) for c in d["curves"]), d["curves"]
PY
"${PYTHON3:-python3}" "$(dirname "$0")/report_page.py" "$driver" "$chromium" "$W/report.html" 3 2 \
    "$top_builddir/tests/pipeline/report.png" || failures=$((failures + 1))
finish
