#include "tests/support/test_broker.h"

#include "pipeline/topic_reader.h"

#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <map>

namespace boxwatch::testing {

Result<std::unique_ptr<TestBroker>> TestBroker::Start(BrokerKind kind) {
  auto b = std::make_unique<TestBroker>();
  b->kind_ = kind;
  if (kind == BrokerKind::kEmbedded) {
    auto e = pipeline::EmbeddedBroker::Start(1);
    if (!e.ok()) return e.error();
    b->embedded_ = std::move(e).value();
    b->bootstrap_ = b->embedded_->bootstrap();
    return b;
  }
  const char* file = std::getenv("BOXWATCH_KAFKA_BOOTSTRAP_FILE");
  if (file == nullptr) {
    return Error{Errc::kNotFound,
                 "BOXWATCH_KAFKA_BOOTSTRAP_FILE is not set: run this test through ctest, whose "
                 "kafka_broker_start fixture starts the real broker (scripts/kafka start)"};
  }
  std::ifstream in(file);
  std::getline(in, b->bootstrap_);
  if (b->bootstrap_.empty()) {
    return Error{Errc::kNotFound, std::string("no bootstrap list in ") + file +
                                      ": the real Kafka broker did not start (see the "
                                      "kafka_broker_start test output)"};
  }
  auto props = TestClientProperties();
  if (!props.ok()) return props.error();
  auto admin = pipeline::KafkaAdmin::Create(b->bootstrap_, *props);
  if (!admin.ok()) return admin.error();
  b->admin_ = std::move(admin).value();
  return b;
}

Status TestBroker::CreateTopics(const std::vector<pipeline::TopicSpec>& specs) {
  if (embedded_) return embedded_->CreateTopics(specs);
  return admin_->CreateTopics(specs, std::chrono::seconds(30));
}

std::string TestBroker::UniqueName(const std::string& base) {
  static std::atomic<int> counter{0};
  return base + "-" + std::to_string(::getpid()) + "-" + std::to_string(counter++) + "-" +
         std::to_string(std::chrono::steady_clock::now().time_since_epoch().count() % 1000000);
}

Result<pipeline::KafkaProperties> TestClientProperties() {
  static const Result<pipeline::KafkaProperties> loaded = [] {
    const char* file = std::getenv("BOXWATCH_KAFKA_CLIENT_CONFIG");
    if (file == nullptr || *file == '\0') return Result<pipeline::KafkaProperties>(pipeline::KafkaProperties{});
    return pipeline::LoadKafkaProperties({.file = file, .overrides = {}, .env = pipeline::ProcessEnvironment()});
  }();
  return loaded;
}

Result<std::vector<pipeline::OwnedRecord>> ReadAllCommitted(const std::string& bootstrap,
                                                        const std::string& topic, int partitions,
                                                        std::chrono::milliseconds timeout) {
  auto props = TestClientProperties();
  if (!props.ok()) return props.error();
  return pipeline::ReadToEnd(bootstrap, topic, partitions, timeout, TestBroker::UniqueName("reader"), *props);
}

}  // namespace boxwatch::testing
