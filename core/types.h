#pragma once
// Vocabulary types shared by every component: strong types for what is easy
// to mix up (partitions, offsets, event time versus processing time), and the
// validated identifiers of the domain (container numbers, UN/LOCODEs, HS codes).

#include <cstdint>
#include <string>
#include <string_view>

#include "core/result.h"
#include "core/strong_type.h"

namespace boxwatch {

using Partition = NamedType<int32_t, struct PartitionTag>;
using Offset = NamedType<int64_t, struct OffsetTag>;
// UTC epoch milliseconds at which something happened in the world
// (a GPS fix, a scan). Kafka's CreateTime carries it.
using EventTimeMs = NamedType<int64_t, struct EventTimeTag>;
// UTC epoch milliseconds on this process's clock.
using ProcessingTimeMs = NamedType<int64_t, struct ProcessingTimeTag>;

// Now, in UTC epoch milliseconds (the system clock).
int64_t NowMs();

// UTC epoch ms formatted with strftime's `format` (whole seconds; the
// milliseconds are the caller's to add).
std::string FormatUtcTime(int64_t ms, const char* format);

// ISO 6346 freight container number: owner code (3 letters), equipment
// category (U freight, J detachable equipment, Z trailer/chassis), 6-digit
// serial and a check digit computed from the other ten characters.
class ContainerNumber {
 public:
  // Accepts upper or lower case, and the spaces/hyphen often printed on
  // documents ("CSQU 305438-3"); returns the canonical 11-character form.
  static Result<ContainerNumber> Parse(std::string_view text);
  // The check digit ISO 6346 assigns to the first ten characters (0-9; a
  // remainder of 10 maps to 0). `first_ten` must already be well-formed.
  static int CheckDigit(std::string_view first_ten);

  const std::string& str() const { return value_; }
  std::string_view owner_code() const { return std::string_view(value_).substr(0, 3); }
  char category() const { return value_[3]; }
  auto operator<=>(const ContainerNumber&) const = default;

 private:
  explicit ContainerNumber(std::string v) : value_(std::move(v)) {}
  std::string value_;
};

// UN/LOCODE: ISO 3166-1 alpha-2 country code followed by a 3-character
// location code of letters and the digits 2-9 (e.g. THLCH, UZTAS, KZAKX).
class UnLocode {
 public:
  // Accepts "THLCH" or the printed "TH LCH"; upper-cases.
  static Result<UnLocode> Parse(std::string_view text);
  const std::string& str() const { return value_; }
  std::string_view country() const { return std::string_view(value_).substr(0, 2); }
  auto operator<=>(const UnLocode&) const = default;

 private:
  explicit UnLocode(std::string v) : value_(std::move(v)) {}
  std::string value_;
};

// Harmonized System commodity code: 6 digits internationally, extended to 8 or
// 10 by national tariffs. Dots and spaces ("8517.62") are removed. The chapter
// (first two digits) must be 01-97 and not the reserved 77.
class HsCode {
 public:
  static Result<HsCode> Parse(std::string_view text);
  const std::string& str() const { return value_; }
  int chapter() const { return (value_[0] - '0') * 10 + (value_[1] - '0'); }
  std::string_view heading() const { return std::string_view(value_).substr(0, 4); }
  std::string_view subheading() const { return std::string_view(value_).substr(0, 6); }
  auto operator<=>(const HsCode&) const = default;

 private:
  explicit HsCode(std::string v) : value_(std::move(v)) {}
  std::string value_;
};

// Bounds on event timestamps. Anything before kEarliestPlausibleMs
// (2000-01-01) is a broken clock or a unit mistake (seconds for ms).
inline constexpr int64_t kEarliestPlausibleMs = 946684800000;

// Validates an event time against the processing clock: rejects times before
// 2000 and times more than `max_future_ms` ahead of `now`.
Status ValidateEventTime(EventTimeMs t, ProcessingTimeMs now, int64_t max_future_ms);

// Validates WGS84 coordinates (degrees, finite, within range).
Status ValidateCoordinates(double lat, double lon);

// ISO 8601 UTC rendering of epoch milliseconds, e.g. 2026-11-29T03:41:00.000Z.
std::string FormatUtc(int64_t epoch_ms);

// The longest prefix of `text` of at most `max_bytes` that does not split a
// UTF-8 character.
std::string_view Utf8Prefix(std::string_view text, size_t max_bytes);

// At most `max_bytes` of `text`, cut at a UTF-8 character boundary; when cut,
// "..." and the full length follow ("ABC... (3145728 bytes)"). For messages,
// evidence and logs that quote outside input: a value is never echoed whole.
std::string ClipText(std::string_view text, size_t max_bytes);

}  // namespace boxwatch
