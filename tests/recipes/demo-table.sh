#!/bin/sh
# Issue 9, acceptance 1: the demo's closing table (recipes/demo-table.py) from files as
# demo.sh writes them: accuracy retained, decode time and memory saved against the
# targets, each target "met" or "MISSED" as the figures say, and summary.json.
. "${top_srcdir:?run through make check}/tests/cli/lib.sh"
py=${PYTHON3:-python3}
d=$work/out
mkdir -p "$d"
head -c 1000 /dev/zero > "$work/teacher.gguf"
head -c 100 /dev/zero > "$work/student.gguf"
# name, wall s, cpu s, peak RSS KiB
# The memory is generate's own peak (its JSON): neither eval's nor the step's rusage,
# which counts the Python that forked it.
printf 'distill\t100.00\t190.00\t150000\neval-teacher\t50.00\t99.00\t250000\neval-student\t5.00\t9.00\t90000\n' > "$d/steps.tsv"
printf 'generate-teacher\t1.00\t2.00\t160000\ngenerate-student\t0.10\t0.20\t30000\n' >> "$d/steps.tsv"
printf '{"text":"Paris","timings":{"peak_rss_bytes":153600000}}\n' > "$d/generate-teacher.out"
printf '{"text":"Paris","timings":{"peak_rss_bytes":20480000}}\n' > "$d/generate-student.out"
printf '{"n":200,"correct":120,"accuracy":0.6,"ci95":[0.53,0.66]}\n' > "$d/eval-teacher.json"
printf '{"n":200,"correct":114,"accuracy":0.57,"ci95":[0.5,0.63]}\n' > "$d/eval-student.json"
printf '{"results":[{"test":"tg64","n_tokens":64,"avg_ms":1280}]}\n' > "$d/bench-teacher.out"
printf '{"results":[{"test":"tg64","n_tokens":64,"avg_ms":64}]}\n' > "$d/bench-student.out"
"$py" "$top_srcdir/recipes/demo-table.py" "$d" "$work/teacher.gguf" "$work/student.gguf" 2 > "$work/table" ||
    { echo "FAIL: demo-table.py failed"; exit 1; }
sed 's/^/    /' "$work/table"
# 0.57/0.6 = 95% retained (met), 1 - 1/20 = 95% less time (met), 1 - 20000/150000 = 86.7% less memory (missed)
grep -q "accuracy retained 95.0% (>= 92.0%: met)" "$work/table" && ok "accuracy retained 95.0%, met" ||
    not_ok "accuracy retained is not 95.0% met"
grep -q "decode time saved 95.0% (>= 85.0%: met)" "$work/table" && ok "decode time saved 95.0%, met" ||
    not_ok "decode time saved is not 95.0% met"
grep -q "memory saved 86.7% (>= 90.0%: MISSED)" "$work/table" && ok "memory saved 86.7%, missed" ||
    not_ok "memory saved is not 86.7% missed"
if "$py" - "$d/summary.json" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))
assert abs(s["accuracy_retained"] - 0.95) < 1e-9, s["accuracy_retained"]
assert abs(s["teacher"]["decode_ms_per_token"] - 20) < 1e-9
assert s["student"]["peak_rss_kib"] == 20000 and s["teacher"]["bytes"] == 1000
assert s["steps"]["distill"] == {"seconds": 100.0, "cpu_seconds": 190.0, "peak_rss_kib": 150000}
PY
then ok "summary.json holds the same figures"; else not_ok "summary.json is wrong"; fi
finish
