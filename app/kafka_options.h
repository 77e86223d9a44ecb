#pragma once
// The Kafka client options every Kafka-using command takes: --kafka-config
// FILE (else BOXWATCH_KAFKA_CONFIG) and repeatable --kafka key=value, plus
// BOXWATCH_RDKAFKA_* variables (pipeline/kafka_config.h has the rules).

#include <string>
#include <vector>

#include "core/result.h"
#include "pipeline/kafka_config.h"

namespace CLI {
class App;
}

namespace boxwatch::app {

struct KafkaCliOptions {
  std::string config_file;             // --kafka-config
  std::vector<std::string> overrides;  // --kafka key=value
};

void AddKafkaOptions(CLI::App* command, KafkaCliOptions* options);
// The command's librdkafka properties; every problem in the error.
Result<pipeline::KafkaProperties> ResolveKafkaOptions(const KafkaCliOptions& options);

}  // namespace boxwatch::app
