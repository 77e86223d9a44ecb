#pragma once
// An in-process Kafka cluster (librdkafka's mock cluster) for the demo and for
// fault injection. It speaks the Kafka protocol on 127.0.0.1, supports
// transactions and consumer groups, but keeps only a few MB per partition and
// cannot create topics through the admin API: use CreateTopic here instead.
// Not a substitute for real Kafka in integration tests.

#include <memory>
#include <string>
#include <vector>

#include "core/result.h"
#include "pipeline/kafka_client.h"

typedef struct rd_kafka_mock_cluster_s rd_kafka_mock_cluster_t;

namespace boxwatch::pipeline {

// Kafka protocol API keys used for fault injection (Kafka protocol guide).
namespace api_key {
inline constexpr int16_t kProduce = 0;
inline constexpr int16_t kFetch = 1;
inline constexpr int16_t kInitProducerId = 22;
inline constexpr int16_t kAddPartitionsToTxn = 24;
inline constexpr int16_t kEndTxn = 26;
inline constexpr int16_t kTxnOffsetCommit = 28;
}  // namespace api_key

class EmbeddedBroker {
 public:
  static Result<std::unique_ptr<EmbeddedBroker>> Start(int brokers = 1);
  ~EmbeddedBroker();

  const std::string& bootstrap() const { return bootstrap_; }
  Status CreateTopic(const TopicSpec& spec);
  Status CreateTopics(const std::vector<TopicSpec>& specs);
  // Makes the next `count` requests of Kafka API `api_key` fail with `err`
  // (fault injection, e.g. to fence a transactional producer).
  void InjectErrors(int16_t api_key, rd_kafka_resp_err_t err, int count);
  rd_kafka_mock_cluster_t* mock() const { return mock_; }

 private:
  EmbeddedBroker() = default;
  KafkaHandle owner_;  // the mock cluster lives inside this client instance
  rd_kafka_mock_cluster_t* mock_ = nullptr;
  std::string bootstrap_;
};

}  // namespace boxwatch::pipeline
