#include "pipeline/topics.h"

#include <gtest/gtest.h>

namespace boxwatch::pipeline {
namespace {

TEST(TopicNames, PrefixIsPrepended) {
  EXPECT_EQ(TopicNames().Name(TopicRole::kGps), "boxwatch.gps");
  EXPECT_EQ(TopicNames("lab.").Name(TopicRole::kStateChangelog), "lab.boxwatch.state-changelog");
}

TEST(TopicSetSpecs, CompactsChangelogProfilesAndReference) {
  auto specs = TopicSetSpecs({.prefix = "", .partitions = 12, .replication = 3});
  ASSERT_EQ(specs.size(), 12u);
  std::map<std::string, TopicSpec> by_name;
  for (auto& s : specs) by_name[s.name] = s;
  EXPECT_EQ(by_name["boxwatch.state-changelog"].configs["cleanup.policy"], "compact");
  EXPECT_EQ(by_name["boxwatch.profiles"].configs["cleanup.policy"], "compact");
  EXPECT_EQ(by_name["boxwatch.reference"].configs["cleanup.policy"], "compact");
  EXPECT_EQ(by_name["boxwatch.gps"].configs["cleanup.policy"], "delete");
  EXPECT_EQ(by_name["boxwatch.gps"].partitions, 12);
  EXPECT_EQ(by_name["boxwatch.state-changelog"].partitions, 12);
  EXPECT_EQ(by_name["boxwatch.profiles"].partitions, 1);
  EXPECT_EQ(by_name["boxwatch.gps"].configs["min.insync.replicas"], "2");
  EXPECT_EQ(by_name["boxwatch.raw.cuscar"].configs["cleanup.policy"], "delete");
  EXPECT_EQ(by_name["boxwatch.raw.n42"].partitions, 12);
  EXPECT_EQ(by_name["boxwatch.ingest-files"].configs["cleanup.policy"], "compact");
  EXPECT_EQ(by_name["boxwatch.ingest-files"].partitions, 1);
}

std::map<std::string, int> Counts(int p) {
  std::map<std::string, int> counts;
  for (const auto& s : TopicSetSpecs({.partitions = p})) counts[s.name] = s.partitions;
  return counts;
}

TEST(CheckTopicSet, AcceptsConsistentSet) {
  EXPECT_TRUE(CheckTopicSet(TopicNames(), Counts(8)).ok());
}

TEST(CheckTopicSet, ListsEveryMismatchAndMissingTopic) {
  auto counts = Counts(8);
  counts["boxwatch.gps"] = 12;
  counts["boxwatch.scans"] = 4;
  counts.erase("boxwatch.alerts");
  Status s = CheckTopicSet(TopicNames(), counts);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("topic boxwatch.gps has 12 partitions but boxwatch.manifests has 8"),
            std::string::npos)
      << s.message();
  EXPECT_NE(s.message().find("topic boxwatch.scans has 4 partitions"), std::string::npos);
  EXPECT_NE(s.message().find("topic boxwatch.alerts does not exist"), std::string::npos);
}

}  // namespace
}  // namespace boxwatch::pipeline
