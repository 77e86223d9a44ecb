#pragma once
// Base-128 varints as protobuf's wire format has them: seven bits a byte,
// the lowest first, the high bit set on every byte but the last. The one
// encoder and decoder of the hand-written codecs (state parts, the GPS fix
// window's texts, the wire scans of decoded records).
// Thread-safe: pure functions.

#include <cstddef>
#include <cstdint>
#include <string>

namespace boxwatch {

// The most bytes a 64-bit varint takes.
inline constexpr int kMaxVarintBytes = 10;

// Writes `v` at `p`, which has room for kMaxVarintBytes; returns the end.
inline char* WriteVarint(char* p, uint64_t v) {
  while (v >= 0x80) {
    *p++ = static_cast<char>(v | 0x80);
    v >>= 7;
  }
  *p++ = static_cast<char>(v);
  return p;
}

// Appends `v` to `out` (through a buffer on the stack: one append, not a
// push_back per byte).
inline void AppendVarint(std::string* out, uint64_t v) {
  char buf[kMaxVarintBytes];
  out->append(buf, static_cast<size_t>(WriteVarint(buf, v) - buf));
}

// Reads a varint of at most `max_bytes` bytes at `p`, moving `p` past what
// it read; false when the bytes end first or the varint is longer.
inline bool ReadVarint(const char*& p, const char* end, int max_bytes, uint64_t* v) {
  *v = 0;
  for (int i = 0, shift = 0; i < max_bytes && p < end; ++i, shift += 7) {
    const auto b = static_cast<uint8_t>(*p++);
    *v |= static_cast<uint64_t>(b & 0x7f) << shift;
    if ((b & 0x80) == 0) return true;
  }
  return false;
}

}  // namespace boxwatch
