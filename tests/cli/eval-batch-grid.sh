#!/bin/sh
# Issue 7, defect 8: `eval` gives the same perplexity for every --batch (1, 2, odd,
# half the context, one less than it, larger than it) as with the default batch of
# the same --ctx; a context too small to score anything is refused, not crashed on.
. "$(dirname "$0")/lib.sh"
need gguf/stories260K.gguf text/tinystories_sample.txt
m=$fx/gguf/stories260K.gguf
text=$fx/text/tinystories_sample.txt

ppl() { # CTX [BATCH]: the final estimate, or the error
    "$slmops" eval -m "$m" --perplexity "$text" --ctx "$1" ${2:+--batch "$2"} 2>&1 |
        sed -n 's/^Final estimate: PPL = \([0-9.]*\).*/\1/p;s/^slmops eval: //p'
}

for ctx in 3 8 33 128; do
    want=$(ppl "$ctx")
    case $want in [0-9]*) ok "ctx $ctx: default batch gives $want" ;;
                  *) not_ok "ctx $ctx: default batch: $want"; continue ;; esac
    half=$((ctx / 2))
    for batch in 1 2 $half $((half + 1)) $((ctx - 1)) "$ctx" $((ctx + 5)); do
        [ "$batch" -ge 1 ] || continue
        got=$(ppl "$ctx" "$batch")
        [ "$got" = "$want" ] && ok "ctx $ctx batch $batch: $got" ||
            not_ok "ctx $ctx batch $batch: '$got', want $want"
    done
done
for ctx in 1 2; do
    expect_fail "ctx $ctx is refused with the reason" 2 "--ctx $ctx scores no token" \
        "$slmops" eval -m "$m" --perplexity "$text" --ctx "$ctx"
done
finish
