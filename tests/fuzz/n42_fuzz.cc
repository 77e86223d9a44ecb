// libFuzzer target: ANSI N42.42 documents (ingest/n42.h) on any bytes.
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "ingest/n42.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const auto p = boxwatch::ingest::ParseN42({reinterpret_cast<const char*>(data), size}, {.default_site = "GEPTI"});
  for (const auto& s : p.scans) {
    if (s.container_number().size() != 11) std::abort();
  }
  for (const auto& pr : p.problems) {
    if (pr.reason.empty()) std::abort();
  }
  return 0;
}
