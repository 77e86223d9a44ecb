#pragma once
// One raw message (a CUSCAR interchange or an N42 document) to the
// canonical records it carries, and the parts that cannot be converted, each
// with a stable reason and its position. Pure; used by the ingest loop, the
// tests and the fuzz targets.

#include <string>
#include <string_view>
#include <vector>

#include "ingest/n42.h"

namespace boxwatch::ingest {

enum class RawFormat { kCuscar, kN42 };
const char* RawFormatName(RawFormat f);  // "cuscar", "n42"
// The format a drop-directory file's first bytes show ("UNA"/"UNB": CUSCAR,
// "<": N42); false when neither.
bool SniffFormat(std::string_view bytes, RawFormat* format);

struct CanonicalRecord {
  enum Topic { kManifests, kScans } topic = kManifests;
  std::string key;      // container number
  std::string value;    // boxwatch.v1 protobuf
  int64_t timestamp_ms = 0;  // the event time (declared_at_ms, scanned_at_ms)
};

struct Rejected {
  std::string reason;    // stable id (docs/formats.md)
  std::string position;  // "segment 12 (UNT)", an element path, or ""
  std::string detail;
};

struct Conversion {
  std::vector<CanonicalRecord> records;
  std::vector<Rejected> rejected;
  size_t messages = 0;  // EDIFACT messages or N42 occupancies seen
};

Conversion Convert(RawFormat format, std::string_view bytes, const N42Options& n42);

}  // namespace boxwatch::ingest
