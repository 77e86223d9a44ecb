// libFuzzer target: the worker's decoders of outside records
// (operators/decode.h), each input message kind in protobuf and in JSON.
// The first byte picks the kind and encoding; the rest is the value.
#include <cstddef>
#include <cstdint>

#include "operators/decode.h"

using namespace boxwatch;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const uint8_t selector = data[0];
  operators::RecordView r{.key = "MSKU1234565",
                          .value = {reinterpret_cast<const char*>(data + 1), size - 1},
                          .encoding = (selector & 4) ? operators::Encoding::kJson : operators::Encoding::kProtobuf};
  const ProcessingTimeMs now(1795244700000);
  const operators::DecodeLimits limits;
  switch (selector & 3) {
    case 0: (void)operators::DecodeManifest(r, now, limits); break;
    case 1: (void)operators::DecodeScan(r, now, limits); break;
    case 2: (void)operators::DecodeGps(r, now, limits); break;
    default: (void)operators::DecodeOutcome(r, now, limits); break;
  }
  return 0;
}
