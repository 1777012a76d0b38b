#!/bin/sh
# The files verbs write and read (issue 7 items 1, 2, 4, 5): OUT that is not a
# regular file, a link, or an input; write errors; SIGTERM/SIGHUP/SIGINT during a
# write and SIGKILL leftovers; FIFOs and folders given as inputs (time-limited).
set -u
. "$top_srcdir/tests/cli/lib.sh"
need gguf/stories260K.gguf text/tinystories_sample.txt
m=$fx/gguf/stories260K.gguf
py=${PYTHON3:-python3}
[ "$py" = : ] && py=python3
limit=20   # seconds: a refused case that takes longer hangs

# A fresh folder per case; listing of a folder, to see what changed or was left.
case_dir() { d=$work/$1; mkdir -p "$d"; echo "$d"; }
listing() { (cd "$1" && ls -lA --time-style=+ | sed 1d | awk '{print $1, $5, $NF}'); }
same_listing() { # NAME DIR BEFORE
    after=$(listing "$2")
    [ "$after" = "$3" ] && ok "$1: nothing changed or left" ||
        { not_ok "$1: the folder changed:"; echo "$3" | sed 's/^/    before: /'; echo "$after" | sed 's/^/    after:  /'; }
}
run() { timeout "$limit" "$slmops" "$@"; }

# ---- item 1: OUT that exists and is not a regular file ----

d=$(case_dir fifo)
mkfifo "$d/out.gguf"
before=$(listing "$d")
expect_fail "convert to a FIFO is refused" 1 "out.gguf: is a FIFO, not a regular file; not replacing it" \
    run convert "$m" "$d/out.gguf"
[ -p "$d/out.gguf" ] && ok "the FIFO is still a FIFO" || not_ok "the FIFO was replaced"
same_listing "convert to a FIFO" "$d" "$before"

d=$(case_dir socket)
if "$py" -c 'import socket, sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])' "$d/out.gguf"; then
    before=$(listing "$d")
    expect_fail "quantize to a socket is refused" 1 "is a socket, not a regular file; not replacing it" \
        run quantize "$m" "$d/out.gguf" --type q8_0
    [ -S "$d/out.gguf" ] && ok "the socket is still a socket" || not_ok "the socket was replaced"
    same_listing "quantize to a socket" "$d" "$before"
else
    not_ok "cannot make a socket with $py"
fi

d=$(case_dir device)
if mknod "$d/null" c 1 3 2>/dev/null; then
    before=$(listing "$d")
    expect_fail "quantize to a character device is refused" 1 \
        "null: is a character device, not a regular file; not replacing it" \
        run quantize "$m" "$d/null" --type q8_0
    [ -c "$d/null" ] && ok "the device node is still a device node" || not_ok "the device node was replaced"
    same_listing "quantize to a device node" "$d" "$before"
    ln -s null "$d/link.gguf"
    expect_fail "init to a link to a device is refused" 1 "link.gguf \(a link to .*null\): is a character device" \
        run init --arch llama --preset stories15m --random "$d/link.gguf"
    [ -c "$d/null" ] && [ -L "$d/link.gguf" ] && ok "the link and the node are kept" || not_ok "the link or node changed"
else
    echo "# mknod is not permitted here (not root): the device node case runs in tests/output/test-output (/dev/null, check only)"
fi

d=$(case_dir directory)
mkdir "$d/out.gguf"
expect_fail "convert to a directory is refused" 1 "out.gguf: is a directory, not a regular file; not replacing it" \
    run convert "$m" "$d/out.gguf"
expect_fail "init to a FIFO is refused before building" 1 "is a FIFO, not a regular file" \
    sh -c 'mkfifo "$1/init.gguf" && exec timeout '"$limit"' "$2" init --arch llama --preset stories15m --random "$1/init.gguf"' \
    sh "$d" "$slmops"

# ---- item 1: OUT is a symbolic link ----

d=$(case_dir link)
echo old > "$d/real.gguf"
ln -s real.gguf "$d/link.gguf"
if run convert "$m" "$d/link.gguf" 2>"$work/err"; then
    [ -L "$d/link.gguf" ] && [ "$(readlink "$d/link.gguf")" = real.gguf ] &&
        ok "convert to a link keeps the link" || not_ok "convert to a link replaced the link"
    cmp -s "$m" "$d/real.gguf" && ok "convert to a link replaces the file it names" ||
        not_ok "the file the link names was not replaced"
else
    not_ok "convert to a link failed: $(cat "$work/err")"
fi
ln -s made.gguf "$d/dangling.gguf"
run convert "$m" "$d/dangling.gguf" 2>"$work/err" && [ -L "$d/dangling.gguf" ] && cmp -s "$m" "$d/made.gguf" &&
    ok "convert to a dangling link creates its target" || not_ok "dangling link: $(cat "$work/err")"

# ---- item 2: OUT is one of the job's inputs ----

d=$(case_dir input)
cp "$m" "$d/in.gguf"
ln "$d/in.gguf" "$d/hard.gguf"
ln -s in.gguf "$d/soft.gguf"
head -c 20000 "$fx/text/tinystories_sample.txt" > "$d/text.txt"
ln -s text.txt "$d/text.gguf"
before=$(listing "$d")
expect_fail "convert to its input is refused" 1 "refusing to overwrite the input" \
    run convert "$d/in.gguf" "$d/in.gguf"
expect_fail "convert to a hard link of its input is refused" 1 "refusing to overwrite the input" \
    run convert "$d/in.gguf" "$d/hard.gguf"
expect_fail "quantize to a symlink to its input is refused" 1 "refusing to overwrite the input" \
    run quantize "$d/soft.gguf" "$d/in.gguf" --type q8_0
expect_fail "quantize to a link to its --eval text is refused" 1 "is the input .*text.txt; refusing to overwrite" \
    run quantize "$d/in.gguf" "$d/text.gguf" --type q8_0 --eval "$d/text.txt"
same_listing "outputs that are inputs" "$d" "$before"
cmp -s "$m" "$d/in.gguf" && ok "the input is intact" || not_ok "the input changed"

# A folder output that holds the input: replacing the folder would delete it.
d=$(case_dir folder-input)
run convert "$m" "$d/hf" --to safetensors 2>"$work/err" || not_ok "convert to a folder: $(cat "$work/err")"
cp "$m" "$d/hf/model.safetensors"   # a GGUF under a name the folder writer owns
before=$(listing "$d/hf")
expect_fail "convert into the folder holding its input is refused" 1 "holds the input" \
    run convert "$d/hf/model.safetensors" "$d/hf" --to safetensors
same_listing "folder holding the input" "$d/hf" "$before"

# ---- write errors: nothing half-written is kept, the old OUT stays ----

d=$(case_dir write-error)
cp "$m" "$d/old.gguf"
run convert "$m" "$d/hf" --to safetensors 2>/dev/null
before=$(listing "$d")
# RLIMIT_FSIZE makes the kernel fail the writes (EFBIG) once the file passes 64 blocks.
expect_fail "a write error fails convert with the reason" 1 "File too large" \
    sh -c 'trap "" XFSZ; ulimit -f 64 && exec "$@"' sh "$slmops" quantize "$m" "$d/old.gguf" --type f32
expect_fail "a write error fails a folder output with the reason" 1 "File too large" \
    sh -c 'trap "" XFSZ; ulimit -f 64 && exec "$@"' sh "$slmops" convert "$m" "$d/hf" --to safetensors
same_listing "write errors" "$d" "$before"
cmp -s "$m" "$d/old.gguf" && ok "the old OUT is intact after a write error" || not_ok "the old OUT changed"

# A full file system, where this machine lets us mount a small one privately.
if unshare -m true 2>/dev/null; then
    d=$(case_dir full)
    mkdir "$d/mnt"
    unshare -m --propagation private sh -c '
        mount -t tmpfs -o size=256k tmpfs "$1" || exit 99
        echo previous > "$1/full.gguf"
        "$2" convert "$3" "$1/full.gguf" 2>"$4/err"; rc=$?
        ls -A "$1" > "$4/left"; cat "$1/full.gguf" > "$4/kept"
        exit $rc' sh "$d/mnt" "$slmops" "$m" "$d"
    rc=$?
    if [ $rc -eq 1 ] && grep -q "No space left on device" "$d/err" && [ "$(cat "$d/left")" = full.gguf ] &&
        [ "$(cat "$d/kept")" = previous ]; then
        ok "a full file system fails convert, leaves no temporary and keeps the old OUT"
    else
        not_ok "full file system: exit $rc, left: $(cat "$d/left" 2>/dev/null), $(cat "$d/err" 2>/dev/null)"
    fi
else
    echo "# unshare -m is not permitted here: the full-file-system case is covered by RLIMIT_FSIZE above"
fi

# ---- item 4: signals during a write, and SIGKILL leftovers ----

# wait_temp DIR NAME PID: until NAME.slmops-tmp.PID.* exists and holds data.
wait_temp() {
    i=0
    while [ $i -lt 400 ]; do
        for f in "$1/$2".slmops-tmp."$3".*; do
            [ -s "$f" ] || [ -s "$f/model.safetensors" ] && return 0
        done
        sleep 0.05
        i=$((i + 1))
    done
    return 1
}

signal_case() { # SIGNAL NUMBER VERB-ARGS...: the signal while OUT is written
    sig=$1 num=$2
    shift 2
    d=$(case_dir "sig-$sig")
    out=$d/out.gguf
    [ "${1:-}" = folder ] && { out=$d/hf; shift; }
    run convert "$m" "$out" "$@" 2>/dev/null
    echo "user's note" > "$d/keep.txt"
    before=$(listing "$d")
    [ -d "$out" ] && sum_before=$(cat "$out"/* | cksum) || sum_before=$(cksum < "$out")
    SLMOPS_TEST_OUTPUT_DELAY_MS=30000 env --default-signal=INT,TERM,HUP "$slmops" convert "$m" "$out" "$@" \
        2>"$work/sig-err" &
    pid=$!
    if ! wait_temp "$d" "$(basename "$out")" $pid; then
        not_ok "SIG$sig: no temporary appeared"
        kill -KILL $pid 2>/dev/null
        wait $pid
        return
    fi
    kill -"$sig" $pid
    { wait $pid; } 2>/dev/null
    rc=$?
    [ $rc -eq $((128 + num)) ] && ok "SIG$sig during a write exits $((128 + num))" ||
        not_ok "SIG$sig during a write exits $rc"
    same_listing "SIG$sig during a write" "$d" "$before"
    [ -d "$out" ] && sum=$(cat "$out"/* | cksum) || sum=$(cksum < "$out")
    [ "$sum" = "$sum_before" ] && ok "SIG$sig: the previous OUT is untouched" || not_ok "SIG$sig: OUT changed"
}
signal_case TERM 15
signal_case HUP 1
signal_case INT 2
signal_case TERM 15 folder --to safetensors

# quantize too: Ctrl-C while OUT is written ends it with 130 and keeps nothing (it
# used to catch SIGINT itself, finish the write and exit 0).
d=$(case_dir sig-quantize)
"$slmops" quantize "$m" "$d/q.gguf" --type q8_0 >/dev/null 2>&1
before=$(listing "$d")
sum_before=$(cksum < "$d/q.gguf")
SLMOPS_TEST_OUTPUT_DELAY_MS=30000 env --default-signal=INT "$slmops" quantize "$m" "$d/q.gguf" \
    --type q4_0 >/dev/null 2>&1 &
pid=$!
if wait_temp "$d" q.gguf $pid; then
    kill -INT $pid
    { wait $pid; } 2>/dev/null
    rc=$?
    [ $rc -eq 130 ] && ok "quantize: SIGINT during the write exits 130" ||
        not_ok "quantize: SIGINT during the write exits $rc"
    same_listing "quantize: SIGINT during the write" "$d" "$before"
    [ "$(cksum < "$d/q.gguf")" = "$sum_before" ] && ok "quantize: the previous OUT is untouched" ||
        not_ok "quantize: OUT changed"
else
    not_ok "quantize: no temporary appeared"
    kill -KILL $pid 2>/dev/null
    wait $pid
fi

# SIGKILL cannot be caught: the next write of the same OUT removes the leftover.
d=$(case_dir sigkill)
SLMOPS_TEST_OUTPUT_DELAY_MS=30000 "$slmops" convert "$m" "$d/out.gguf" 2>/dev/null &
pid=$!
if wait_temp "$d" out.gguf $pid; then
    kill -KILL $pid
    { wait $pid; } 2>/dev/null
    ls "$d"/out.gguf.slmops-tmp.$pid.* >/dev/null 2>&1 && ok "SIGKILL leaves a temporary named with its PID" ||
        not_ok "SIGKILL left no temporary named with PID $pid: $(ls -A "$d")"
    run convert "$m" "$d/out.gguf" 2>"$work/err" || not_ok "the next convert failed: $(cat "$work/err")"
    [ "$(ls -A "$d")" = out.gguf ] && ok "the next run removes a dead writer's temporary" ||
        not_ok "left after the next run: $(ls -A "$d")"
else
    not_ok "SIGKILL: no temporary appeared"
    kill -KILL $pid 2>/dev/null
fi

# A live writer's temporary is not taken for a leftover by a concurrent run.
d=$(case_dir concurrent)
SLMOPS_TEST_OUTPUT_DELAY_MS=3000 "$slmops" convert "$m" "$d/out.gguf" 2>"$d/err" &
pid=$!
if wait_temp "$d" out.gguf $pid; then
    run convert "$m" "$d/out.gguf" 2>"$work/err" || not_ok "the second convert failed: $(cat "$work/err")"
    ls "$d"/out.gguf.slmops-tmp.$pid.* >/dev/null 2>&1 && ok "a running writer's temporary is kept" ||
        not_ok "a concurrent run removed a live writer's temporary"
    wait $pid && ok "the first writer still finishes" || not_ok "the first writer failed: $(cat "$d/err")"
    [ "$(ls -A "$d")" = "err
out.gguf" ] && ok "two writers leave one OUT" || not_ok "left: $(ls -A "$d")"
else
    not_ok "concurrent: no temporary appeared"
    { wait $pid; } 2>/dev/null
fi

# ---- item 5: FIFOs and folders as inputs get an error, not a hang ----

d=$(case_dir inputs)
mkfifo "$d/pipe"
mkdir "$d/folder"
expect_fail "generate -m FIFO" 1 "pipe: is a FIFO, not a regular file" run generate -m "$d/pipe" -p hi
expect_fail "info FIFO" 1 "pipe: is a FIFO, not a regular file" run info "$d/pipe"
expect_fail "chat -m FIFO" 1 "pipe: is a FIFO, not a regular file" sh -c 'exec "$@" </dev/null' sh \
    timeout "$limit" "$slmops" chat -m "$d/pipe"
expect_fail "tokenize --tokenizer FIFO" 1 "pipe: is a FIFO, not a regular file" \
    run tokenize --tokenizer "$d/pipe" hello
expect_fail "tokenize -f FIFO" 1 "pipe: is a FIFO, not a regular file" run tokenize -m "$m" -f "$d/pipe"
expect_fail "tokenize -f folder" 1 "folder: is a directory, not a regular file" run tokenize -m "$m" -f "$d/folder"
expect_fail "eval --perplexity FIFO" 1 "pipe: is a FIFO, not a regular file" \
    run eval -m "$m" --perplexity "$d/pipe"
expect_fail "eval --perplexity folder" 1 "folder: is a directory, not a regular file" \
    run eval -m "$m" --perplexity "$d/folder"
expect_fail "quantize --eval FIFO" 1 "pipe: is a FIFO, not a regular file" \
    run quantize "$m" "$d/q.gguf" --type q8_0 --eval "$d/pipe"
expect_fail "convert --from gguf FIFO" 1 "pipe: is a FIFO, not a regular file" \
    run convert "$d/pipe" "$d/c.gguf" --from gguf
expect_fail "convert --from safetensors FIFO" 1 "pipe: is a FIFO, not a regular file" \
    run convert "$d/pipe" "$d/c.gguf" --from safetensors
[ "$(ls -A "$d")" = "folder
pipe" ] && ok "refused inputs leave nothing" || not_ok "left: $(ls -A "$d")"

finish
