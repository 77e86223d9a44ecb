// libFuzzer target: the worker's decoders of outside records
// (operators/decode.h), each input message kind in protobuf and in JSON.
// The first byte picks the kind and encoding; the rest is the value.
// A protobuf value whose parsed message breaks the schema must be refused
// for exactly that (the decoders look at the wire bytes first), and what
// the GPS fast path (ParseGpsWire) takes must be what the generic parse
// makes of the bytes.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <type_traits>
#include <variant>

#include "operators/decode.h"

using namespace boxwatch;

namespace {

template <typename T, typename Decode>
void Check(const operators::RecordView& r, Decode decode) {
  const ProcessingTimeMs now(1795244700000);
  const operators::DecodeLimits limits;
  auto d = decode(r, now, limits);
  if (r.encoding != operators::Encoding::kProtobuf || r.value.size() > limits.max_value_bytes) return;
  T parsed;
  const bool parses = parsed.ParseFromArray(r.value.data(), static_cast<int>(r.value.size()));
  if constexpr (std::is_same_v<T, v1::GpsEvent>) {
    // The fast path takes only what the generic parse takes alike, schema-clean.
    v1::GpsEvent fast;
    if (operators::ParseGpsWire(r.value, &fast) &&
        (!parses || fast.SerializeAsString() != parsed.SerializeAsString() || operators::SchemaProblem(parsed))) {
      std::abort();
    }
  }
  if (!parses) return;
  const auto problem = operators::SchemaProblem(parsed);
  if (!problem) return;
  const auto* rejected = std::get_if<operators::Rejection>(&d);
  if (rejected == nullptr || rejected->detail != *problem) std::abort();  // let through what the schema refuses
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const uint8_t selector = data[0];
  operators::RecordView r{.key = "MSKU1234565",
                          .value = {reinterpret_cast<const char*>(data + 1), size - 1},
                          .encoding = (selector & 4) ? operators::Encoding::kJson : operators::Encoding::kProtobuf};
  switch (selector & 3) {
    case 0: Check<v1::Manifest>(r, operators::DecodeManifest); break;
    case 1: Check<v1::ScanResult>(r, operators::DecodeScan); break;
    case 2: Check<v1::GpsEvent>(r, operators::DecodeGps); break;
    default: Check<v1::InspectionOutcome>(r, operators::DecodeOutcome); break;
  }
  return 0;
}
