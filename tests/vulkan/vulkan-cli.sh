#!/bin/sh
# The Vulkan backend through the CLI: `slmops devices --json` lists vulkan:0 and
# auto keeps the CPU (lavapipe scores below it); `generate --device vulkan:0` prints
# the reference greedy text; 20 LoRA steps give the CPU's losses within 1e-3
# relative; a Vulkan plugin whose .so is gone disables only itself.
. "$(dirname "$0")/../cli/lib.sh"
need gguf/stories260K.gguf reference/stories260K-greedy-256.txt text/tinystories_sample.txt

"$slmops" plugins --json >"$work/plugins.json" 2>&1 || { echo "FAIL: slmops plugins"; exit 1; }
grep -q '"backend-vulkan"' "$work/plugins.json" ||
    { echo "SKIP: backend-vulkan is not built (configure --enable-vulkan)"; exit 77; }
"$slmops" devices --json >"$work/devices.json" 2>"$work/devices.err"
grep -q '"id": "vulkan:0"' "$work/devices.json" ||
    { echo "SKIP: no Vulkan device (Debian: mesa-vulkan-drivers gives lavapipe)"; cat "$work/devices.err"; exit 77; }

# auto: the CPU, unless the Vulkan device outscores it (a real GPU)
vk_score=$(tr -d '\n ' <"$work/devices.json" | sed -n 's/.*"id":"vulkan:0"[^}]*"score":\([0-9-]*\).*/\1/p')
auto=$(tr -d '\n ' <"$work/devices.json" | sed -n 's/.*"auto":"\([^"]*\)".*/\1/p')
if [ -n "$vk_score" ] && [ "$vk_score" -lt 10 ]; then
    [ "$auto" = cpu:0 ] && ok "auto keeps cpu:0 over the emulated vulkan:0 (score $vk_score)" ||
        not_ok "auto is '$auto' with an emulated vulkan:0 (score $vk_score)"
else
    ok "vulkan:0 scores $vk_score (a real GPU): auto is $auto"
fi

# 64 greedy tokens: a prefix of the reference text (all 256 run in test-vulkan)
ref=$fx/reference/stories260K-greedy-256.txt
if "$slmops" generate -m "$fx/gguf/stories260K.gguf" --temp 0 -n 64 --device vulkan:0 \
    >"$work/vk.txt" 2>"$work/vk.err"; then
    n=$(wc -c <"$work/vk.txt" | tr -d ' ')
    [ "$n" -gt 40 ] && head -c "$((n - 1))" "$work/vk.txt" >"$work/vk-body" &&
        head -c "$((n - 1))" "$ref" | cmp -s - "$work/vk-body" &&
        ok "generate --device vulkan:0 prints the reference greedy text" ||
        { not_ok "generate --device vulkan:0 differs from the reference"; head -c 300 "$work/vk.txt"; }
else
    not_ok "generate --device vulkan:0 failed"; cat "$work/vk.err"
fi

# 20 LoRA steps (every training op and backward op, the optimizer on the device)
# on each device from the same seed: the losses agree within 1e-3 relative. Short
# steps (32 tokens): lavapipe runs shaders on the CPU.
head -c 4000 "$fx/text/tinystories_sample.txt" >"$work/train.txt"
for dev in cpu vulkan:0; do
    "$slmops" finetune -m "$fx/gguf/stories260K.gguf" --data "$work/train.txt" --method lora \
        --lora-rank 4 --lora-alpha 8 --ctx 32 --batch 1 --steps 20 --lr 1e-2 --seed 1 \
        --threads 2 --device "$dev" -o "$work/lora-$dev.gguf" --log "$work/lora-$dev.log" \
        >/dev/null 2>"$work/lora-$dev.err" ||
        { not_ok "finetune --device $dev failed"; cat "$work/lora-$dev.err"; }
done
losses() { sed -n 's/.*"loss":\([^,]*\),.*/\1/p' "$1"; }
losses "$work/lora-cpu.log" >"$work/lc"
losses "$work/lora-vulkan:0.log" >"$work/lv"
if [ "$(wc -l <"$work/lc")" -eq 20 ] && [ "$(wc -l <"$work/lv")" -eq 20 ] &&
    paste "$work/lc" "$work/lv" | awk '{ d = ($1 - $2) / $1; if (d < 0) d = -d; if (d > m) m = d }
        END { printf "max relative difference %.3g\n", m; exit !(m <= 1e-3) }' >"$work/ld"; then
    ok "20 LoRA steps on vulkan:0 match the CPU's losses ($(cat "$work/ld"))"
else
    not_ok "LoRA losses on vulkan:0 differ from the CPU's: $(cat "$work/ld" 2>/dev/null)"
    paste "$work/lc" "$work/lv" | head -20
fi

# Remove the plugin's library (a copy of the manifests naming a missing .so): only
# that plugin is disabled, the CPU still generates.
mkdir "$work/mf"
cp "$top_builddir"/manifests/uninstalled/*.json "$work/mf/"
sed -i 's|"library_path": "[^"]*"|"library_path": "'"$work"'/gone/backend-vulkan.so"|' \
    "$work/mf/backend-vulkan.json"
SLMOPS_PLUGIN_PATH=$work/mf "$slmops" devices --json >"$work/d2.json" 2>"$work/d2.err"
if ! grep -q '"vulkan:0"' "$work/d2.json" && grep -q '"cpu:0"' "$work/d2.json"; then
    ok "without its .so, vulkan:0 is gone and cpu:0 remains"
else
    not_ok "devices without the Vulkan .so:"; cat "$work/d2.json" "$work/d2.err"
fi
SLMOPS_PLUGIN_PATH=$work/mf "$slmops" generate -m "$fx/gguf/stories260K.gguf" --temp 0 -n 16 \
    >"$work/cpu.txt" 2>"$work/cpu.err" && [ -s "$work/cpu.txt" ] &&
    ok "the CPU still generates without the Vulkan .so" ||
    { not_ok "generation without the Vulkan .so failed"; cat "$work/cpu.err"; }
finish
