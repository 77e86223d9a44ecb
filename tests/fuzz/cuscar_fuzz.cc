// libFuzzer target: a CUSCAR interchange through syntax and mapping
// (ingest/convert.h), as `boxwatch ingest` converts a raw record.
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "boxwatch/v1/manifest.pb.h"
#include "ingest/convert.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const auto c = boxwatch::ingest::Convert(boxwatch::ingest::RawFormat::kCuscar,
                                           {reinterpret_cast<const char*>(data), size}, {});
  for (const auto& r : c.records) {
    boxwatch::v1::Manifest m;
    if (!m.ParseFromString(r.value) || m.container_number() != r.key) std::abort();
  }
  for (const auto& r : c.rejected) {
    if (r.reason.empty()) std::abort();
  }
  return 0;
}
