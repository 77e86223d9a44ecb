#pragma once
// Sends simulated traffic to Kafka (or to a file) in delivery order, as
// upstream systems would: keyed by container number with the
// Java-compatible partitioner, CreateTime = event time, and a content-type
// header on records sent as canonical JSON.

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "core/result.h"
#include "pipeline/kafka_client.h"
#include "pipeline/topics.h"
#include "sim/traffic.h"

namespace boxwatch::sim {

struct ProduceOptions {
  double rate = 0;         // records per second; 0: as fast as the producer goes

  const std::atomic<bool>* stop = nullptr;  // checked between records; stops early when set
  // Called about every 1000 records and at the end with (sent, total).
  std::function<void(size_t, size_t)> progress;
};

// Produces `records` and waits for their delivery. Returns how many were
// sent (fewer than all when stopped).
Result<size_t> ProduceTraffic(pipeline::KafkaProducer& producer, const pipeline::TopicNames& names,
                              const std::vector<TrafficRecord>& records, const ProduceOptions& options);

// Writes the records as JSON lines:
//   {"topic":"boxwatch.gps","key":"MSKU1000003","timestamp_ms":1794970980000,
//    "content_type":"application/x-protobuf","value_base64":"..."}
Status WriteTrafficFile(const std::string& path, const pipeline::TopicNames& names,
                        const std::vector<TrafficRecord>& records);

}  // namespace boxwatch::sim
