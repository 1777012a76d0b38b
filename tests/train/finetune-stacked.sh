#!/bin/sh
# Several adapters on one base (issue 8, section 2): a LoRA trained with `--lora A:0.5`
# under it trains only its own tensors (A stays frozen, its file untouched), and the
# result used the way it was trained (--lora A:0.5 --lora B) gives the text of the
# model with both merged; the trained adapter alone gives another one.
. "${top_srcdir:?run through make check}/tests/cli/lib.sh"
need gguf/stories260K.gguf text/tinystories_sample.txt
tool=$top_builddir/tests/adapter/adapter-tool
base=$fx/gguf/stories260K.gguf
py=${PYTHON3:-python3}
run() { "$@" >"$work/out" 2>"$work/err" || { echo "FAIL: $*"; cat "$work/err"; exit 1; }; }

run "$tool" new "$base" "$work/a.gguf" rank=4 alpha=8 seed=3 targets=q,v,up b_seed=7 b_scale=0.5
sum_a=$(cksum <"$work/a.gguf")
head -c 4000 "$fx/text/tinystories_sample.txt" >"$work/data.txt"
train="-m $base --data $work/data.txt --lora $work/a.gguf:0.5 --lora-targets q,k,v,o --lora-rank 4 --ctx 64 --batch 4 --threads 2"
# shellcheck disable=SC2086 # the option list splits on purpose
run "$slmops" finetune $train --steps 1 --dump-grads "$work/dump" -o "$work/unused"
names=$("$py" -c "
import json, struct, sys
f = open(sys.argv[1], 'rb'); n = struct.unpack('<Q', f.read(8))[0]
h = json.loads(f.read(n))
print(' '.join(sorted(k for k in h if k != '__metadata__' and not k.startswith('batch.') and not k.endswith('.grad'))))
" "$work/dump")
case " $names " in
*" blk.0.attn_q.weight.lora_a "*"blk.0.attn_v.weight.lora_b "*) ;;
*) names="missing: $names" ;;
esac
if [ "$(echo "$names" | wc -w)" = 40 ] && ! echo "$names" | grep -q "ffn_up\|missing"; then
    ok "only the new adapter trains: 40 tensors (A and B on q,k,v,o of 5 layers), none of A's ffn_up"
else not_ok "trainable tensors: $names"; fi

# shellcheck disable=SC2086
run "$slmops" finetune $train --steps 15 --lr 1e-2 -o "$work/b.gguf"
[ "$(cksum <"$work/a.gguf")" = "$sum_a" ] && ok "the frozen adapter's file is untouched" ||
    not_ok "training under A changed A's file"
gen() { "$slmops" generate -m "$@" -p "Once upon a time" -n 40 --temp 0 2>"$work/err" || { cat "$work/err"; echo FAILED; }; }
run "$slmops" merge -m "$base" --lora "$work/a.gguf:0.5" --lora "$work/b.gguf" -o "$work/merged.gguf"
stacked=$(gen "$base" --lora "$work/a.gguf:0.5" --lora "$work/b.gguf")
merged=$(gen "$work/merged.gguf")
alone=$(gen "$base" --lora "$work/b.gguf")
[ "$stacked" = "$merged" ] && ok "--lora A:0.5 --lora B gives the merged model's text" ||
    not_ok "stacked and merged differ: '$stacked' / '$merged'"
[ "$stacked" != "$alone" ] && ok "B alone gives another text (A takes part)" ||
    not_ok "B alone gives the stacked text: the test proves nothing"
finish
