#!/bin/sh
# Issue 8: a trainer method's own loss terms (plugin-trainer.h, add_loss) in the train
# job. The fake trainer's method fake-lora is built twice: plain (fake-trainer) and
# adding the term "l2" = sum of the squares of every LoRA B, weight 1
# (fake-trainer-loss). The same run with each, from the same seed:
# - step 1: l2 is 0 (B starts at zero) and both losses are equal;
# - step 2: the term's gradient at B = 0 is 0, so both runs took the same first
#   update: the loss with the term equals the plain loss + l2 (1e-6 relative);
# - step 3: the term's gradient changed the second update: the losses less l2 differ;
# - every --log record and the report's curve carry "terms": {"l2": ...}.
. "${top_srcdir:?run through make check}/tests/cli/lib.sh"
need gguf/stories260K.gguf
base=$fx/gguf/stories260K.gguf
py=${PYTHON3:-python3}
libs=$top_builddir/tests/registry/.libs
for v in fake-trainer fake-trainer-loss; do
    mkdir "$work/$v" || exit 99
    cat >"$work/$v/$v.json" <<JSON
{
  "file_format_version": "1.3.0", "name": "$v", "kind": "trainer", "version": "1.0.0",
  "abi_version": 1, "library_path": "$libs/$v.so", "description": "train job test trainer",
  "provides": {"methods": ["fake-full", "fake-lora"]}
}
JSON
done
printf 'Once upon a time, there was a little robot named Bolt. Bolt loved to paint.\n' >"$work/b.txt"
for v in fake-trainer fake-trainer-loss; do
    SLMOPS_PLUGIN_PATH=$work/$v:$SLMOPS_PLUGIN_PATH XDG_CACHE_HOME=$work/cache \
        "$slmops" finetune -m "$base" --data "$work/b.txt" --ctx 64 --steps 4 --lr 1e-1 \
        --method fake-lora -o "$work/$v.out" --log "$work/$v.log" --json >"$work/$v.json" \
        2>"$work/err" || { echo "FAIL: finetune with $v:"; cat "$work/err"; exit 1; }
done
if why=$("$py" - "$work/fake-trainer.log" "$work/fake-trainer-loss.log" "$work/fake-trainer-loss.json" <<'EOF' 2>&1
import json, sys
plain = [json.loads(l) for l in open(sys.argv[1])]
loss = [json.loads(l) for l in open(sys.argv[2])]
report = json.load(open(sys.argv[3]))
def check(cond, what):
    if not cond:
        sys.exit(what)
check(all("terms" not in r for r in plain), "the plain method's records carry terms")
check(all("l2" in r.get("terms", {}) for r in loss), "a record lacks terms.l2")
check(all("l2" in r.get("terms", {}) for r in report["curve"]), "the report's curve lacks terms.l2")
l2 = [r["terms"]["l2"] for r in loss]
check(l2[0] == 0 and loss[0]["loss"] == plain[0]["loss"],
      "step 1: l2 %r, losses %r and %r" % (l2[0], loss[0]["loss"], plain[0]["loss"]))
check(l2[1] > 0, "step 2: l2 is %r" % l2[1])
d = abs(loss[1]["loss"] - (plain[1]["loss"] + l2[1]))
check(d <= 1e-6 * plain[1]["loss"], "step 2: loss %r != plain %r + l2 %r" % (loss[1]["loss"], plain[1]["loss"], l2[1]))
check(abs((loss[2]["loss"] - l2[2]) - plain[2]["loss"]) > 1e-6 * plain[2]["loss"],
      "step 3: the term did not change the update")
print("l2 %s; step 2 loss %.6f = %.6f + %.6f" % (" ".join("%.4g" % x for x in l2), loss[1]["loss"], plain[1]["loss"], l2[1]))
EOF
); then ok "add_loss: $why"; else not_ok "add_loss: $why"; fi
finish
