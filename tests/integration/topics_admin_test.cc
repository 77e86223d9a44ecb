// `boxwatch topics create|describe` logic against the real broker.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

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

// Runs a shell command; returns its exit code (-1 when it did not exit).
int RunShell(const std::string& command) {
  const int status = std::system(command.c_str());
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

// On a freshly started 3-broker cluster, right after its start, `boxwatch
// topics create` succeeds at the first try for every topic set: the describe
// that follows a create must not ask a broker whose metadata trails the
// controller.
TEST(TopicSetOnRealKafka, CreateSucceedsFirstTimeOnAFreshThreeBrokerCluster) {
  char tmpl[] = "/tmp/boxwatch-3brokers-XXXXXX";
  ASSERT_NE(::mkdtemp(tmpl), nullptr);
  const std::string dir = tmpl;
  const std::string kafka = std::string(BOXWATCH_SOURCE_DIR) + "/scripts/kafka";
  struct Stop {
    std::string cmd;
    ~Stop() { (void)std::system(cmd.c_str()); }
  } stop{kafka + " stop --dir " + dir + " >/dev/null 2>&1; rm -rf " + dir};
  ASSERT_EQ(RunShell(kafka + " start --dir " + dir + " --brokers 3 >/dev/null"), 0)
      << "scripts/kafka could not start a 3-broker cluster (its output is above)";
  std::ifstream in(dir + "/bootstrap");
  std::string bootstrap;
  std::getline(in, bootstrap);
  ASSERT_FALSE(bootstrap.empty());
  for (int i = 0; i < 3; ++i) {
    const std::string prefix = TestBroker::UniqueName("three") + ".";
    const std::string out = dir + "/create-" + std::to_string(i) + ".txt";
    const int code = RunShell(std::string(BOXWATCH_BINARY) + " topics create --bootstrap " + bootstrap + " --prefix " + prefix +
                         " --partitions 6 --replication 3 >" + out + " 2>&1");
    std::ifstream result(out);
    const std::string text((std::istreambuf_iterator<char>(result)), std::istreambuf_iterator<char>());
    EXPECT_EQ(code, 0) << "topic set " << i << " failed at the first try:\n" << text;
    EXPECT_NE(text.find("topic set OK"), std::string::npos) << text;
  }
}

}  // namespace
}  // namespace boxwatch::pipeline
