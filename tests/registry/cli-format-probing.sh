#!/bin/sh
# Format plugins are chosen by their manifests first (issue 7 item 7): a library
# is loaded to probe a model file only when its manifest's extensions, magic or
# folders say it might read it. A "trap" format plugin, whose library crashes the
# moment it is loaded, shows every load.
. "${top_srcdir:?run through make check}/tests/cli/lib.sh"
need gguf/stories260K.gguf hf/qwen2.5-tokenizer/vocab.json
libs="$top_builddir/tests/registry/.libs"
uninstalled="$top_builddir/manifests/uninstalled"
model="$fx/gguf/stories260K.gguf"
XDG_CACHE_HOME="$work/cache"; export XDG_CACHE_HOME

trap_manifest() { # FILE_FORMAT_VERSION
    cat <<JSON
{
  "file_format_version": "$1",
  "name": "format-trap",
  "kind": "format",
  "version": "1.0.0",
  "abi_version": 1,
  "library_path": "$libs/fake-ctor-crash.so",
  "description": "crashes when loaded",
  "provides": {"extensions": [".trap"], "magic": ["TRAP"], "read": true, "write": false}
}
JSON
}
mkdir "$work/trap" "$work/legacy" || exit 99
trap_manifest 1.2.0 >"$work/trap/format-trap.json"
trap_manifest 1.0.0 >"$work/legacy/format-trap.json"

# loads LOG: the libraries the debug log says were loaded, one per line.
loads() { sed -n 's|.*: loaded \(/.*\)$|\1|p' "$1"; }

SLMOPS_PLUGIN_PATH="$work/trap:$uninstalled"; export SLMOPS_PLUGIN_PATH
SLMOPS_LOG=debug,registry "$slmops" generate -m "$model" -p "Once upon a time" -n 8 --temp 0 \
    >"$work/gen.out" 2>"$work/gen.err"
rc=$?
if [ "$rc" -eq 0 ] && [ -s "$work/gen.out" ]; then ok "generate on a GGUF works"; else not_ok "generate exited $rc"; fi
formats=$(loads "$work/gen.err" | grep -E '/(format-[a-z0-9]*|fake-[a-z-]*)\.so$')
if [ "$formats" = "$top_builddir/plugins/format-gguf/.libs/format-gguf.so" ]; then
    ok "a GGUF loads format-gguf and no other format plugin"
else
    not_ok "format libraries loaded for a GGUF: $(echo $formats)"
fi
grep -F "format-trap" "$work/gen.err" >/dev/null && not_ok "the trap plugin was touched" ||
    ok "the trap plugin was not loaded"

# The trap is a working detector: a file its manifest claims loads it.
printf 'TRAP and then some bytes\n' >"$work/model.bin.x"
expect_fail "a file with the trap's magic loads the trap" 1 'library crashed while loading \(SIGSEGV\)' \
    "$slmops" info "$work/model.bin.x"

# A folder goes only to plugins whose manifest reads folders.
SLMOPS_LOG=debug,registry "$slmops" info "$fx/hf/qwen2.5-tokenizer" >"$work/hf.out" 2>"$work/hf.err"
rc=$?
formats=$(loads "$work/hf.err" | grep -E '/(format-[a-z0-9]*|fake-[a-z-]*)\.so$')
if [ "$rc" -eq 0 ] && [ "$formats" = "$top_builddir/plugins/format-safetensors/.libs/format-safetensors.so" ]; then
    ok "a Hugging Face folder loads format-safetensors only"
else
    not_ok "HF folder: exit $rc, loaded: $(echo $formats)"; sed 's/^/    /' "$work/hf.err" | grep -v debug
fi

# A manifest older than 1.2 could not say what it reads: its library is asked
# about every input, as before.
SLMOPS_PLUGIN_PATH="$work/legacy:$uninstalled"
"$slmops" info "$model" >/dev/null 2>"$work/legacy.err"
if grep -F "library crashed while loading (SIGSEGV)" "$work/legacy.err" | grep -F "$work/legacy/format-trap.json" >/dev/null; then
    ok "a 1.0 format manifest is still probed for every file"
else
    not_ok "the 1.0 format manifest was not probed"; sed 's/^/    /' "$work/legacy.err"
fi

finish
