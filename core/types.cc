#include "core/types.h"

#include <array>
#include <chrono>
#include <cmath>
#include <ctime>

namespace boxwatch {

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}
namespace {

bool IsUpper(char c) { return c >= 'A' && c <= 'Z'; }
bool IsDigit(char c) { return c >= '0' && c <= '9'; }
char ToUpper(char c) { return (c >= 'a' && c <= 'z') ? static_cast<char>(c - 'a' + 'A') : c; }

// ISO 6346 values: digits their own value, letters A=10 onwards skipping
// multiples of 11; -1 for anything else.
constexpr std::array<int8_t, 256> kIsoValue = [] {
  std::array<int8_t, 256> t{};
  t.fill(-1);
  for (int d = 0; d < 10; ++d) t['0' + d] = static_cast<int8_t>(d);
  int v = 10;
  for (char c = 'A'; c <= 'Z'; ++c, ++v) {
    if (v % 11 == 0) ++v;
    t[static_cast<unsigned char>(c)] = static_cast<int8_t>(v);
  }
  return t;
}();

// Already in canonical form (what producers send): three capitals, U/J/Z,
// seven digits.
bool IsCanonicalForm(std::string_view s) {
  if (s.size() != 11) return false;
  for (int i = 0; i < 3; ++i) {
    if (!IsUpper(s[i])) return false;
  }
  if (s[3] != 'U' && s[3] != 'J' && s[3] != 'Z') return false;
  for (int i = 4; i < 11; ++i) {
    if (!IsDigit(s[i])) return false;
  }
  return true;
}

// Quotes outside input for an error message, clipped: a 3 MB "container
// number" must not come back whole in a gRPC status or a dead-letter header.
std::string Quoted(std::string_view s) { return "'" + ClipText(s, 32) + "'"; }

}  // namespace

int ContainerNumber::CheckDigit(std::string_view first_ten) {
  int sum = 0;
  for (size_t i = 0; i < 10; ++i) {
    const char c = first_ten[i];
    sum += kIsoValue[static_cast<unsigned char>(c)] << i;
  }
  return (sum % 11) % 10;
}

Result<ContainerNumber> ContainerNumber::Parse(std::string_view text) {
  if (IsCanonicalForm(text) && text[10] - '0' == CheckDigit(text)) return ContainerNumber(std::string(text));
  std::string s;
  s.reserve(11);
  for (char c : text) {
    if (c == ' ' || c == '-') continue;
    s.push_back(ToUpper(c));
  }
  if (s.size() != 11) {
    return InvalidArgument("container number " + Quoted(text) + " has " + std::to_string(s.size()) +
                           " characters; ISO 6346 needs 11 (owner code, category, serial, check digit)");
  }
  for (int i = 0; i < 3; ++i) {
    if (!IsUpper(s[i])) {
      return InvalidArgument("container number " + Quoted(text) +
                             ": owner code must be three letters A-Z");
    }
  }
  if (s[3] != 'U' && s[3] != 'J' && s[3] != 'Z') {
    return InvalidArgument("container number " + Quoted(text) + ": equipment category '" +
                           std::string(1, s[3]) + "' must be U, J or Z");
  }
  for (int i = 4; i < 11; ++i) {
    if (!IsDigit(s[i])) {
      return InvalidArgument("container number " + Quoted(text) +
                             ": serial and check digit must be seven digits");
    }
  }
  const int expected = CheckDigit(s);
  if (s[10] - '0' != expected) {
    return InvalidArgument("container number " + Quoted(text) + ": check digit is " +
                           std::string(1, s[10]) + " but ISO 6346 gives " +
                           std::to_string(expected) + " (mistyped number?)");
  }
  return ContainerNumber(std::move(s));
}

Result<UnLocode> UnLocode::Parse(std::string_view text) {
  std::string s;
  for (char c : text) {
    if (c == ' ') continue;
    s.push_back(ToUpper(c));
  }
  if (s.size() != 5) {
    return InvalidArgument("UN/LOCODE " + Quoted(text) +
                           " must be 5 characters: country (2 letters) + location (3)");
  }
  if (!IsUpper(s[0]) || !IsUpper(s[1])) {
    return InvalidArgument("UN/LOCODE " + Quoted(text) + ": country part must be two letters");
  }
  for (int i = 2; i < 5; ++i) {
    const char c = s[i];
    if (!IsUpper(c) && !(c >= '2' && c <= '9')) {
      return InvalidArgument("UN/LOCODE " + Quoted(text) +
                             ": location part allows only letters and digits 2-9");
    }
  }
  return UnLocode(std::move(s));
}

Result<HsCode> HsCode::Parse(std::string_view text) {
  std::string s;
  for (char c : text) {
    if (c == '.' || c == ' ') continue;
    if (!IsDigit(c)) {
      return InvalidArgument("HS code " + Quoted(text) + " may contain only digits (and dots)");
    }
    s.push_back(c);
  }
  if (s.size() != 6 && s.size() != 8 && s.size() != 10) {
    return InvalidArgument("HS code " + Quoted(text) + " has " + std::to_string(s.size()) +
                           " digits; expected 6 (international), 8 or 10 (national)");
  }
  const int chapter = (s[0] - '0') * 10 + (s[1] - '0');
  if (chapter < 1 || chapter > 97 || chapter == 77) {
    return InvalidArgument("HS code " + Quoted(text) + ": chapter " + s.substr(0, 2) +
                           " does not exist (01-97, 77 reserved)");
  }
  return HsCode(std::move(s));
}

Status ValidateEventTime(EventTimeMs t, ProcessingTimeMs now, int64_t max_future_ms) {
  if (t.value() < kEarliestPlausibleMs) {
    return InvalidArgument("event time " + std::to_string(t.value()) +
                           " ms is before 2000-01-01: a broken clock or seconds sent as ms");
  }
  if (t.value() > now.value() + max_future_ms) {
    return InvalidArgument("event time " + FormatUtc(t.value()) + " is " +
                           std::to_string((t.value() - now.value()) / 1000) +
                           " s in the future (limit " + std::to_string(max_future_ms / 1000) +
                           " s)");
  }
  return Status::Ok();
}

Status ValidateCoordinates(double lat, double lon) {
  if (!std::isfinite(lat) || !std::isfinite(lon) || lat < -90 || lat > 90 || lon < -180 ||
      lon > 180) {
    return InvalidArgument("coordinates (" + std::to_string(lat) + ", " + std::to_string(lon) +
                           ") are outside WGS84 range (lat -90..90, lon -180..180)");
  }
  return Status::Ok();
}

std::string FormatUtc(int64_t epoch_ms) {
  std::time_t secs = static_cast<std::time_t>(epoch_ms / 1000);
  int64_t ms = epoch_ms % 1000;
  if (ms < 0) {
    ms += 1000;
    --secs;
  }
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[40];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  char out[48];
  std::snprintf(out, sizeof out, "%s.%03dZ", buf, static_cast<int>(ms));
  return out;
}

std::string_view Utf8Prefix(std::string_view text, size_t max_bytes) {
  if (text.size() <= max_bytes) return text;
  size_t cut = max_bytes;
  // Back up over UTF-8 continuation bytes (10xxxxxx) so no character is split.
  while (cut > 0 && (static_cast<unsigned char>(text[cut]) & 0xC0) == 0x80) --cut;
  return text.substr(0, cut);
}

std::string ClipText(std::string_view text, size_t max_bytes) {
  if (text.size() <= max_bytes) return std::string(text);
  return std::string(Utf8Prefix(text, max_bytes)) + "... (" + std::to_string(text.size()) + " bytes)";
}

std::string FormatUtcTime(int64_t ms, const char* format) {
  const std::time_t t = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char b[64];
  return std::strftime(b, sizeof b, format, &tm) > 0 ? b : "";
}

}  // namespace boxwatch
