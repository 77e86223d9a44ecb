// libFuzzer target: loading a container's state from its stored parts
// (pipeline/state_parts.h, ContainerStateCodec::Load), then storing it again.
// The bytes are the worker's own, but they come back from a volume or from
// the changelog topic, where a corrupt or foreign record must fail the load
// with an error, never crash the worker or make it read out of bounds.
//
// Input: records, each a kind byte, for a window chunk a 4-byte little-endian
// chunk number, a 2-byte little-endian length and that many value bytes.
// Kinds (mod 4): 0 the movement part (under the container number), 1 the
// declaration ("#d"), 2 the evaluation ("#e"), 3 a window chunk ("#w<n>").
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "boxwatch/v1/state.pb.h"
#include "pipeline/state_parts.h"
#include "tests/support/map_partition.h"

using namespace boxwatch;

namespace {

constexpr char kBox[] = "MSKU1234565";

uint64_t Little(const uint8_t* p, int bytes) {
  uint64_t v = 0;
  for (int i = 0; i < bytes; ++i) v |= static_cast<uint64_t>(p[i]) << (8 * i);
  return v;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  testing::MapPartition store;
  size_t at = 0;
  while (at < size) {
    const uint8_t kind = data[at++] % 4;
    std::string key = kBox;
    if (kind == 1) key += pipeline::kDeclarationSuffix;
    if (kind == 2) key += pipeline::kEvaluationSuffix;
    if (kind == 3) {
      if (size - at < 4) break;
      key = pipeline::WindowChunkKey(kBox, Little(data + at, 4));
      at += 4;
    }
    if (size - at < 2) break;
    const size_t length = Little(data + at, 2);
    at += 2;
    const size_t taken = length < size - at ? length : size - at;
    store.values[key] = std::string(reinterpret_cast<const char*>(data + at), taken);
    at += taken;
  }
  v1::ContainerState state;
  pipeline::ContainerStateCodec::Meta meta;
  Result<bool> loaded = pipeline::ContainerStateCodec::Load(store, kBox, &state, &meta);
  if (!loaded.ok() || !*loaded) return 0;
  // What loaded is stored again as a worker would after a fix joined, and
  // the writes ordered for the changelog.
  std::vector<state::PartitionStore::Write> writes;
  if (pipeline::ContainerStateCodec::Save(kBox, state, pipeline::ContainerStateCodec::kAllParts, &meta, &writes)) {
    pipeline::OrderForChangelog(&writes);
  }
  return 0;
}
