#include "tests/support/test_broker.h"

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
  auto admin = pipeline::KafkaAdmin::Create(b->bootstrap_);
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

Result<std::vector<pipeline::OwnedRecord>> ReadAllCommitted(const std::string& bootstrap,
                                                        const std::string& topic, int partitions,
                                                        std::chrono::milliseconds timeout) {
  auto consumer = pipeline::KafkaConsumer::Create(
      {.bootstrap = bootstrap, .group_id = TestBroker::UniqueName("reader"), .read_committed = true});
  if (!consumer.ok()) return consumer.error();
  auto& c = **consumer;
  // The end is the high watermark, asked with read_uncommitted: a
  // read_committed query returns the last stable offset, which stops short of
  // a transaction whose commit marker is not written yet.
  auto probe = pipeline::KafkaConsumer::Create(
      {.bootstrap = bootstrap, .group_id = TestBroker::UniqueName("probe"), .read_committed = false});
  if (!probe.ok()) return probe.error();
  std::vector<pipeline::TopicPartitionOffset> start;
  std::map<int32_t, int64_t> end;
  for (int32_t p = 0; p < partitions; ++p) {
    auto wm = (*probe)->Watermarks(topic, p, std::chrono::seconds(10));
    if (!wm.ok()) return wm.error();
    end[p] = wm->second;
    start.push_back({topic, p, RD_KAFKA_OFFSET_BEGINNING});
  }
  Status s = c.Assign(start);
  if (!s.ok()) return s.error();
  std::vector<pipeline::OwnedRecord> out;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    auto positions = c.Positions();
    if (!positions.ok()) return positions.error();
    std::map<int32_t, int64_t> at;
    for (const auto& pos : *positions) at[pos.partition] = pos.offset;
    int done = 0;
    for (const auto& [p, e] : end) {
      if (e == 0 || (at.count(p) && at[p] >= e)) ++done;
    }
    if (done == partitions) break;
    if (std::chrono::steady_clock::now() > deadline) {
      return Error{Errc::kTimeout, "reading " + topic + " did not reach the end within " +
                                       std::to_string(timeout.count()) +
                                       " ms (an open transaction holding the last stable offset?)"};
    }
    auto m = c.Poll(std::chrono::milliseconds(200));
    if (!m.ok()) return m.error();
    if (m->has_value()) out.push_back((*m)->ToOwned());
  }
  return out;
}

}  // namespace boxwatch::testing
