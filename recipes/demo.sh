#!/bin/sh
# The README's demo with the plain verbs: SmolLM2-135M-Instruct teaches a student of 4% of its
# size one narrow task (capital cities), and the two are compared on held-out prompts.
#   usage: recipes/demo.sh [OUTDIR]        (default demo-out; from the top of a built tree)
#   env:   SLMOPS          the slmops to run (default ./slmops)
#          SLMOPS_TEACHER  the teacher's GGUF (default: recipes/fetch-teacher.sh models)
#          DEMO_THREADS    threads for every step, teacher and student alike (default 2)
#          DEMO_DEVICE     the device every step runs on (default cpu, as the recipe's)
#          DEMO_STEPS DEMO_LR DEMO_KD DEMO_VOCAB DEMO_QUANT  the recipe's knobs (defaults
#                          below; DEMO_VOCAB is teacher when DEMO_KD is not none)
#          DEMO_TASK       a folder with train.prompts.jsonl and heldout.task.jsonl
#                          (default recipes/capitals; a smaller one tries the script)
set -eu
out=${1:-demo-out}
slmops=${SLMOPS:-./slmops}
threads=${DEMO_THREADS:-2}
device=${DEMO_DEVICE:-cpu}
steps=${DEMO_STEPS:-2500}
lr=${DEMO_LR:-6e-3}
kd=${DEMO_KD:-none}
quant=${DEMO_QUANT:-q4_0}
if [ "$kd" = none ]; then vocab=${DEMO_VOCAB:-data}; else vocab=${DEMO_VOCAB:-teacher}; fi
here=$(dirname "$0")
me=demo.sh

[ -x "$slmops" ] || command -v "$slmops" >/dev/null ||
    { echo "$me: $slmops is not a program: build first, or set SLMOPS" >&2; exit 2; }
teacher=${SLMOPS_TEACHER:-$("$here/fetch-teacher.sh" models)}
[ -f "$teacher" ] || { echo "$me: the teacher $teacher is missing" >&2; exit 1; }
mkdir -p "$out"
times=$out/steps.tsv
: > "$times"

# run NAME CMD...: runs CMD, appends NAME, its wall seconds, its CPU seconds (user and
# system: on a shared machine, CPU/threads estimates the wall time it would take alone)
# and its peak RSS (KiB, the largest process it waited for) to steps.tsv; stdout goes to
# OUT/NAME.out.
run() {
    name=$1; shift
    echo "== $name" >&2
    python3 - "$times" "$name" "$out/$name.out" "$@" <<'PY'
import resource, subprocess, sys, time
times, name, log, *cmd = sys.argv[1:]
t0 = time.monotonic()
with open(log, "wb") as f:
    rc = subprocess.call(cmd, stdout=f)
wall = time.monotonic() - t0
ru = resource.getrusage(resource.RUSAGE_CHILDREN)
if rc != 0:
    sys.exit(f"demo.sh: step {name} failed (exit {rc}): {' '.join(cmd)}")
with open(times, "a") as f:
    f.write(f"{name}\t{wall:.2f}\t{ru.ru_utime + ru.ru_stime:.2f}\t{ru.ru_maxrss}\n")
PY
}

# 1. The task: training prompts and held-out prompts, disjoint, as recipes/capitals.py
#    writes them (tests/recipes/task-split.sh checks that the copies here are its output).
task=${DEMO_TASK:-$here/capitals}

# 2. The teacher answers the training prompts greedily; only answers that contain the
#    right capital are kept (rejection sampling); a new student learns them, with the
#    part of the teacher's vocabulary the data uses (the byte alphabet covers the rest).
run distill "$slmops" distill -m "$teacher" --prompts "$task/train.prompts.jsonl" \
    --check contains --sample-temp 0 -n 24 --data-out "$out/data.jsonl" \
    --student-preset student-5m --student-vocab "$vocab" --student-out "$out/student-init.gguf" \
    --kd-loss "$kd" --ctx 256 --batch 1 --steps "$steps" --lr "$lr" --warmup 20 \
    --schedule cosine --log "$out/train.log" -t "$threads" --device "$device" --json -o "$out/student-f32.gguf"

# 3. The student as it ships: quantized.
run quantize "$slmops" quantize "$out/student-f32.gguf" "$out/student.gguf" --type "$quant" \
    --pure -t "$threads" --json

# 4. Accuracy on the held-out prompts, answered greedily.
for who in teacher student; do
    if [ $who = teacher ]; then m=$teacher; else m=$out/student.gguf; fi
    run eval-$who "$slmops" eval -m "$m" --task "$task/heldout.task.jsonl" -n 24 \
        -o "$out/eval-$who.json" -t "$threads" --device "$device" --json
done

# 5. The memory each model needs while generating: the peak RSS (VmHWM, which generate
#    reports itself: a child's rusage would count the Python that forked it) of 64
#    greedy tokens, as the pipeline's bench stage measures it.
for who in teacher student; do
    if [ $who = teacher ]; then m=$teacher; else m=$out/student.gguf; fi
    run generate-$who "$slmops" generate -m "$m" -p "What is the capital of France?" -n 64 \
        --temp 0 -t "$threads" --device "$device" --json
done

# 6. Decode speed: 64 tokens one per decode, mean of 3 runs after a warm-up.
for who in teacher student; do
    if [ $who = teacher ]; then m=$teacher; else m=$out/student.gguf; fi
    run bench-$who "$slmops" bench -m "$m" -p 0 -n 64 -r 3 -t "$threads" --device "$device" --json
done

python3 "$here/demo-table.py" "$out" "$teacher" "$out/student.gguf" "$threads"
