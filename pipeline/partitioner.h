#pragma once
// The partition Kafka's Java clients choose for a keyed record:
// (murmur2(key) & 0x7fffffff) % partitions. librdkafka's "murmur2_random"
// partitioner gives the same result, and every boxwatch producer uses it, so
// a container number maps to the same partition p in every topic whichever
// client wrote it. Upstream producers must use the same partitioner.

#include <cstdint>
#include <string_view>

namespace boxwatch::pipeline {

// Kafka's 32-bit murmur2 (seed 0x9747b28c), over the key's bytes.
uint32_t Murmur2(std::string_view key);

// Partition for `key` among `partitions` (> 0), as Kafka's Java client picks it.
int32_t JavaPartition(std::string_view key, int32_t partitions);

}  // namespace boxwatch::pipeline
