// libFuzzer target: the UN/EDIFACT syntax layer (ingest/edifact.h) on any bytes.
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "ingest/edifact.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const auto p = boxwatch::ingest::ParseEdifact({reinterpret_cast<const char*>(data), size});
  if (p.ok) {
    // Every message the parser keeps has passed its UNT check.
    for (const auto& m : p.interchange.messages) {
      if (m.segments.size() < 2 || m.segments.front().tag != "UNH" || m.segments.back().tag != "UNT") std::abort();
    }
  } else if (p.problem.reason.empty()) {
    std::abort();  // a failure always names its reason
  }
  return 0;
}
