#!/bin/sh
# Issue 7, item 14: messages name tensor types ("q8_0"), never bare ids ("type 8");
# an id nothing registered reads "type 1234 (unknown)". Covers the core, a format
# plugin naming a core type through the host (safetensors) and the GGUF reader.
. "$top_srcdir/tests/cli/lib.sh"
need gguf/stories260K.gguf
python=${PYTHON3:-python3}

"$slmops" quantize "$fx/gguf/stories260K.gguf" "$work/q8.gguf" --type q8_0 >/dev/null \
    2>"$work/err" || { cat "$work/err"; exit 1; }
expect_fail "safetensors refuses q8_0 by name" 1 \
    "tensor 'token_embd.weight': q8_0 cannot be stored in safetensors" \
    "$slmops" convert "$work/q8.gguf" "$work/q8.safetensors"
grep -qE 'type [0-9]+([^ ]|$| [^(])' "$work/err" && not_ok "a bare type id: $(cat "$work/err")" ||
    ok "no bare type id in the message"

# A GGUF whose first tensor claims type 1234: its reader says so by name.
"$top_builddir/tests/qcli/mix-model" "$work/m.gguf" layers=1 rows=2 ||
    { echo "not ok - mix-model failed"; exit 1; }
"$python" - "$work/m.gguf" "$work/bad.gguf" <<'PY' || { echo "not ok - patching failed"; exit 1; }
import struct, sys
b = bytearray(open(sys.argv[1], "rb").read())
pos = 4 + 4
n_tensors, n_kv = struct.unpack_from("<QQ", b, pos); pos += 16
size = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}
def value(t, pos):
    if t == 8:
        return pos + 8 + struct.unpack_from("<Q", b, pos)[0]
    if t == 9:
        et, n = struct.unpack_from("<IQ", b, pos); pos += 12
        for _ in range(n):
            pos = value(et, pos)
        return pos
    return pos + size[t]
for _ in range(n_kv):
    pos = value(8, pos)
    t = struct.unpack_from("<I", b, pos)[0]; pos += 4
    pos = value(t, pos)
pos = value(8, pos)                       # first tensor's name
n_dims = struct.unpack_from("<I", b, pos)[0]; pos += 4 + 8 * n_dims
struct.pack_into("<I", b, pos, 1234)
open(sys.argv[2], "wb").write(b)
PY
expect_fail "an unknown tensor type id is named as such" 1 "type 1234 \(unknown\)" \
    "$slmops" info "$work/bad.gguf"
finish
