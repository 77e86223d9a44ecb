// The Kafka layer against both brokers: the embedded mock cluster (label
// unit, filter Embedded/*) and the real Apache Kafka broker (label
// integration, filter Real/*).

#include <gtest/gtest.h>

#include <map>
#include <set>

#include "pipeline/kafka_client.h"
#include "pipeline/partitioner.h"
#include "tests/support/test_broker.h"

namespace boxwatch::pipeline {
namespace {

using boxwatch::testing::BrokerKind;
using boxwatch::testing::ReadAllCommitted;
using boxwatch::testing::TestBroker;
using namespace std::chrono_literals;

class KafkaLayer : public ::testing::TestWithParam<BrokerKind> {
 protected:
  void SetUp() override {
    auto b = TestBroker::Start(GetParam());
    ASSERT_TRUE(b.ok()) << b.error().message;
    broker_ = std::move(b).value();
  }

  std::string NewTopic(const std::string& base, int partitions) {
    std::string name = TestBroker::UniqueName(base);
    Status s = broker_->CreateTopics({{name, partitions, 1, {}}});
    EXPECT_TRUE(s.ok()) << s.ToString();
    return name;
  }

  std::unique_ptr<KafkaProducer> Producer(const std::string& txn_id = "") {
    auto p = KafkaProducer::Create({.bootstrap = broker_->bootstrap(), .transactional_id = txn_id});
    EXPECT_TRUE(p.ok()) << p.error().message;
    return std::move(p).value();
  }

  std::unique_ptr<TestBroker> broker_;
};

TEST_P(KafkaLayer, RoundTripKeepsKeyValueTimestampAndHeaders) {
  const std::string topic = NewTopic("roundtrip", 1);
  auto producer = Producer();
  ASSERT_TRUE(producer
                  ->Produce({.topic = topic,
                             .key = "CSQU3054383",
                             .value = "payload",
                             .timestamp_ms = 1795000000123,
                             .headers = {{"content-type", "application/json"}}})
                  .ok());
  ASSERT_TRUE(producer->Flush(10s).ok());
  EXPECT_EQ(producer->delivered(), 1u);

  auto records = ReadAllCommitted(broker_->bootstrap(), topic, 1, 30s);
  ASSERT_TRUE(records.ok()) << records.error().message;
  ASSERT_EQ(records->size(), 1u);
  const OwnedRecord& m = records->front();
  EXPECT_EQ(m.key, "CSQU3054383");
  EXPECT_EQ(m.value, "payload");
  EXPECT_EQ(m.timestamp_ms, 1795000000123);
  ASSERT_TRUE(m.header("content-type").has_value());
  EXPECT_EQ(*m.header("content-type"), "application/json");
  EXPECT_FALSE(m.header("missing").has_value());
}

TEST_P(KafkaLayer, ProducerPartitionsKeysLikeTheJavaClient) {
  const int partitions = 8;
  const std::string topic = NewTopic("partitioner", partitions);
  auto producer = Producer();
  std::vector<std::string> keys;
  for (int i = 0; i < 200; ++i) keys.push_back("KEY" + std::to_string(i * 7919));
  for (const auto& k : keys) ASSERT_TRUE(producer->Produce({.topic = topic, .key = k, .value = k}).ok());
  ASSERT_TRUE(producer->Flush(10s).ok());

  auto records = ReadAllCommitted(broker_->bootstrap(), topic, partitions, 30s);
  ASSERT_TRUE(records.ok()) << records.error().message;
  ASSERT_EQ(records->size(), keys.size());
  std::set<int32_t> used;
  for (const auto& m : *records) {
    EXPECT_EQ(m.partition, JavaPartition(m.key, partitions)) << m.key;
    used.insert(m.partition);
  }
  EXPECT_EQ(used.size(), static_cast<size_t>(partitions));  // keys spread over all partitions
}

TEST_P(KafkaLayer, AbortedTransactionIsInvisibleToReadCommitted) {
  const std::string topic = NewTopic("txn", 1);
  auto producer = Producer(TestBroker::UniqueName("txn-id"));
  ASSERT_TRUE(producer->InitTransactions(30s).ok());

  ASSERT_TRUE(producer->BeginTransaction().ok());
  ASSERT_TRUE(producer->Produce({.topic = topic, .key = "k", .value = "aborted"}).ok());
  ASSERT_TRUE(producer->AbortTransaction(30s).ok());

  ASSERT_TRUE(producer->BeginTransaction().ok());
  ASSERT_TRUE(producer->Produce({.topic = topic, .key = "k", .value = "committed"}).ok());
  Status commit = producer->CommitTransaction(30s);
  ASSERT_TRUE(commit.ok()) << commit.ToString();

  auto records = ReadAllCommitted(broker_->bootstrap(), topic, 1, 30s);
  ASSERT_TRUE(records.ok()) << records.error().message;
  ASSERT_EQ(records->size(), 1u);
  EXPECT_EQ(records->front().value, "committed");
}

TEST_P(KafkaLayer, FencedProducerReportsFencedOnCommit) {
  const std::string topic = NewTopic("fence", 1);
  const std::string txn_id = TestBroker::UniqueName("fenced");
  auto first = Producer(txn_id);
  ASSERT_TRUE(first->InitTransactions(30s).ok());
  ASSERT_TRUE(first->BeginTransaction().ok());
  ASSERT_TRUE(first->Produce({.topic = topic, .key = "k", .value = "zombie"}).ok());

  std::unique_ptr<KafkaProducer> second;
  if (broker_->kind() == BrokerKind::kReal) {
    // A second producer with the same transactional.id takes over.
    second = Producer(txn_id);
    ASSERT_TRUE(second->InitTransactions(30s).ok());
  } else {
    // The mock cluster does not track producer epochs: inject the broker's
    // answer to a zombie instead.
    broker_->embedded()->InjectErrors(api_key::kEndTxn, RD_KAFKA_RESP_ERR_PRODUCER_FENCED, 1);
  }
  Status s = first->CommitTransaction(30s);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.code(), Errc::kFenced) << s.ToString();
}

class RecordingListener : public RebalanceListener {
 public:
  void OnAssigned(const std::vector<TopicPartition>& p) override {
    assigned.insert(assigned.end(), p.begin(), p.end());
  }
  void OnRevoked(const std::vector<TopicPartition>& p) override {
    revoked.insert(revoked.end(), p.begin(), p.end());
  }
  std::vector<TopicPartition> assigned;
  std::vector<TopicPartition> revoked;
};

TEST_P(KafkaLayer, ConsumeTransformProduceCommitsOffsetsInTheTransaction) {
  const std::string input = NewTopic("ctp-in", 2);
  const std::string output = NewTopic("ctp-out", 2);
  auto plain = Producer();
  for (int i = 0; i < 20; ++i) {
    ASSERT_TRUE(plain->Produce({.topic = input, .key = "k" + std::to_string(i), .value = std::to_string(i)}).ok());
  }
  ASSERT_TRUE(plain->Flush(10s).ok());

  const std::string group = TestBroker::UniqueName("ctp-group");
  RecordingListener listener;
  auto consumer = KafkaConsumer::Create({.bootstrap = broker_->bootstrap(),
                                         .group_id = group,
                                         .group_instance_id = group + "-member-0",
                                         .listener = &listener});
  ASSERT_TRUE(consumer.ok()) << consumer.error().message;
  auto& c = **consumer;
  ASSERT_TRUE(c.Subscribe({input}).ok());
  auto producer = Producer(TestBroker::UniqueName("ctp-txn"));
  ASSERT_TRUE(producer->InitTransactions(30s).ok());
  ASSERT_TRUE(producer->BeginTransaction().ok());

  int seen = 0;
  std::map<int32_t, int64_t> next;
  const auto deadline = std::chrono::steady_clock::now() + 60s;
  while (seen < 20 && std::chrono::steady_clock::now() < deadline) {
    auto m = c.Poll(200ms);
    ASSERT_TRUE(m.ok()) << m.error().message;
    if (!m->has_value()) continue;
    const Message& in = **m;
    ASSERT_TRUE(producer->Produce({.topic = output, .key = in.key(), .value = "out-" + std::string(in.value())}).ok());
    next[in.partition()] = in.offset() + 1;
    ++seen;
  }
  ASSERT_EQ(seen, 20);
  std::vector<TopicPartitionOffset> offsets;
  for (auto [p, o] : next) offsets.push_back({input, p, o});
  GroupMetadata gm = c.GroupMetadataForTransaction();
  Status s = producer->SendOffsetsToTransaction(offsets, gm.get(), 30s);
  ASSERT_TRUE(s.ok()) << s.ToString();
  s = producer->CommitTransaction(30s);
  ASSERT_TRUE(s.ok()) << s.ToString();

  EXPECT_TRUE(c.cooperative());
  EXPECT_EQ(listener.assigned.size(), 2u);  // both input partitions, through the listener

  if (broker_->kind() == BrokerKind::kReal) {
    // The mock cluster acknowledges TxnOffsetCommit without storing it, so
    // the group's committed offsets are checked on real Kafka only.
    auto committed = c.Committed({{input, 0}, {input, 1}}, 10s);
    ASSERT_TRUE(committed.ok()) << committed.error().message;
    for (const auto& tpo : *committed) EXPECT_EQ(tpo.offset, next[tpo.partition]);
  }

  auto records = ReadAllCommitted(broker_->bootstrap(), output, 2, 30s);
  ASSERT_TRUE(records.ok()) << records.error().message;
  EXPECT_EQ(records->size(), 20u);
  ASSERT_TRUE(c.Close().ok());
}

TEST_P(KafkaLayer, InvalidPropertiesAreAllReported) {
  auto p = KafkaProducer::Create({.bootstrap = broker_->bootstrap(),
                                  .extra = {{"no.such.property", "1"}, {"acks", "sometimes"}}});
  ASSERT_FALSE(p.ok());
  EXPECT_NE(p.error().message.find("no.such.property"), std::string::npos) << p.error().message;
  EXPECT_NE(p.error().message.find("acks: Invalid value"), std::string::npos) << p.error().message;
  // Refused values are not shown: a misspelt key may hold a secret.
  EXPECT_EQ(p.error().message.find("sometimes"), std::string::npos) << p.error().message;
}

TEST_P(KafkaLayer, TopicPropertiesApplyToTheirTopicAlone) {
  const std::string plain = NewTopic("plain", 1);
  const std::string other = NewTopic("other", 1);
  const std::string broken = NewTopic("broken", 1);
  auto p = KafkaProducer::Create({.bootstrap = broker_->bootstrap(),
                                  .topic_properties = {{plain, {{"compression.type", "none"}}},
                                                       {broken, {{"compression.type", "brotli"}}}}});
  ASSERT_TRUE(p.ok()) << p.error().message;
  // A bad topic property fails the produce to that topic, saying which.
  const Status refused = (*p)->Produce({.topic = broken, .key = "k", .value = "v"});
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.ToString().find("topic " + broken + ": "), std::string::npos) << refused.ToString();
  EXPECT_NE(refused.ToString().find("compression"), std::string::npos) << refused.ToString();
  // The others are produced: one with its own compression, one with the client's.
  for (const auto& topic : {plain, other}) {
    for (int i = 0; i < 50; ++i) {
      ASSERT_TRUE((*p)->Produce({.topic = topic, .key = "K" + std::to_string(i), .value = std::string(300, 'a' + i % 26)})
                      .ok());
    }
  }
  ASSERT_TRUE((*p)->Flush(10s).ok());
  for (const auto& topic : {plain, other}) {
    auto records = ReadAllCommitted(broker_->bootstrap(), topic, 1, 30s);
    ASSERT_TRUE(records.ok()) << records.error().message;
    ASSERT_EQ(records->size(), 50u) << topic;
    EXPECT_EQ(records->back().value, std::string(300, 'a' + 49 % 26));
  }
}

INSTANTIATE_TEST_SUITE_P(Embedded, KafkaLayer, ::testing::Values(BrokerKind::kEmbedded));
INSTANTIATE_TEST_SUITE_P(Real, KafkaLayer, ::testing::Values(BrokerKind::kReal));

}  // namespace
}  // namespace boxwatch::pipeline
