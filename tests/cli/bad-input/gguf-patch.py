#!/usr/bin/env python3
"""Copy a GGUF file with one integer metadata value changed in place (same width), for
the bad-input cases: gguf-patch.py IN OUT KEY VALUE. Only the standard library."""
import struct
import sys

src, dst, key, value = sys.argv[1], sys.argv[2], sys.argv[3].encode(), int(sys.argv[4])
data = bytearray(open(src, "rb").read())
needle = struct.pack("<Q", len(key)) + key
at = data.find(needle)
if at < 0:
    sys.exit(f"gguf-patch: {key.decode()} not in {src}")
at += len(needle)
vtype = struct.unpack_from("<I", data, at)[0]
formats = {4: "<I", 5: "<i", 10: "<Q", 11: "<q"}
if vtype not in formats:
    sys.exit(f"gguf-patch: {key.decode()} has type {vtype}, not an integer")
struct.pack_into(formats[vtype], data, at + 4, value)
open(dst, "wb").write(data)
