#pragma once
// Reads a whole topic (every partition, read_committed) from the start to
// the high watermark it has when the call begins: for tools (`boxwatch
// evaluate`) and tests. Waits up to `timeout` for the end; an open
// transaction holding the last stable offset back makes it time out.

#include <chrono>
#include <string>
#include <vector>

#include "core/result.h"
#include "pipeline/kafka_client.h"

namespace boxwatch::pipeline {

// `group` names the (never committed) consumer group of the readers;
// `kafka` is the command's client configuration (kafka_config.h).
Result<std::vector<OwnedRecord>> ReadToEnd(const std::string& bootstrap, const std::string& topic, int partitions,
                                           std::chrono::milliseconds timeout, const std::string& group,
                                           const KafkaProperties& kafka = {});

}  // namespace boxwatch::pipeline
