#!/usr/bin/env python3
"""Writes the seed inputs of state_codec_fuzz (record layout in
tests/fuzz/state_codec_fuzz.cc), protobuf and the packed window encoded by
hand (pipeline/state_parts.cc describes format 2)."""
import struct


def varint(v):
    out = bytearray()
    while v >= 0x80:
        out.append((v & 0x7F) | 0x80)
        v >>= 7
    out.append(v)
    return bytes(out)


def zig(v):
    return (v << 1) ^ (v >> 63) if v >= 0 else ((-v) << 1) - 1


def field(number, wire, payload):
    tag = varint(number << 3 | wire)
    return tag + (varint(len(payload)) + payload if wire == 2 else varint(payload))


def packed(fixes):
    """Format 2: whole-second time deltas, position deltas in 1e-7 degree, no flags."""
    out = bytearray([2]) + varint(len(fixes))
    pt = plat = plon = 0
    for t, lat, lon, speed in fixes:
        out += varint(zig((t - pt) // 1000) << 1 | 1)
        out += varint(zig(lat - plat)) + varint(zig(lon - plon))
        out += varint(zig(speed)) + varint(zig(0)) + bytes([0])
        pt, plat, plon = t, lat, lon
    return bytes(out)


def fixes(n, start_ms):
    return [(start_ms + i * 60000, 103000000 + i * 1000, 13000000 + i * 700, 4500) for i in range(n)]


def record(kind, value, chunk=None):
    head = bytes([kind]) + (struct.pack("<I", chunk) if chunk is not None else b"")
    return head + struct.pack("<H", len(value)) + value


T0 = 1794970800000
clock = field(73, 0, T0 + 600000) + field(74, 0, T0 + 300001) + field(50, 0, T0) + field(51, 0, T0 + 600000)

# 1. A movement part, the window packed in it.
gps = field(7, 2, packed(fixes(5, T0))) + field(8, 0, T0 + 240000) + field(12, 0, T0 - 60000)
seeds = {"movement": record(0, clock + field(30, 2, gps))}

# 2. The window's oldest 32 fixes in chunks 1794970 and 1794971 (3 left the window), 4 in M.
all_fixes = fixes(36, T0)
chunked = (field(7, 2, packed(all_fixes[32:])) + field(13, 0, 1794970) + field(14, 0, 1794972) +
           field(15, 0, 3) + field(16, 0, all_fixes[31][0]) + field(8, 0, all_fixes[35][0]))
seeds["chunks"] = (record(0, clock + field(30, 2, chunked)) + record(3, packed(all_fixes[:16]), 1794970) +
                   record(3, packed(all_fixes[16:32]), 1794971))

# 3. Movement listing an evaluation part, a declaration (a scan) and the evaluation (one fired indicator).
m = clock + field(30, 2, gps) + field(76, 0, 1) + field(71, 2, field(1, 0, T0 + 540000) + field(2, 0, 2))
d = field(20, 2, field(1, 2, b"scan-1"))
e = field(70, 2, field(1, 2, b"gps.route_deviation") + field(2, 2, b"gps"))
seeds["parts"] = record(0, m) + record(1, d) + record(2, e)

# 4. A whole value (format 1): it holds the container number.
seeds["whole"] = record(0, field(1, 2, b"MSKU1234565") + clock + d + e + field(30, 2, gps))

for name, data in seeds.items():
    with open(name, "wb") as f:
        f.write(data)
