#!/bin/sh
# Issue 8, acceptance 3, "it learns", on stories260K:
# 0. `slmops plugins` lists the trainer plugins with their methods (acceptance 7).
# 1. llama.cpp's own LoRA test pattern: a LoRA trained on a short text B makes greedy
#    generation from B's first words reproduce B (PEFT folder and llama.cpp GGUF
#    adapter alike), the base without the adapter still gives its reference text, the
#    base file is unchanged, and `slmops merge` gives the same text as the adapter
#    applied at run time.
# 2. tinyshakespeare, 90/10 split, ctx 128, batch 8, 40 steps (warmup 4, cosine),
#    held-out perplexity on 8 validation batches: LoRA (r 16 on q,k,v,o,gate,up,down,
#    lr 1e-2) and full fine-tuning (lr 3e-3) each lower it by at least 50%, and QLoRA
#    on an NF4 base (the same LoRA settings) ends within 5% of LoRA's.
# 3. --dump-grads (what the PyTorch oracle reads) agrees with step 1 of --log
#    (tests/train/dump_check.py).
. "${top_srcdir:?run through make check}/tests/cli/lib.sh"
need gguf/stories260K.gguf text/tinyshakespeare_input.txt reference/stories260K-greedy-256.txt
base=$fx/gguf/stories260K.gguf
py=${PYTHON3:-python3}
run() { "$@" >"$work/out" 2>"$work/err" || { echo "FAIL: $*"; cat "$work/err"; exit 1; }; }
# json FILE EXPR: a value of the JSON document in FILE (d), printed by Python.
json() { "$py" -c "import json, sys; d = json.load(open(sys.argv[1])); print($2)" "$1"; }

# ---- 0. the trainer plugins and their methods ----
run "$slmops" plugins
if grep -q "^trainer-full .*trainer" "$work/out" && grep -q "^trainer-lora .*trainer" "$work/out" &&
    ! grep -q "^trainer-.*disabled" "$work/out" &&
    grep -q "methods: full (" "$work/out" && grep -q "methods: lora (.*), qlora (" "$work/out"; then
    ok "slmops plugins lists trainer-full (full) and trainer-lora (lora, qlora)"
else not_ok "slmops plugins: $(grep -A3 trainer "$work/out")"; fi

# ---- 1. a short text, learnt by heart ----
B='Once upon a time, there was a little robot named Bolt. Bolt loved to paint the sky with bright colors every morning.'
printf '%s\n' "$B" >"$work/b.txt"
sum_before=$(cksum <"$base")
run "$slmops" finetune -m "$base" --data "$work/b.txt" --ctx 64 --steps 80 --lr 1e-2 \
    --lora-targets q,k,v,o,gate,up,down --lora-rank 8 --lora-alpha 16 -t 2 \
    -o "$work/b-peft" --output-gguf "$work/b.gguf"
# 100 bytes of B: the 40 tokens generated cover at least that much.
want=$(printf '%s' "$B" | cut -c1-100)
for ad in b-peft b.gguf; do
    run "$slmops" generate -m "$base" --lora "$work/$ad" -p "Once upon a time" --temp 0 -n 40
    got=$(cut -c1-100 <"$work/out")
    if [ "$got" = "$want" ]; then ok "LoRA ($ad) reproduces the text it was trained on"
    else not_ok "LoRA ($ad): greedy text is '$got', want '$want'"; fi
done
cp "$work/out" "$work/adapter.txt"
run "$slmops" generate -m "$base" --temp 0 -n 256
if cmp -s "$work/out" "$fx/reference/stories260K-greedy-256.txt"; then
    ok "the base without the adapter still gives its reference text"
else not_ok "the base's greedy text changed"; fi
[ "$(cksum <"$base")" = "$sum_before" ] && ok "the base file is unchanged" ||
    not_ok "training changed the base file"
run "$slmops" merge -m "$base" --lora "$work/b-peft" -o "$work/merged.gguf"
run "$slmops" generate -m "$work/merged.gguf" -p "Once upon a time" --temp 0 -n 40
if cmp -s "$work/out" "$work/adapter.txt"; then
    ok "the merged model gives the runtime adapter's text"
else not_ok "merged: '$(cat "$work/out")', runtime adapter: '$(cat "$work/adapter.txt")'"; fi

# ---- 2. held-out perplexity on tinyshakespeare ----
common="--data $fx/text/tinyshakespeare_input.txt --val-split 0.1 --val-batches 8 --ctx 128
    --batch 8 --steps 40 --warmup 4 --schedule cosine -t 2 --json"
lora="--lora-targets q,k,v,o,gate,up,down --lora-rank 16 --lora-alpha 16 --lr 1e-2"
# shellcheck disable=SC2086 # word splitting of the option lists is meant
{
    run "$slmops" finetune -m "$base" $common $lora -o "$work/ts-lora"
    cp "$work/out" "$work/lora.json"
    run "$slmops" finetune -m "$base" $common --method full --lr 3e-3 -o "$work/ts-full.gguf"
    cp "$work/out" "$work/full.json"
    run "$slmops" quantize "$base" "$work/nf4.gguf" --type nf4
    run "$slmops" finetune -m "$work/nf4.gguf" $common $lora --method qlora -o "$work/ts-qlora"
    cp "$work/out" "$work/qlora.json"
}
for m in lora full; do
    verdict=$(json "$work/$m.json" "'%.3f %.3f %s' % (d['val_ppl_start'], d['val_ppl'], d['val_ppl'] <= 0.5 * d['val_ppl_start'])")
    case $verdict in
    *True) ok "$m: held-out perplexity ${verdict% *} (start, end): down by at least 50% in 40 steps" ;;
    *) not_ok "$m: held-out perplexity ${verdict% *} (start, end): not down by 50%" ;;
    esac
done
lp=$(json "$work/lora.json" "d['val_ppl']")
qp=$(json "$work/qlora.json" "d['val_ppl']")
if "$py" -c "import sys; sys.exit(0 if float(sys.argv[2]) <= 1.05 * float(sys.argv[1]) else 1)" "$lp" "$qp"; then
    ok "QLoRA on NF4 ends at perplexity $qp, within 5% of LoRA's $lp"
else not_ok "QLoRA on NF4 ends at perplexity $qp, more than 5% above LoRA's $lp"; fi

# ---- 3. what the PyTorch oracle (tests/train/torch_oracle.py) reads ----
for m in lora full; do
    out=$work/$m.out
    [ $m = full ] && out=$out.gguf
    run "$slmops" finetune -m "$base" --data "$work/b.txt" --ctx 64 --steps 3 --method $m \
        --dump-grads "$work/$m.dump"
    run "$slmops" finetune -m "$base" --data "$work/b.txt" --ctx 64 --steps 3 --method $m \
        --log "$work/$m.log" -o "$out"
    if why=$("$py" "$top_srcdir/tests/train/dump_check.py" "$work/$m.dump" "$work/$m.log" $m 2>&1); then
        ok "$m --dump-grads: $why, as step 1 of the run"
    else not_ok "$m --dump-grads: $why"; fi
done
finish
