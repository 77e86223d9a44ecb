#pragma once
// Brokers for tests. kEmbedded starts librdkafka's mock cluster in-process;
// kReal uses the Apache Kafka broker that scripts/kafka started for the CTest
// fixture (its bootstrap list is in $BOXWATCH_KAFKA_BOOTSTRAP_FILE). A real
// broker that cannot be reached is a test failure with the reason, never a skip.

#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "core/result.h"
#include "pipeline/embedded_broker.h"
#include "pipeline/kafka_client.h"

namespace boxwatch::testing {

enum class BrokerKind { kEmbedded, kReal };

class TestBroker {
 public:
  static Result<std::unique_ptr<TestBroker>> Start(BrokerKind kind);
  const std::string& bootstrap() const { return bootstrap_; }
  BrokerKind kind() const { return kind_; }
  // The embedded cluster, for fault injection; null for the real broker.
  pipeline::EmbeddedBroker* embedded() const { return embedded_.get(); }
  Status CreateTopics(const std::vector<pipeline::TopicSpec>& specs);
  // A topic/group name unique to this process and call, so tests sharing a
  // broker never see each other's records.
  static std::string UniqueName(const std::string& base);

 private:
  BrokerKind kind_ = BrokerKind::kEmbedded;
  std::string bootstrap_;
  std::unique_ptr<pipeline::EmbeddedBroker> embedded_;
  std::unique_ptr<pipeline::KafkaAdmin> admin_;
};

// The Kafka client configuration of the tests' own clients (admin,
// producers, readers): the properties file $BOXWATCH_KAFKA_CLIENT_CONFIG names
// (a secured broker's admin principal), loaded once; empty when unset.
// A file that does not load is a failure TestBroker::Start reports.
Result<pipeline::KafkaProperties> TestClientProperties();

// Reads every record of `topic` (all partitions) with read_committed up to the
// last stable offset, waiting up to `timeout` for the end to be reached.
Result<std::vector<pipeline::OwnedRecord>> ReadAllCommitted(const std::string& bootstrap,
                                                        const std::string& topic, int partitions,
                                                        std::chrono::milliseconds timeout);

}  // namespace boxwatch::testing
