#!/usr/bin/env python3
"""Copy a GGUF file with one metadata value changed in place, for the bad-input cases:
gguf-patch.py IN OUT KEY VALUE. An integer keeps its width; a string must keep its
length (llama -> qwen2). Only the standard library."""
import struct
import sys

src, dst, key, value = sys.argv[1], sys.argv[2], sys.argv[3].encode(), sys.argv[4]
data = bytearray(open(src, "rb").read())
needle = struct.pack("<Q", len(key)) + key
at = data.find(needle)
if at < 0:
    sys.exit(f"gguf-patch: {key.decode()} not in {src}")
at += len(needle)
vtype = struct.unpack_from("<I", data, at)[0]
formats = {4: "<I", 5: "<i", 10: "<Q", 11: "<q"}
if vtype == 8:
    new = value.encode()
    if struct.unpack_from("<Q", data, at + 4)[0] != len(new):
        sys.exit(f"gguf-patch: {key.decode()} is not {len(new)} bytes long")
    data[at + 12:at + 12 + len(new)] = new
elif vtype in formats:
    struct.pack_into(formats[vtype], data, at + 4, int(value))
else:
    sys.exit(f"gguf-patch: {key.decode()} has type {vtype}, neither an integer nor a string")
open(dst, "wb").write(data)
