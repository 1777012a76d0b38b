#!/bin/sh
# What a command maps is what it pays for in start-up time and memory: a command that
# names the CPU loads no GPU driver stack and no HTTP or TLS library (glibc's LD_DEBUG
# lists every shared object initialised); the commands that need them still load them.
. "$top_srcdir/tests/cli/lib.sh"
need gguf/stories260K.gguf
model=$fx/gguf/stories260K.gguf

loaded() { # OUT CMD...: the shared objects CMD initialised, one per line, in OUT
    out=$1
    shift
    LD_DEBUG=libs "$@" 2>&1 >/dev/null | sed -n 's/.*calling init: //p' | sort -u >"$out"
}

loaded "$work/gen" "$slmops" generate -m "$model" -p "Once" -n 4 --temp 0 --device cpu
if grep -q 'format-gguf' "$work/gen"; then
    ok "generate --device cpu: LD_DEBUG lists the plugins it loads"
else
    not_ok "generate --device cpu: no format-gguf in LD_DEBUG's list (the check cannot see)"
    sed 's/^/    /' "$work/gen"
fi
heavy='libvulkan|backend-vulkan|libOpenCL|backend-opencl|libcuda|backend-cuda|libcurl|libmicrohttpd|libgnutls|libssl'
if grep -E "$heavy" "$work/gen" >"$work/bad"; then
    not_ok "generate --device cpu loaded what it does not use:"
    sed 's/^/    /' "$work/bad"
else
    ok "generate --device cpu loads no GPU backend, libcurl or libmicrohttpd"
fi

# The controls: the same check sees the libraries where they are needed.
loaded "$work/serve" "$slmops" serve -m "$work/missing.gguf" --port 0
if grep -q 'libmicrohttpd' "$work/serve"; then
    ok "serve opens libmicrohttpd itself"
else
    not_ok "serve did not load libmicrohttpd"
fi
if [ -e "$top_builddir/plugins/backend-vulkan/backend-vulkan.la" ]; then
    loaded "$work/auto" "$slmops" devices
    if grep -q 'backend-vulkan' "$work/auto"; then
        ok "devices (auto) still looks at the Vulkan backend"
    else
        not_ok "devices (auto) did not load the built Vulkan backend"
    fi
fi
finish
