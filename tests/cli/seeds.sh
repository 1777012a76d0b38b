#!/bin/sh
# Issue 7, defect 10: seeds are unsigned 64-bit everywhere; -1 draws a new one (as in
# llama.cpp); values outside 0..2^64-1 are refused, not clamped.
. "$(dirname "$0")/lib.sh"
need gguf/stories260K.gguf
m=$fx/gguf/stories260K.gguf

seed_of() { sed -n 's/^  "seed": \([^,]*\),*$/\1/p' "$1"; }

"$slmops" generate -m "$m" -n 4 --seed 18446744073709551615 --json >"$work/max" 2>/dev/null
[ "$(seed_of "$work/max")" = 18446744073709551615 ] && ok "2^64-1 is kept and printed unsigned" ||
    not_ok "2^64-1 printed as '$(seed_of "$work/max")'"
python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["seed"] == 2**64-1' \
    "$work/max" && ok "the --json document parses, seed 2^64-1" || not_ok "--json with seed 2^64-1"

negative=0
for i in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16; do
    "$slmops" generate -m "$m" -n 1 --json >"$work/r$i" 2>/dev/null || not_ok "run $i failed"
    case $(seed_of "$work/r$i") in -*|"") negative=$((negative + 1)) ;; esac
done
[ $negative -eq 0 ] && ok "16 random seeds, none printed negative" || not_ok "$negative seeds negative"
"$slmops" generate -m "$m" -n 1 --seed -1 --json >"$work/a" 2>/dev/null
"$slmops" generate -m "$m" -n 1 --seed -1 --json >"$work/b" 2>/dev/null
[ -n "$(seed_of "$work/a")" ] && [ "$(seed_of "$work/a")" != "$(seed_of "$work/b")" ] &&
    ok "--seed -1 draws a new seed each run" || not_ok "--seed -1"
"$slmops" generate -m "$m" -n 24 --seed 9223372036854775809 >"$work/t1" 2>/dev/null
"$slmops" generate -m "$m" -n 24 --seed=9223372036854775809 >"$work/t2" 2>/dev/null
cmp -s "$work/t1" "$work/t2" && ok "a seed above 2^63 gives the same text twice" ||
    not_ok "same seed, different text"

# The exact-number rewrite touches only the seed: a prompt that looks like its
# marker stays text, and the document stays valid JSON.
"$slmops" generate -m "$m" -n 1 --seed 18446744073709551615 -p "$(printf '\001u64:12ab')" \
    --json >"$work/mark" 2>/dev/null
python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["prompt"] == "\x01u64:12ab", d["prompt"]; assert d["seed"] == 2**64-1' \
    "$work/mark" && ok "a prompt shaped like the seed's marker stays text" || not_ok "marker in a prompt"
# A model path that is not UTF-8 still gives a JSON document.
cp "$m" "$work/$(printf 'model\377').gguf"
"$slmops" generate -m "$work/$(printf 'model\377').gguf" -n 1 --json >"$work/odd" 2>"$work/err" &&
    python3 -c 'import json,sys; json.load(open(sys.argv[1]))' "$work/odd" &&
    ok "--json with a non-UTF-8 model path" || { not_ok "--json, non-UTF-8 path"; cat "$work/err"; }

for bad in 18446744073709551616 99999999999999999999 -2 -18446744073709551615 abc 1e3 ""; do
    expect_fail "--seed '$bad' is refused" 2 "--seed needs a whole number in \[0, 18446744073709551615\], or -1" \
        "$slmops" generate -m "$m" -n 1 --seed "$bad"
done
expect_fail "init --seed beyond 2^64-1 is refused" 2 "--seed needs a whole number" \
    "$slmops" init --arch llama --preset stories15m --random --seed 18446744073709551616 "$work/x.gguf"
"$slmops" init --arch llama --preset stories15m --random --type q8_0 --seed 18446744073709551615 \
    "$work/x.gguf" 2>"$work/err" && grep -q 'seed 18446744073709551615' "$work/err" &&
    ok "init takes and reports seed 2^64-1" || not_ok "init --seed 2^64-1: $(cat "$work/err")"
finish
