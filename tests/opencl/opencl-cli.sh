#!/bin/sh
# The OpenCL backend through the CLI: `slmops devices` names PoCL for opencl:0 and
# auto keeps the CPU (PoCL scores below it); `generate --device opencl:0` prints the
# CPU's greedy text; an OpenCL plugin whose .so is gone disables only itself.
. "$(dirname "$0")/../cli/lib.sh"
need gguf/stories260K.gguf reference/stories260K-greedy-256.txt

"$slmops" plugins --json >"$work/plugins.json" 2>&1 || { echo "FAIL: slmops plugins"; exit 1; }
grep -q '"backend-opencl"' "$work/plugins.json" ||
    { echo "SKIP: backend-opencl is not built (configure --enable-opencl)"; exit 77; }
"$slmops" devices --json >"$work/devices.json" 2>"$work/devices.err"
grep -q '"id": "opencl:0"' "$work/devices.json" ||
    { echo "SKIP: no OpenCL device (Debian: pocl-opencl-icd gives PoCL)"; cat "$work/devices.err"; exit 77; }

# The device and its platform by name (PoCL on this machine's CI)
"$slmops" devices --device opencl:0 >"$work/devices.txt" 2>&1
if grep -q 'chosen: opencl:0' "$work/devices.txt" && grep -q '^opencl:0 ' "$work/devices.txt"; then
    ok "devices --device opencl:0 chooses opencl:0"
else
    not_ok "devices --device opencl:0:"; cat "$work/devices.txt"
fi
desc=$(grep -A1 '^opencl:0 ' "$work/devices.txt" | sed -n 's/^ *description: //p')
case $desc in
    *"platform Portable Computing Language"*)
        case $desc in *PoCL*) ok "opencl:0 is named as PoCL: $desc" ;;
            *) not_ok "opencl:0 on PoCL does not say PoCL: $desc" ;; esac ;;
    *", platform "?*) ok "opencl:0 names its driver and platform: $desc" ;;
    *) not_ok "opencl:0's description names no platform: '$desc'" ;;
esac

# auto: the CPU, unless the OpenCL device outscores it (a real GPU)
cl_score=$(tr -d '\n ' <"$work/devices.json" | sed -n 's/.*"id":"opencl:0"[^}]*"score":\([0-9-]*\).*/\1/p')
auto=$(tr -d '\n ' <"$work/devices.json" | sed -n 's/.*"auto":"\([^"]*\)".*/\1/p')
if [ -n "$cl_score" ] && [ "$cl_score" -lt 10 ]; then
    [ "$auto" = cpu:0 ] && ok "auto keeps cpu:0 over the emulated opencl:0 (score $cl_score)" ||
        not_ok "auto is '$auto' with an emulated opencl:0 (score $cl_score)"
    tr -d '\n' <"$work/devices.json" | grep -q '"why":[^}]*opencl:0 5 (CPU-emulated' &&
        ok "devices --json says why opencl:0 is not chosen" ||
        { not_ok "devices --json does not explain opencl:0's rank"; cat "$work/devices.json"; }
else
    ok "opencl:0 scores $cl_score (a real GPU): auto is $auto"
fi

# 256 greedy tokens on opencl:0: the CPU's text, which is the reference text
ref=$fx/reference/stories260K-greedy-256.txt
"$slmops" generate -m "$fx/gguf/stories260K.gguf" --temp 0 -n 256 --device cpu \
    >"$work/cpu.txt" 2>"$work/cpu.err" || { not_ok "generate --device cpu failed"; cat "$work/cpu.err"; }
if "$slmops" generate -m "$fx/gguf/stories260K.gguf" --temp 0 -n 256 --device opencl:0 \
    >"$work/cl.txt" 2>"$work/cl.err"; then
    cmp -s "$work/cpu.txt" "$work/cl.txt" && [ -s "$work/cl.txt" ] &&
        ok "generate --device opencl:0 prints the CPU's greedy text" ||
        { not_ok "generate --device opencl:0 differs from the CPU"; head -c 300 "$work/cl.txt"; }
    n=$(wc -c <"$work/cl.txt" | tr -d ' ')
    [ "$n" -gt 40 ] && head -c "$((n - 1))" "$work/cl.txt" >"$work/cl-body" &&
        head -c "$((n - 1))" "$ref" | cmp -s - "$work/cl-body" &&
        ok "generate --device opencl:0 prints the reference greedy text" ||
        not_ok "generate --device opencl:0 differs from the reference"
else
    not_ok "generate --device opencl:0 failed"; cat "$work/cl.err"
fi

# Remove the plugin's library (a copy of the manifests naming a missing .so): only
# that plugin is disabled, the CPU still generates.
mkdir "$work/mf"
cp "$top_builddir"/manifests/uninstalled/*.json "$work/mf/"
sed -i 's|"library_path": "[^"]*"|"library_path": "'"$work"'/gone/backend-opencl.so"|' \
    "$work/mf/backend-opencl.json"
SLMOPS_PLUGIN_PATH=$work/mf "$slmops" devices --json >"$work/d2.json" 2>"$work/d2.err"
SLMOPS_PLUGIN_PATH=$work/mf "$slmops" plugins >"$work/p2.txt" 2>&1
if ! grep -q '"opencl:0"' "$work/d2.json" && grep -q '"cpu:0"' "$work/d2.json"; then
    ok "without its .so, opencl:0 is gone and cpu:0 remains"
else
    not_ok "devices without the OpenCL .so:"; cat "$work/d2.json" "$work/d2.err"
fi
if grep -q '"vulkan"' "$work/plugins.json"; then
    grep -q '"vulkan:0"' "$work/d2.json" && ok "without the OpenCL .so, vulkan:0 remains" ||
        not_ok "the Vulkan device went with the OpenCL .so"
fi
grep -q '^backend-opencl  *backend .* disabled  *library .*backend-opencl.so' "$work/p2.txt" &&
    ok "slmops plugins shows backend-opencl disabled" ||
    { not_ok "slmops plugins without the OpenCL .so:"; cat "$work/p2.txt"; }
SLMOPS_PLUGIN_PATH=$work/mf "$slmops" generate -m "$fx/gguf/stories260K.gguf" --temp 0 -n 16 \
    >"$work/cpu16.txt" 2>"$work/cpu16.err" && [ -s "$work/cpu16.txt" ] &&
    ok "the CPU still generates without the OpenCL .so" ||
    { not_ok "generation without the OpenCL .so failed"; cat "$work/cpu16.err"; }
finish
