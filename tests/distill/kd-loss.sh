#!/bin/sh
# Issue 9, section 2: the kd method's loss (trainer-distill, through add_loss and the
# train job's teacher_logits) equals a numpy oracle's on the first batch that
# `slmops distill --dump-grads` writes: forward-kl with the teacher's top 8 logits,
# reverse-kl with all of them and with the top 16 over two rows (kd_oracle.py).
. "${top_srcdir:?run through make check}/tests/cli/lib.sh"
need gguf/stories260K.gguf llama2c/stories260K.bin
needs_python numpy
T=$fx/gguf/stories260K.gguf
P=$top_srcdir/tests/distill/data/story-prompts.txt
check() { # NAME LOSS ALPHA TEMP TOP_K [more distill options]
    name=$1 loss=$2 alpha=$3 temp=$4 k=$5
    shift 5
    if ! "$slmops" distill -m "$T" --prompts "$P" --samples-per-prompt 2 -n 48 \
        --student-preset student-micro -o "$work/s.gguf" --ctx 128 -t 2 \
        --dump-grads "$work/$name.st" --kd-loss "$loss" --alpha "$alpha" \
        --temperature "$temp" --top-k "$k" "$@" >"$work/out" 2>&1; then
        not_ok "$name: distill --dump-grads failed"; cat "$work/out"; return
    fi
    if "${PYTHON3:-python3}" "$top_srcdir/tests/distill/kd_oracle.py" "$work/$name.st" \
        "$fx/llama2c/stories260K.bin" "$loss" "$alpha" "$temp" "$k"; then
        ok "$name: the loss equals the oracle's"
    else
        not_ok "$name: the loss differs from the oracle's"
    fi
}
check forward-top8 forward-kl 0.5 2 8
check reverse-all reverse-kl 0.7 1.5 0
check reverse-top16 reverse-kl 0.3 1 16 -b 2
[ ! -e "$work/s.gguf" ] && ok "--dump-grads writes no student" || not_ok "a student was written"
finish
