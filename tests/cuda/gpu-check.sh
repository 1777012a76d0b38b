#!/bin/sh
# The CUDA backend on a machine with an NVIDIA GPU (issue 11, acceptance 6), as one
# prepared run for a session lent such a machine: build with --enable-cuda=yes for
# the GPU's compute capability, slmops-conform --plugin backend-cuda, tests/cuda
# (every op, stories260K against the CPU: same greedy text, logits within 1e-3),
# `slmops generate` through the CLI against the reference text, and tokens/s of
# stories15m- and smollm2-135m-shaped models on cuda:0 (and the CPU) next to
# llama.cpp's CUDA build when one is at hand.
#   usage (repository root):  sh tests/cuda/gpu-check.sh
# On a lent machine that sees only this tree, copy the fixtures it reads
# (gguf/stories260K.gguf, reference/stories260K-greedy-256.txt) into an ignored
# folder such as build-fixtures/, carry it, and set SLMOPS_FIXTURES to it; the
# llama.cpp peer likewise (LLAMA_BENCH or LLAMA_CPP_SRC under build-*/).
#   env: OUT             folder for summary.txt and the logs (default ./gpu-check.out)
#        SLMOPS_FIXTURES fixtures folder (default ../shared/fixtures)
#        LLAMA_BENCH     a llama-bench built with GGML_CUDA=ON, or
#        LLAMA_CPP_SRC   a llama.cpp source tree to build one from (cmake, nvcc)
#        BENCH_TYPES     weight types to bench (default "q4_0 f16")
#        JOBS            make -j (default: the CPU count)
# Every step runs even when an earlier one fails (but the build); the summary
# says which passed. Exit status: 0 all passed, 1 something failed.
set -u
top=$(pwd)
out=${OUT:-$top/gpu-check.out}
mkdir -p "$out"
sum=$out/summary.txt
: >"$sum"
fx=${SLMOPS_FIXTURES:-$top/../shared/fixtures}
jobs=${JOBS:-$(nproc 2>/dev/null || echo 4)}
types=${BENCH_TYPES:-q4_0 f16}
failed=0
say() { echo "$*" | tee -a "$sum"; }
# step NAME CMD...: run CMD with its output in $out/NAME.log; one summary line.
step() {
    name=$1
    shift
    t0=$(date +%s)
    if "$@" >"$out/$name.log" 2>&1; then
        say "PASS $name ($(($(date +%s) - t0)) s)"
    else
        rc=$?
        say "FAIL $name (exit $rc, $(($(date +%s) - t0)) s): tail of $name.log:"
        tail -n 15 "$out/$name.log" | sed 's/^/    /' | tee -a "$sum"
        failed=1
        return 1
    fi
}

say "gpu-check $(date -u +%Y-%m-%dT%H:%MZ) on $(uname -n)"
nvidia-smi -L 2>&1 | tee -a "$sum"
cap=$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader 2>/dev/null | head -n 1 | tr -d ' .')
archs=${NVCC_ARCHS:-$cap}
say "NVCC_ARCHS=${archs:-(configure's default list)}"

# 1. Build: only what the checks need (the other optional backends off).
build() {
    [ -x configure ] || ./bootstrap || return 1
    ./configure --enable-cuda=yes --enable-werror --enable-vulkan=no --enable-opencl=no \
        --enable-mpi=no ${archs:+NVCC_ARCHS="$archs"} SLMOPS_FIXTURES="$fx" || return 1
    make -j"$jobs" all && make -j"$jobs" tests/cuda/test-cuda
}
step build build || { say "build failed: nothing else can run"; exit 1; }
SLMOPS_PLUGIN_PATH=$top/manifests/uninstalled
export SLMOPS_PLUGIN_PATH
slmops=$top/slmops

step plugins sh -c "'$slmops' plugins | grep -A2 '^backend-cuda' && '$slmops' devices"
cat "$out/plugins.log" >>"$sum"

# 2. Conformance: every op x type x layout the manifest declares, gradchecks too,
# every recording captured into a CUDA graph; then none captured.
step conform env SLMOPS_CUDA_GRAPHS=1 "$top/sdk/conform/slmops-conform" --plugin backend-cuda -v
tail -n 1 "$out/conform.log" | tee -a "$sum"
step conform-no-graphs env SLMOPS_CUDA_GRAPHS=0 "$top/sdk/conform/slmops-conform" --plugin backend-cuda
tail -n 1 "$out/conform-no-graphs.log" | tee -a "$sum"

# 3. tests/cuda: test-cuda (ops, long reductions, stories260K decoded on cuda:0
# against the CPU: the same argmax at all 256 positions, logits at 0, 1, 2 and 255
# within 1e-3); cuda-plugins.sh (runs slmops-conform, then exits 77 here);
# emu-check.sh (the same sources on the CPU emulator, as on machines without a GPU).
step test-cuda make -j"$jobs" check TESTS='tests/cuda/test-cuda tests/cuda/cuda-plugins.sh tests/cuda/emu-check.sh' \
    SLMOPS_FIXTURES="$fx"
grep -h -E '^(PASS|FAIL|SKIP|ERROR|# )|Checks:|^ok|^not ok' "$out/test-cuda.log" tests/cuda/*.log \
    2>/dev/null | tee -a "$sum"

# 4. The CLI: greedy text on cuda:0 equals the reference and the CPU's.
model=$fx/gguf/stories260K.gguf ref=$fx/reference/stories260K-greedy-256.txt
if [ -f "$model" ] && [ -f "$ref" ]; then
    gen() { # DEVICE TAG: 256 greedy tokens; all but the last byte (a newline) equal the reference's
        "$slmops" generate -m "$model" --temp 0 -n 256 --device "$1" >"$out/gen-$2.txt" || return 1
        n=$(wc -c <"$out/gen-$2.txt" | tr -d ' ')
        [ "$n" -gt 40 ] || return 1
        head -c "$((n - 1))" "$out/gen-$2.txt" >"$out/gen-$2.body"
        head -c "$((n - 1))" "$ref" | cmp - "$out/gen-$2.body"
    }
    step generate-cuda gen cuda:0 cuda
    step generate-cpu gen cpu cpu
    step generate-same cmp "$out/gen-cuda.txt" "$out/gen-cpu.txt"
else
    say "SKIP generate: $model or $ref not found (set SLMOPS_FIXTURES)"
fi

# 5. Speed: pp128 and tg32 (llama-bench's tests) on random models of two shapes.
llama_bench=${LLAMA_BENCH:-}
if [ -z "$llama_bench" ] && [ -n "${LLAMA_CPP_SRC:-}" ]; then
    lb() {
        cmake -S "$LLAMA_CPP_SRC" -B "$out/llama-build" -DCMAKE_BUILD_TYPE=Release -DGGML_CUDA=ON \
            ${cap:+-DCMAKE_CUDA_ARCHITECTURES=$cap} -DBUILD_SHARED_LIBS=OFF -DLLAMA_CURL=OFF \
            -DLLAMA_BUILD_TESTS=OFF &&
            cmake --build "$out/llama-build" -j"$jobs" --target llama-bench
    }
    step llama-cpp-build lb && llama_bench=$out/llama-build/bin/llama-bench
fi
[ -n "$llama_bench" ] || say "llama.cpp: no CUDA llama-bench (set LLAMA_BENCH or LLAMA_CPP_SRC): slmops alone"
say ""
say "tokens/s (mean +- sd of 3 runs; pp128 = prompt of 128, tg32 = 32 generated)"
for preset in stories15m smollm2-135m; do
    for t in $types; do
        m=$out/$preset-$t.gguf
        step "init-$preset-$t" "$slmops" init --arch llama --preset "$preset" --random --type "$t" "$m" ||
            continue
        for dev in cuda:0 cpu; do
            tag=bench-$preset-$t-${dev%%:*}   # no ':' in names that come back from $OUT
            if step "$tag" "$slmops" bench -m "$m" -p 128 -n 32 -r 3 --device "$dev"; then
                grep -E 'pp128|tg32' "$out/$tag.log" |
                    sed "s/^/  slmops $dev $preset $t: /" | tee -a "$sum"
            fi
        done
        if [ -n "$llama_bench" ]; then
            step "llama-bench-$preset-$t" "$llama_bench" -m "$m" -p 128 -n 32 -r 3 -ngl 99 &&
                grep -E 'pp128|tg32' "$out/llama-bench-$preset-$t.log" |
                sed "s/^/  llama.cpp CUDA $preset $t: /" | tee -a "$sum"
        fi
        # decode with every recording captured at once, and with none (the default
        # captures a recording replayed 3 times)
        for g in 1 0; do
            tag=bench-$preset-$t-cuda-graphs$g
            SLMOPS_CUDA_GRAPHS=$g step "$tag" "$slmops" bench -m "$m" -p 0 -n 32 -r 3 --device cuda:0 &&
                grep -E 'tg32' "$out/$tag.log" | sed "s/^/  slmops cuda:0 SLMOPS_CUDA_GRAPHS=$g $preset $t: /" |
                tee -a "$sum"
        done
        rm -f "$m"
    done
done
say ""
[ "$failed" -eq 0 ] && say "gpu-check: all passed" || say "gpu-check: something failed (see above)"
exit "$failed"
