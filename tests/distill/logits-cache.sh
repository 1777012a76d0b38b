#!/bin/sh
# Issue 9, section 2: the teacher's top-k logits cached on disk (--logits-cache) are
# computed once and reused. Over 2 epochs: without the cache the teacher runs every
# micro-batch; with a new cache only the first epoch's (the second epoch, shuffled
# into other batches, reads every document from it); a second run with the cache runs
# the teacher on none (the counters are the train report's teacher_batches and
# teacher_cached). The step losses of a cached run equal the online run's (to 1e-5
# relative: the second epoch's teacher logits come from documents packed as in the
# first, and a kernel may round a document at another offset differently; equal bit
# for bit on this machine when written), and two cached runs' are equal bit for bit,
# students included. A damaged cache file is recomputed with a warning.
. "${top_srcdir:?run through make check}/tests/cli/lib.sh"
need gguf/stories260K.gguf
T=$fx/gguf/stories260K.gguf
P=$top_srcdir/tests/distill/data/story-prompts.txt
py=${PYTHON3:-python3}
run() { # NAME OPTIONS...
    name=$1
    shift
    "$slmops" distill -m "$T" --prompts "$P" -n 24 --student-preset student-micro --ctx 128 \
        --epochs 2 --lr 1e-2 -t 2 --top-k 16 --data-out "$work/d.jsonl" \
        --student-out "$work/i.gguf" -o "$work/$name.gguf" --log "$work/$name.log" --json "$@" \
        >"$work/$name.json" 2>"$work/$name.err" || { not_ok "$name failed"; cat "$work/$name.err"; }
}
counts() { # NAME RUNS CACHED: the report's teacher counters
    $py - "$work/$1.json" "$2" "$3" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))["train"]
got = (r["teacher_batches"], r["teacher_cached"])
print("teacher_batches %d, teacher_cached %d (steps %d)" % (got + (r["steps"],)))
want = tuple(int(x) if x != "half" else r["steps"] // 2 for x in sys.argv[2:4])
sys.exit(0 if got == want else "want %s" % (want,))
PY
}
same() { # A B [TOL]: the same step losses (to TOL relative) and, without TOL, student
    $py - "$work/$1.log" "$work/$2.log" "${3:-0}" <<'PY' && { [ -n "$3" ] || cmp -s "$work/$1.gguf" "$work/$2.gguf"; }
import json, sys
a, b = ([(d["step"], d["loss"], d["terms"]) for d in map(json.loads, open(p))] for p in sys.argv[1:3])
tol = float(sys.argv[3])
close = lambda x, y: abs(x - y) <= tol * max(1.0, abs(x))
ok = len(a) == len(b) > 2 and all(
    p[0] == q[0] and close(p[1], q[1]) and p[2].keys() == q[2].keys() and
    all(close(p[2][k], q[2][k]) for k in p[2]) for p, q in zip(a, b))
sys.exit(0 if ok else "losses differ")
PY
}
run online
steps=$($py -c 'import json, sys; print(json.load(open(sys.argv[1]))["train"]["steps"])' "$work/online.json")
counts online "$steps" 0 && ok "without a cache the teacher runs every micro-batch" || not_ok "online counters"
run first --logits-cache "$work/lc"
counts first half half && ok "a new cache: the teacher runs the first epoch only" || not_ok "first counters"
same online first 1e-5 && ok "the first cached run's step losses equal the online run's" || not_ok "first differs"
run second --logits-cache "$work/lc"
counts second 0 "$steps" && ok "a second run with the cache runs the teacher on no batch" || not_ok "second counters"
same first second && ok "the second cached run's losses and student equal the first's bit for bit" || not_ok "second differs"
[ "$(ls "$work/lc" | wc -l)" -eq 1 ] && ls "$work/lc" | grep -Eq '^[0-9a-f]{16}\.tkc$' &&
    ok "one cache file, named by its key, no temporary left" || { not_ok "cache folder"; ls -la "$work/lc"; }

f=$(ls "$work/lc"/*.tkc)
head -c 20000 "$f" >"$work/cut" && mv "$work/cut" "$f"
run damaged --logits-cache "$work/lc"
grep -q "cut short" "$work/damaged.err" && same first damaged 1e-5 &&
    ok "a damaged cache file is recomputed with a warning, to the same losses" ||
    { not_ok "damaged cache"; cat "$work/damaged.err"; }
run again --logits-cache "$work/lc"
counts again 0 "$steps" && ok "the recomputed cache serves the next run whole" || not_ok "rewritten cache"
expect_fail "--logits-cache needs --top-k" 2 "give --top-k K too" \
    "$slmops" distill -m "$T" --prompts "$P" --student-preset student-micro -o "$work/x.gguf" \
    --logits-cache "$work/lc"
finish
