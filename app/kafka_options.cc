#include "app/kafka_options.h"

#include <CLI/CLI.hpp>

namespace boxwatch::app {

void AddKafkaOptions(CLI::App* command, KafkaCliOptions* options) {
  command->add_option("--kafka-config", options->config_file,
                      "librdkafka properties file (key=value lines; security settings, ${file:PATH} and "
                      "${env:NAME} references for secrets); default: $BOXWATCH_KAFKA_CONFIG "
                      "(docs/configuration.md, \"Kafka client configuration\")");
  command->add_option("--kafka", options->overrides,
                      "Extra librdkafka property key=value (repeatable; never a secret: use --kafka-config)");
}

Result<pipeline::KafkaProperties> ResolveKafkaOptions(const KafkaCliOptions& options) {
  return pipeline::LoadKafkaProperties(
      {.file = options.config_file, .overrides = options.overrides, .env = pipeline::ProcessEnvironment()});
}

}  // namespace boxwatch::app
