// `boxwatch topics create|describe` logic against the real broker.
#include <gtest/gtest.h>

#include "pipeline/topics.h"
#include "tests/support/test_broker.h"

namespace boxwatch::pipeline {
namespace {

using boxwatch::testing::BrokerKind;
using boxwatch::testing::TestBroker;
using namespace std::chrono_literals;

TEST(TopicSetOnRealKafka, CreatesEveryTopicOnceAndPassesTheCoPartitionCheck) {
  auto broker = TestBroker::Start(BrokerKind::kReal);
  ASSERT_TRUE(broker.ok()) << broker.error().message;
  const std::string prefix = TestBroker::UniqueName("topics") + ".";
  auto admin = KafkaAdmin::Create((*broker)->bootstrap());
  ASSERT_TRUE(admin.ok()) << admin.error().message;
  const auto specs = TopicSetSpecs({.prefix = prefix, .partitions = 6, .replication = 1});

  std::vector<std::string> existing;
  Status s = (*admin)->CreateTopics(specs, 30s, &existing);
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_TRUE(existing.empty());

  // Idempotent: a second create reports every topic as existing.
  s = (*admin)->CreateTopics(specs, 30s, &existing);
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(existing.size(), specs.size());

  std::vector<std::string> names;
  for (const auto& t : specs) names.push_back(t.name);
  auto counts = (*admin)->PartitionCounts(names, 10s);
  ASSERT_TRUE(counts.ok()) << counts.error().message;
  EXPECT_EQ(counts->at(prefix + "boxwatch.gps"), 6);
  EXPECT_EQ(counts->at(prefix + "boxwatch.profiles"), 1);
  EXPECT_TRUE(CheckTopicSet(TopicNames(prefix), *counts).ok());
}

TEST(TopicSetOnRealKafka, CoPartitionCheckRejectsMismatchedCounts) {
  auto broker = TestBroker::Start(BrokerKind::kReal);
  ASSERT_TRUE(broker.ok()) << broker.error().message;
  const std::string prefix = TestBroker::UniqueName("mismatch") + ".";
  auto admin = KafkaAdmin::Create((*broker)->bootstrap());
  ASSERT_TRUE(admin.ok());
  auto specs = TopicSetSpecs({.prefix = prefix, .partitions = 4});
  for (auto& t : specs) {
    if (t.name == prefix + "boxwatch.gps") t.partitions = 6;
  }
  ASSERT_TRUE((*admin)->CreateTopics(specs, 30s).ok());
  std::vector<std::string> names;
  for (const auto& t : specs) names.push_back(t.name);
  auto counts = (*admin)->PartitionCounts(names, 10s);
  ASSERT_TRUE(counts.ok());
  Status s = CheckTopicSet(TopicNames(prefix), *counts);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find(prefix + "boxwatch.gps has 6 partitions"), std::string::npos)
      << s.message();
}

}  // namespace
}  // namespace boxwatch::pipeline
