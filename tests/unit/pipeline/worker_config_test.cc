#include "pipeline/worker_config.h"

#include <gtest/gtest.h>

namespace boxwatch::pipeline {
namespace {

TEST(WorkerConfig, DefaultsApplyAndTheFileOverridesThem) {
  auto c = WorkerConfig::Parse("instance_id: worker-0\ncommit_interval_ms: 250\nkafka:\n  fetch.max.bytes: 1048576\n",
                               "w.yaml", {});
  ASSERT_TRUE(c.ok()) << c.error().message;
  EXPECT_EQ(c->instance_id, "worker-0");
  EXPECT_EQ(c->commit_interval_ms, 250);
  EXPECT_EQ(c->allowed_lateness_ms, 300000);  // default
  EXPECT_EQ(FindKafkaProperty(c->kafka, "fetch.max.bytes"), "1048576");
}

TEST(WorkerConfig, EnvironmentOverridesTheFile) {
  auto c = WorkerConfig::Parse("instance_id: from-file\nstate_dir: /a\n", "w.yaml",
                               {{"BOXWATCH_INSTANCE_ID", "pod-7"}, {"BOXWATCH_COMMIT_INTERVAL_MS", "50"}});
  ASSERT_TRUE(c.ok()) << c.error().message;
  EXPECT_EQ(c->instance_id, "pod-7");
  EXPECT_EQ(c->commit_interval_ms, 50);
  EXPECT_EQ(c->state_dir, "/a");
}

TEST(WorkerConfig, ReportsEveryProblemAtOnceWithLines) {
  auto c = WorkerConfig::Parse("commit_interval_ms: soon\nbootstrp: x:9092\nidle_wait_ms: -5\n", "bad.yaml",
                               {{"BOXWATCH_MAX_VALUE_BYTES", "12"}});
  ASSERT_FALSE(c.ok());
  const std::string& m = c.error().message;
  EXPECT_NE(m.find("configuration has 5 problem(s)"), std::string::npos) << m;
  EXPECT_NE(m.find("bad.yaml:1: commit_interval_ms must be an integer in range, got 'soon'"), std::string::npos) << m;
  EXPECT_NE(m.find("bad.yaml:2: unknown option 'bootstrp'"), std::string::npos) << m;
  EXPECT_NE(m.find("bad.yaml:3: idle_wait_ms must be an integer in range, got '-5'"), std::string::npos) << m;
  EXPECT_NE(m.find("environment BOXWATCH_MAX_VALUE_BYTES"), std::string::npos) << m;
  EXPECT_NE(m.find("instance_id is required"), std::string::npos) << m;
}

TEST(WorkerConfig, BacklogCadenceMustNotBeSmallerThanTheUsualOneNorNearTheTransactionTimeout) {
  auto ok = WorkerConfig::Parse("instance_id: w\n", "w.yaml", {});
  ASSERT_TRUE(ok.ok()) << ok.error().message;
  EXPECT_EQ(ok->backlog_threshold_records, 50000);
  EXPECT_EQ(ok->backlog_threshold_ms, 1000);
  EXPECT_EQ(ok->backlog_commit_interval_ms, 5000);
  EXPECT_EQ(ok->backlog_records_per_commit, 250000);
  auto c = WorkerConfig::Parse(
      "instance_id: w\ncommit_interval_ms: 500\nbacklog_commit_interval_ms: 200\nmax_records_per_commit: 9000\n"
      "backlog_records_per_commit: 8000\n",
      "w.yaml", {});
  ASSERT_FALSE(c.ok());
  const std::string& m = c.error().message;
  EXPECT_NE(m.find("backlog_commit_interval_ms (200) must be at least commit_interval_ms (500)"), std::string::npos) << m;
  EXPECT_NE(m.find("backlog_records_per_commit (8000) must be at least max_records_per_commit (9000)"),
            std::string::npos)
      << m;
  // Unset, they follow a usual cadence larger than their defaults.
  auto follows = WorkerConfig::Parse("instance_id: w\ncommit_interval_ms: 8000\nmax_records_per_commit: 400000\n",
                                     "w.yaml", {});
  ASSERT_TRUE(follows.ok()) << follows.error().message;
  EXPECT_EQ(follows->backlog_commit_interval_ms, 8000);
  EXPECT_EQ(follows->backlog_records_per_commit, 400000);
  auto t = WorkerConfig::Parse("instance_id: w\nbacklog_commit_interval_ms: 40000\n", "w.yaml", {});
  ASSERT_FALSE(t.ok());
  EXPECT_NE(t.error().message.find("at most half of transaction_timeout_ms (60000)"), std::string::npos)
      << t.error().message;
}

TEST(WorkerConfig, ProcessingGuaranteeIsExactlyOnceUnlessToldOtherwise) {
  auto c = WorkerConfig::Parse("instance_id: w\n", "w.yaml", {});
  ASSERT_TRUE(c.ok()) << c.error().message;
  EXPECT_TRUE(c->exactly_once);
  c = WorkerConfig::Parse("instance_id: w\nprocessing_guarantee: at_least_once\n", "w.yaml", {});
  ASSERT_TRUE(c.ok()) << c.error().message;
  EXPECT_FALSE(c->exactly_once);
  c = WorkerConfig::Parse("instance_id: w\nprocessing_guarantee: at_most_once\n", "w.yaml", {});
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.error().message.find(
                "w.yaml:2: processing_guarantee must be exactly_once or at_least_once, got 'at_most_once'"),
            std::string::npos)
      << c.error().message;
}

TEST(WorkerConfig, ChangelogCompressionIsNoneUnlessToldOtherwise) {
  auto c = WorkerConfig::Parse("instance_id: w\n", "w.yaml", {});
  ASSERT_TRUE(c.ok()) << c.error().message;
  EXPECT_EQ(c->changelog_compression, "none");
  c = WorkerConfig::Parse("instance_id: w\nchangelog_compression: zstd\n", "w.yaml", {});
  ASSERT_TRUE(c.ok()) << c.error().message;
  EXPECT_EQ(c->changelog_compression, "zstd");
  c = WorkerConfig::Parse("instance_id: w\n", "w.yaml", {{"BOXWATCH_CHANGELOG_COMPRESSION", "lz4"}});
  ASSERT_TRUE(c.ok()) << c.error().message;
  EXPECT_EQ(c->changelog_compression, "lz4");
  c = WorkerConfig::Parse("instance_id: w\nchangelog_compression: brotli\n", "w.yaml", {});
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.error().message.find(
                "w.yaml:2: changelog_compression must be none, lz4, zstd, snappy or gzip, got 'brotli'"),
            std::string::npos)
      << c.error().message;
}

TEST(WorkerConfig, RejectsBrokenYaml) {
  auto c = WorkerConfig::Parse("instance_id: [a\n", "bad.yaml", {});
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.error().message.find("not valid YAML"), std::string::npos);
}

TEST(WorkerConfig, MissingFileSaysWhich) {
  auto c = WorkerConfig::Load("/nonexistent/worker.yaml");
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.error().message.find("/nonexistent/worker.yaml"), std::string::npos);
}

// Every dead letter and changelog record must fit the producer's limit: a
// max_value_bytes or max_state_bytes that would not is refused at startup.
TEST(WorkerConfig, ValueAndStateLimitsMustFitUnderTheProducersMessageLimit) {
  auto d = WorkerConfig::Parse("instance_id: w\n", "w.yaml", {});
  ASSERT_TRUE(d.ok()) << d.error().message;
  EXPECT_EQ(d->max_value_bytes, 921600);
  EXPECT_EQ(d->OutputRecordLimit(), 1000000);
  EXPECT_EQ(d->StateLimit(), 1000000 - WorkerConfig::kRecordOverheadBytes);

  auto c = WorkerConfig::Parse("instance_id: w\nmax_value_bytes: 1048576\nmax_state_bytes: 2000000\n", "big.yaml", {});
  ASSERT_FALSE(c.ok());
  const std::string& m = c.error().message;
  EXPECT_NE(m.find("configuration has 2 problem(s)"), std::string::npos) << m;
  EXPECT_NE(m.find("max_value_bytes 1048576 leaves no room for a dead letter under the producer's message.max.bytes 1000000"),
            std::string::npos)
      << m;
  EXPECT_NE(m.find("max_state_bytes 2000000 must be 0 (default) or from 524288 to 934464"), std::string::npos) << m;

  auto raised = WorkerConfig::Parse(
      "instance_id: w\nmax_value_bytes: 4194304\nkafka:\n  message.max.bytes: \"8000000\"\n", "raised.yaml", {});
  ASSERT_TRUE(raised.ok()) << raised.error().message;
  EXPECT_EQ(raised->StateLimit(), 8000000 - WorkerConfig::kRecordOverheadBytes);
  auto junk = WorkerConfig::Parse("instance_id: w\nkafka:\n  message.max.bytes: lots\n", "junk.yaml", {});
  ASSERT_FALSE(junk.ok());
  EXPECT_NE(junk.error().message.find("message.max.bytes must be an integer"), std::string::npos) << junk.error().message;
}

}  // namespace
}  // namespace boxwatch::pipeline
