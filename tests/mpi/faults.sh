#!/bin/sh
# Issue 13, acceptance 3-4: a rank killed mid-run ends the 2-rank job within 30 s with
# a message naming it, and the run resumes from its last checkpoint to the curve of an
# uninterrupted run; a rank that hangs (stopped) is named by the collective watchdog
# within SLMOPS_COMM_TIMEOUT; a rank given a different model file or different
# settings is refused at start, naming the rank and what differs.
. "${top_srcdir:?run through make check}/tests/mpi/lib.sh"
need gguf/stories260K.gguf text/tinyshakespeare_input.txt
base=$fx/gguf/stories260K.gguf
py=${PYTHON3:-python3}
run() { "$@" >"$work/out" 2>"$work/err" || { echo "FAIL: $*"; cat "$work/out" "$work/err"; exit 1; }; }
head -c 8000 "$fx/text/tinyshakespeare_input.txt" >"$work/d.txt"
S="-m $base --data $work/d.txt --ctx 64 --batch 2 --grad-accum 2 --steps 60 --seed 3 -t 1
   --lr 1e-2 --save-every 5 --keep 0"

# rank_pid MPIRUN_PID RANK: the process of that rank (a child of mpirun).
rank_pid() {
    for p in $(ps -o pid= --ppid "$1"); do
        tr '\0' '\n' <"/proc/$p/environ" 2>/dev/null | grep -qx "OMPI_COMM_WORLD_RANK=$2" &&
            { echo "$p"; return; }
    done
}
# wait_lines FILE N PID: until FILE has N lines (or PID ends, or 60 s pass).
wait_lines() {
    i=0
    while [ "$(cat "$1" 2>/dev/null | wc -l)" -lt "$2" ] && kill -0 "$3" 2>/dev/null &&
        [ $i -lt 600 ]; do
        sleep 0.1
        i=$((i + 1))
    done
}
# fault SIGNAL NAME: start a 2-rank run, send SIGNAL to rank 1 after 8 steps, and
# wait for mpirun: $secs is how long it took to end, $work/NAME.out what it printed.
fault() {
    rm -rf "$work/$2" "$work/$2.checkpoints" "$work/$2.log"
    # shellcheck disable=SC2086
    "$mpirun" --oversubscribe -x SLMOPS_COMM_TIMEOUT -np 2 "$slmops" finetune $S \
        -o "$work/$2" --log "$work/$2.log" >"$work/$2.out" 2>&1 &
    mp=$!
    wait_lines "$work/$2.log" 8 "$mp"
    victim=$(rank_pid "$mp" 1)
    t0=$(date +%s)
    [ -n "$victim" ] && kill "-$1" "$victim"
    wait "$mp"
    secs=$(($(date +%s) - t0))
    # A stopped rank keeps the launcher's SIGTERM pending: let it act.
    [ -n "$victim" ] && kill -CONT "$victim" 2>/dev/null
    [ -n "$victim" ] && kill -KILL "$victim" 2>/dev/null
    [ -n "$victim" ] || echo "(no rank 1 found under mpirun $mp)"
}

# ---- the uninterrupted reference, one process ----
# shellcheck disable=SC2086
run "$slmops" finetune $S -o "$work/ref" --log "$work/ref.log"

# ---- rank 1 killed ----
SLMOPS_COMM_TIMEOUT=20
export SLMOPS_COMM_TIMEOUT
fault KILL k
if [ "$secs" -le 30 ] && grep -q "rank 1" "$work/k.out"; then
    ok "rank 1 killed: the job ended in ${secs} s naming rank 1"
else not_ok "rank 1 killed: ${secs} s, output:"; sed 's/^/    /' "$work/k.out"; fi
# shellcheck disable=SC2086
run mpi 2 "$slmops" finetune $S -o "$work/k" --log "$work/k.log" --resume "$work/k.checkpoints"
if "$py" - "$work/ref.log" "$work/k.log" <<'PY'
import json, sys
a, b = ({json.loads(l)["step"]: json.loads(l)["loss"] for l in open(p)} for p in sys.argv[1:])
steps = [json.loads(l)["step"] for l in open(sys.argv[2])]
ok = sorted(steps) == list(range(1, 61)) and all(abs(a[s] - b[s]) <= 1e-5 * abs(a[s]) for s in a)
sys.exit(0 if ok else 1)
PY
then ok "the killed run resumed on 2 ranks: steps 1-60 once each, the uninterrupted losses"
else not_ok "the resumed run's log differs from the uninterrupted run's"; fi

# ---- rank 1 hangs: the watchdog ----
SLMOPS_COMM_TIMEOUT=4
fault STOP s
if [ "$secs" -le 30 ] && grep -Eq "rank 1 (did not reach|stopped answering inside) collective" "$work/s.out"; then
    ok "rank 1 stopped: the watchdog ended the job in ${secs} s naming rank 1"
else not_ok "rank 1 stopped: ${secs} s, output:"; sed 's/^/    /' "$work/s.out"; fi
SLMOPS_COMM_TIMEOUT=20

# ---- wrong launches ----
cp "$base" "$work/other.gguf"
size=$(wc -c <"$base")
# One byte of the last tensor's data: the file still loads, but it is another model.
printf '\001' | dd of="$work/other.gguf" bs=1 seek=$((size - 16)) conv=notrunc 2>/dev/null
A="--data $work/d.txt --ctx 64 --batch 2 --grad-accum 2 --steps 4 -t 1 -o $work/w"
# shellcheck disable=SC2086
expect_fail "a rank given a different model file is refused, naming it" 1 \
    'rank 1 of 2 was given a different model file' \
    "$mpirun" --oversubscribe -np 1 "$slmops" finetune -m "$base" $A : \
    -np 1 "$slmops" finetune -m "$work/other.gguf" $A
[ ! -e "$work/w" ] && ok "the refused launch wrote nothing" || not_ok "the refused launch wrote $work/w"
# shellcheck disable=SC2086
expect_fail "a rank given different settings is refused" 1 \
    'rank 1 of 2 was given different settings' \
    "$mpirun" --oversubscribe -np 1 "$slmops" finetune -m "$base" $A : \
    -np 1 "$slmops" finetune -m "$base" $A --lr 5e-3
finish
