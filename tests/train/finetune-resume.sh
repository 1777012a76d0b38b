#!/bin/sh
# Issue 8, acceptance 4, `slmops finetune` on stories260K: resume and faults.
# - A run resumed from its step-4 checkpoint gives, bit for bit, the losses, gradient
#   norms and adapter of the run never interrupted (LoRA with dropout, micro-batches
#   of 2 accumulated 2 at a time, validation), at 1 and at 2 threads; and 1 and 2
#   threads agree within 1e-6 relative.
# - SIGINT ends the step, writes a checkpoint and exits 130; SIGTERM exits 143; the
#   losses of interrupted-and-resumed runs equal those of a run never interrupted.
# - SIGKILL at several moments of a run that writes a checkpoint every step (full
#   fine-tuning: the biggest files): each time the last complete checkpoint loads,
#   and the run finished after four kills has the uninterrupted run's losses, its
#   --log each step once (a resumed run drops the records after its checkpoint).
# - A checkpoint with a byte flipped, a file missing or a file truncated is refused
#   naming the file; with the root folder, a damaged newest checkpoint is skipped
#   (named) and the one before is used.
# - Bad data lines are refused naming the file and line, or counted with
#   --skip-bad-lines. (More bad input: tests/cli/bad-input/cases.txt.)
# - The live progress line on a terminal; {"messages"} data with --chat-template.
. "${top_srcdir:?run through make check}/tests/cli/lib.sh"
need gguf/stories260K.gguf text/tinyshakespeare_input.txt
base=$fx/gguf/stories260K.gguf
py=${PYTHON3:-python3}
run() { "$@" >"$work/out" 2>"$work/err" || { echo "FAIL: $*"; cat "$work/err"; exit 1; }; }
head -c 6000 "$fx/text/tinyshakespeare_input.txt" >"$work/d.txt"
# same A B FIRST: the per-step figures of logs A and B are equal for each step both
# hold (every occurrence), and both hold every step from FIRST to the last of A.
same() {
    "$py" - "$1" "$2" "${3:-1}" <<'EOF'
import json, sys
def steps(path):
    out = {}
    for line in open(path):
        d = json.loads(line)
        out.setdefault(d["step"], []).append(tuple(d.get(k) for k in
                                                   ("loss", "grad_norm", "lr", "val_loss")))
    return out
a, b, first = steps(sys.argv[1]), steps(sys.argv[2]), int(sys.argv[3])
common = set(a) & set(b)
if any(s not in common for s in range(first, max(a) + 1)):
    sys.exit("steps %s are not in both logs" % sorted(set(range(first, max(a) + 1)) - common))
bad = [s for s in sorted(common) if len(set(a[s] + b[s])) != 1]
sys.exit("steps %s differ: %s vs %s" % (bad, a[bad[0]], b[bad[0]]) if bad else 0)
EOF
}
# wait_lines FILE N PID: until FILE has N lines (or PID ends, or 120 s pass).
wait_lines() {
    i=0
    while [ "$(cat "$1" 2>/dev/null | wc -l)" -lt "$2" ] && kill -0 "$3" 2>/dev/null &&
        [ $i -lt 1200 ]; do
        sleep 0.1
        i=$((i + 1))
    done
}

# ---- bit-exact resume, 1 and 2 threads ----
S="-m $base --data $work/d.txt --ctx 64 --batch 2 --grad-accum 2 --steps 8 --lr 1e-2
   --lora-dropout 0.1 --val-split 0.2 --eval-every 4 --save-every 4 --keep 0"
for t in 1 2; do
    # shellcheck disable=SC2086
    run "$slmops" finetune $S -t $t -o "$work/a$t" --log "$work/a$t.log"
    # shellcheck disable=SC2086
    run "$slmops" finetune $S -t $t -o "$work/b$t" --log "$work/b$t.log" \
        --resume "$work/a$t.checkpoints/step-00000004"
    if why=$(same "$work/a$t.log" "$work/b$t.log" 5 2>&1) &&
        cmp -s "$work/a$t/adapter_model.safetensors" "$work/b$t/adapter_model.safetensors"; then
        ok "$t thread(s): resumed at step 4, steps 5-8 and the adapter equal the uninterrupted run's"
    else not_ok "$t thread(s): the resumed run differs: $why"; fi
done
if "$py" - "$work/a1.log" "$work/a2.log" <<'EOF'
import json, sys
a, b = ([json.loads(l)["loss"] for l in open(p)] for p in sys.argv[1:])
sys.exit(0 if len(a) == len(b) and all(abs(x - y) <= 1e-6 * abs(x) for x, y in zip(a, b)) else 1)
EOF
then ok "1 and 2 threads agree within 1e-6 relative"; else not_ok "1 and 2 threads disagree"; fi

# ---- SIGINT and SIGTERM ----
# A background job of a script starts with SIGINT ignored, which slmops keeps:
# env --default-signal gives it the default back, as a terminal's Ctrl-C would see.
L="-m $base --data $work/d.txt --ctx 64 --steps 400 --lr 1e-2 -t 2"
# shellcheck disable=SC2086
env --default-signal=INT "$slmops" finetune $L -o "$work/c" --log "$work/c.log" \
    >/dev/null 2>"$work/c.err" &
pid=$!
wait_lines "$work/c.log" 3 $pid
kill -INT $pid
wait $pid
rc=$?
ck=$(ls "$work/c.checkpoints" 2>/dev/null | tail -n 1)
if [ $rc -eq 130 ] && [ -n "$ck" ] && grep -q "interrupted after step .*--resume" "$work/c.err"; then
    ok "SIGINT: exit 130 with checkpoint $ck: $(cat "$work/c.err")"
else not_ok "SIGINT: exit $rc, checkpoint '$ck', stderr: $(cat "$work/c.err")"; fi
n=$(wc -l <"$work/c.log")
# shellcheck disable=SC2086
"$slmops" finetune $L -o "$work/c" --log "$work/c.log" --resume "$work/c.checkpoints" \
    >/dev/null 2>"$work/c2.err" &
pid=$!
wait_lines "$work/c.log" $((n + 4)) $pid
kill -TERM $pid
wait $pid
rc=$?
[ $rc -eq 143 ] && ok "SIGTERM: exit 143" || not_ok "SIGTERM: exit $rc: $(cat "$work/c2.err")"
# shellcheck disable=SC2086
"$slmops" finetune $L -o "$work/d" --log "$work/d.log" >/dev/null 2>&1 &
pid=$!
wait_lines "$work/d.log" $(($(wc -l <"$work/c.log") + 1)) $pid
kill -TERM $pid
wait $pid
if why=$(same "$work/c.log" "$work/d.log" 2>&1); then
    ok "interrupted by SIGINT, resumed, interrupted by SIGTERM: the losses of a run never interrupted"
else not_ok "interrupted and resumed: $why"; fi

# ---- SIGKILL, also while a checkpoint is written ----
K="-m $base --data $work/d.txt --ctx 64 --steps 24 --lr 1e-3 -t 2 --method full
   --save-every 1 --keep 2"
# shellcheck disable=SC2086
run "$slmops" finetune $K -o "$work/k-ref.gguf" --log "$work/k-ref.log"
kills=0 refused=0
for delay in 0 0.03 0.07 0.11; do
    resume=
    [ -d "$work/k.gguf.checkpoints" ] && resume="--resume $work/k.gguf.checkpoints"
    n=$(cat "$work/k.log" 2>/dev/null | wc -l)
    # shellcheck disable=SC2086
    "$slmops" finetune $K -o "$work/k.gguf" --log "$work/k.log" $resume >/dev/null 2>"$work/k.err" &
    pid=$!
    wait_lines "$work/k.log" $((n + 2)) $pid
    sleep $delay
    kill -KILL $pid 2>/dev/null && kills=$((kills + 1))
    wait $pid 2>/dev/null
    grep -q "slmops finetune:" "$work/k.err" && refused=$((refused + 1))
done
# shellcheck disable=SC2086
"$slmops" finetune $K -o "$work/k.gguf" --log "$work/k.log" --resume "$work/k.gguf.checkpoints" \
    >"$work/out" 2>"$work/err"
rc=$?
steps=$(cut -d, -f1 "$work/k.log" | tr -d '{"step:' | tr '\n' ' ')
if [ $rc -eq 0 ] && [ $kills -ge 3 ] && [ $refused -eq 0 ] &&
    [ "$steps" = "$(seq 1 24 | tr '\n' ' ')" ] && why=$(same "$work/k-ref.log" "$work/k.log" 2>&1) &&
    cmp -s "$work/k-ref.gguf" "$work/k.gguf"; then
    ok "SIGKILL $kills times: the last checkpoint loaded each time; the losses and model equal the uninterrupted run's; the log has each step once"
else not_ok "SIGKILL: $kills kills, $refused refused, exit $rc, log steps $steps, $why: $(cat "$work/err" "$work/k.err")"; fi

# ---- damaged checkpoints ----
# a2.checkpoints holds step-00000004 and step-00000008 of a LoRA run.
R="$S -t 2 -o $work/r"
for f in params.safetensors optimizer.safetensors state.json manifest.json; do
    for damage in flip missing truncated; do
        rm -rf "$work/bad" && mkdir "$work/bad" && cp -R "$work/a2.checkpoints/step-00000008" "$work/bad/" ||
            exit 99
        p=$work/bad/step-00000008/$f
        case $damage in
        flip) "$py" -c "import sys; p = sys.argv[1]; b = bytearray(open(p, 'rb').read()); b[len(b) // 2] ^= 0x10; open(p, 'wb').write(b)" "$p" ;;
        missing) rm "$p" ;;
        truncated) "$py" -c "import os, sys; os.truncate(sys.argv[1], os.path.getsize(sys.argv[1]) // 2)" "$p" ;;
        esac
        # A flipped byte of the manifest may fall in a file's hash: then that file
        # is named, as no checksum can tell which side is damaged.
        want=$f
        [ $f$damage = manifest.jsonflip ] && want='[a-z.]+'
        # shellcheck disable=SC2086
        expect_fail "$f $damage: refused naming it" 1 "step-00000008/$want" \
            "$slmops" finetune $R --resume "$work/bad/step-00000008"
    done
done
rm -rf "$work/bad" && cp -R "$work/a2.checkpoints" "$work/bad" || exit 99
printf 'x' >>"$work/bad/step-00000008/params.safetensors"
# shellcheck disable=SC2086
if "$slmops" finetune $R --log "$work/r.log" --resume "$work/bad" >/dev/null 2>"$work/err" &&
    grep -q "step-00000008.*skipped" "$work/err" && same "$work/a2.log" "$work/r.log" 5 >/dev/null 2>&1; then
    ok "a damaged newest checkpoint is skipped, named, and the one before resumes"
else not_ok "damaged newest checkpoint: $(cat "$work/err")"; fi

# ---- bad data lines ----
printf '{"text": "Once upon a time there was a cat."}\n{"text": 5}\n{"prompt": "Lily", "completion": " was happy."}\nnot json\n' \
    >"$work/bad.jsonl"
expect_fail "a bad data line is refused naming the file and line" 1 'bad.jsonl:2: "text" must be a string' \
    "$slmops" finetune -m "$base" --data "$work/bad.jsonl" --ctx 32 --steps 1 -o "$work/x"
if "$slmops" finetune -m "$base" --data "$work/bad.jsonl" --ctx 32 --steps 1 --skip-bad-lines \
    -o "$work/x" --json >"$work/out" 2>"$work/err" &&
    [ "$("$py" -c "import json, sys; print(json.load(open(sys.argv[1]))['skipped_lines'])" "$work/out")" = 2 ] &&
    grep -q "skipped 2 bad lines (the first: .*bad.jsonl:2" "$work/err"; then
    ok "--skip-bad-lines counts and reports the 2 bad lines"
else not_ok "--skip-bad-lines: $(cat "$work/err")"; fi

# The live progress line on a terminal (script(1) lends one): rewritten in place
# with \r, the step of the total, loss, validation loss, learning rate, tokens/s, ETA.
script -qec "'$slmops' finetune -m '$base' --data '$work/d.txt' --ctx 64 --steps 3 --val-split 0.2 \
    -o '$work/tty'" "$work/tty.txt" >/dev/null 2>&1
if tr '\r' '\n' <"$work/tty.txt" |
    grep -Eq '^step 3/3  loss [0-9.]+  val [0-9.]+  lr [0-9.e-]+  [0-9]+ tok/s  ETA [0-9]+m[0-9]+s'; then
    ok "a terminal sees the live progress line"
else not_ok "no progress line on a terminal: $(head -c 400 "$work/tty.txt")"; fi

# {"messages"} lines with a named chat template: 12 conversations train.
"$py" -c '
import json
for i in range(12):
    print(json.dumps({"messages": [{"role": "user", "content": "What is %d plus %d?" % (i, i)},
                                   {"role": "assistant", "content": "It is %d." % (2 * i)}]}))' >"$work/msg.jsonl"
if "$slmops" finetune -m "$base" --data "$work/msg.jsonl" --chat-template chatml --ctx 128 --steps 2 \
    -o "$work/m" --json >"$work/out" 2>"$work/err" &&
    [ "$("$py" -c "import json, sys; print(json.load(open(sys.argv[1]))['train_examples'])" "$work/out")" = 12 ]; then
    ok "{\"messages\"} lines train with --chat-template chatml"
else not_ok "messages with chatml: $(cat "$work/err")"; fi
finish
