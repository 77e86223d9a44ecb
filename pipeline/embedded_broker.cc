#include "pipeline/embedded_broker.h"

#include <librdkafka/rdkafka_mock.h>

#include "pipeline/kafka_error.h"

namespace boxwatch::pipeline {

Result<std::unique_ptr<EmbeddedBroker>> EmbeddedBroker::Start(int brokers) {
  std::unique_ptr<EmbeddedBroker> b(new EmbeddedBroker());
  auto rk = NewKafkaHandle(RD_KAFKA_PRODUCER, {{"log_level", "3"}});
  if (!rk.ok()) return rk.error();
  b->owner_ = std::move(rk).value();
  b->mock_ = rd_kafka_mock_cluster_new(b->owner_.get(), brokers);
  if (b->mock_ == nullptr) {
    return Error{Errc::kFatal, "cannot start the embedded Kafka cluster (mock cluster)"};
  }
  b->bootstrap_ = rd_kafka_mock_cluster_bootstraps(b->mock_);
  return b;
}

EmbeddedBroker::~EmbeddedBroker() {
  if (mock_ != nullptr) rd_kafka_mock_cluster_destroy(mock_);
}

Status EmbeddedBroker::CreateTopic(const TopicSpec& spec) {
  const rd_kafka_resp_err_t err =
      rd_kafka_mock_topic_create(mock_, spec.name.c_str(), spec.partitions, spec.replication);
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    return FromKafkaResp(err, "create topic " + spec.name + " on the embedded broker");
  }
  return Status::Ok();
}

Status EmbeddedBroker::CreateTopics(const std::vector<TopicSpec>& specs) {
  for (const auto& s : specs) {
    Status st = CreateTopic(s);
    if (!st.ok()) return st;
  }
  return Status::Ok();
}

void EmbeddedBroker::InjectErrors(int16_t api_key, rd_kafka_resp_err_t err, int count) {
  std::vector<rd_kafka_resp_err_t> errs(static_cast<size_t>(count), err);
  rd_kafka_mock_push_request_errors_array(mock_, api_key, errs.size(), errs.data());
}

}  // namespace boxwatch::pipeline
