// Fuzzes what the hub parses of a request itself (httplib parses the HTTP):
// the query string and the Cookie header. Checks: no crash or sanitizer
// report, and a value found is a substring-free decoding bounded by the input.
#include <cstddef>
#include <cstdint>
#include <string>

#include "core/http.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  const auto query = boxwatch::http::ParseQuery(text);
  size_t decoded = 0;
  for (const auto& [k, v] : query) decoded += k.size() + v.size();
  if (decoded > size) __builtin_trap();  // decoding never grows the text
  const std::string cookie = boxwatch::http::CookieValue(text, "bw_session");
  if (cookie.size() >= size + 1) __builtin_trap();
  return 0;
}
