// The worker against real Apache Kafka with the inputs and failures that
// fault testing found harmful: values at and over the size limits, events
// that would grow a state past what one changelog record carries, record
// timestamps centuries ahead, and an error exit with a transaction open.

#include <gtest/gtest.h>
#include <sys/wait.h>

#include "tests/support/worker_harness.h"

namespace boxwatch::testing {
namespace {

using namespace std::chrono_literals;

std::string WithCheckDigit(const std::string& first_ten) {
  return first_ten + static_cast<char>('0' + ContainerNumber::CheckDigit(first_ten) % 10);
}

// `m` with goods lines added (descriptions of 3,000 bytes, inside the
// 4,096-byte text limit) until the encoded manifest is exactly `bytes` long.
std::string ManifestOfSize(v1::Manifest m, size_t bytes) {
  const v1::GoodsLine line = m.goods(0);
  while (m.ByteSizeLong() + 3500 < bytes) {
    *m.add_goods() = line;
    m.mutable_goods(m.goods_size() - 1)->set_description(std::string(3000, 'x'));
  }
  *m.add_goods() = line;
  auto* last = m.mutable_goods(m.goods_size() - 1);
  last->set_description("");
  const size_t base = m.ByteSizeLong();
  for (size_t pad = bytes - base; pad + 8 > bytes - base && pad > 0; --pad) {
    last->set_description(std::string(pad, 'x'));
    if (m.ByteSizeLong() == bytes) return m.SerializeAsString();
  }
  ADD_FAILURE() << "cannot pad a manifest to " << bytes << " bytes";
  return {};
}

TEST(WorkerFaults, OversizedRecordsAndFarFutureTimestampsAreDeadLetteredWhileEveryPartitionGoesOn) {
  // Topics that take records up to 8 MB and timestamps from any future, as a
  // site's may (Kafka 4 brokers refuse timestamps over an hour ahead by
  // default; 3.x brokers take any): the worker must survive what they carry.
  auto h = WorkerHarness::Create(4, [](std::vector<pipeline::TopicSpec>& specs) {
    for (auto& t : specs) {
      t.configs["max.message.bytes"] = "8000000";
      t.configs["message.timestamp.after.max.ms"] = "9223372036854775807";
    }
  });
  ASSERT_TRUE(h.ok()) << h.error().message;
  sim::Traffic traffic = sim::GenerateTraffic(RecentTraffic(400, 21), DefaultProfile());
  constexpr size_t kMaxValue = 921600;  // the default max_value_bytes

  v1::Manifest sample;
  sim::TrafficRecord gps_sample;
  for (const auto& r : traffic.records) {
    if (r.role == pipeline::TopicRole::kManifests && !r.json && sample.container_number().empty()) {
      ASSERT_TRUE(sample.ParseFromString(r.value));
    }
    if (r.role == pipeline::TopicRole::kGps && !r.json && gps_sample.key.empty() && r.expect_dead_letter.empty()) {
      gps_sample = r;
    }
  }
  ASSERT_FALSE(sample.container_number().empty());
  ASSERT_FALSE(gps_sample.key.empty());
  const size_t mid = traffic.records.size() / 2;
  const int64_t t_mid = traffic.records[mid].timestamp_ms;

  std::vector<sim::TrafficRecord> specials;
  // A valid 500,000-byte manifest for a new box: processed (its state stays
  // under max_state_bytes less the room kept for GPS fixes).
  const std::string big_box = WithCheckDigit("BWXU000001");
  v1::Manifest big = sample;
  big.set_container_number(big_box);
  big.set_version(1);
  big.set_declared_at_ms(t_mid);
  specials.push_back({pipeline::TopicRole::kManifests, big_box, ManifestOfSize(big, 500000), t_mid, false, ""});
  // Its amendment, as large: the state would hold both, past the limit.
  big.set_version(2);
  big.set_declared_at_ms(t_mid + 60000);
  specials.push_back(
      {pipeline::TopicRole::kManifests, big_box, ManifestOfSize(big, 500000), t_mid + 60000, false, "state_too_large"});
  // A valid manifest of exactly max_value_bytes: accepted by size, too large as state.
  const std::string max_box = WithCheckDigit("BWXU000002");
  big.set_container_number(max_box);
  big.set_version(1);
  specials.push_back(
      {pipeline::TopicRole::kManifests, max_box, ManifestOfSize(big, kMaxValue), t_mid, false, "state_too_large"});
  // Values over max_value_bytes: their dead letters carry the first max_value_bytes.
  specials.push_back({pipeline::TopicRole::kGps, gps_sample.key, std::string(1200000, 'z'), t_mid, false, "oversized"});
  specials.push_back({pipeline::TopicRole::kGps, gps_sample.key, std::string(5000000, 'z'), t_mid, false, "oversized"});
  ASSERT_EQ(specials[0].value.size(), 500000u);
  ASSERT_EQ(specials[2].value.size(), kMaxValue);

  // Valid payloads whose Kafka timestamps say year 2200.
  constexpr int64_t kYear2200 = 7258118400000;
  std::vector<sim::TrafficRecord> future;
  int picked = 0;
  for (const auto& r : traffic.records) {
    if (r.role != pipeline::TopicRole::kGps || r.json || !r.expect_dead_letter.empty() || r.key == gps_sample.key) continue;
    if (picked > 0 && future.back().key == r.key) continue;
    future.push_back({r.role, r.key, r.value, kYear2200, false, "future_timestamp"});
    if (++picked == 3) break;
  }
  ASSERT_EQ(future.size(), 3u);
  traffic.records.insert(traffic.records.begin() + static_cast<long>(mid), specials.begin(), specials.end());
  for (size_t i = 0; i < future.size(); ++i) {
    const size_t at = traffic.records.size() * (i + 1) / 4;
    traffic.records.insert(traffic.records.begin() + static_cast<long>(at), future[i]);
  }

  std::map<std::string, int> want_dead;
  size_t want_processed = 0;
  for (const auto& r : traffic.records) {
    if (r.expect_dead_letter.empty()) ++want_processed; else ++want_dead[r.expect_dead_letter];
  }
  const AlertDigest expected = ExpectedAlerts(traffic, DefaultProfile(), 4);
  ASSERT_GT(expected.size(), 10u);
  ASSERT_TRUE((*h)->Produce(traffic.records).ok());

  auto worker = (*h)->StartWorker("faults-0", {{"max_value_bytes", std::to_string(kMaxValue)}});
  ASSERT_TRUE(worker.ok()) << worker.error().message;
  // Every record committed (the alerts may be complete before the last
  // records, which raise none and may be dead letters), then the alerts.
  EXPECT_TRUE(WaitForCommittedRecords(**worker, static_cast<int64_t>(traffic.records.size()), 240s))
      << "the worker did not commit every input record within 240 s";
  auto alerts = (*h)->WaitForAlerts(expected.size(), 240s);
  ASSERT_TRUE(alerts.ok()) << alerts.error().message;
  const int status = (*worker)->Kill(SIGTERM);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "worker exit status " << status;
  ASSERT_TRUE((*worker)->WaitForLine("{\"event\":\"stopped\"", 5s));
  const std::string stopped = (*worker)->last_line();
  std::printf("%s\n", stopped.c_str());
  EXPECT_EQ(JsonField(stopped, "late"), 0) << "a far-future timestamp made other records late: " << stopped;
  EXPECT_EQ(JsonField(stopped, "processed"), static_cast<int64_t>(want_processed)) << stopped;
  EXPECT_TRUE(Digest(*alerts) == expected) << "alerts differ from the offline run: " << Digest(*alerts).size()
                                           << " got, " << expected.size() << " expected";

  auto dead = (*h)->DeadLetters();
  ASSERT_TRUE(dead.ok()) << dead.error().message;
  std::map<std::string, int> got_dead;
  for (const auto& r : *dead) {
    const std::string reason(r.header("boxwatch-reason").value_or("(none)"));
    ++got_dead[reason];
    if (reason == "oversized") {
      EXPECT_EQ(r.value.size(), kMaxValue);
      EXPECT_EQ(r.header("boxwatch-truncated").value_or(""), "true");
      const std::string original(r.header("boxwatch-original-bytes").value_or(""));
      EXPECT_TRUE(original == "1200000" || original == "5000000") << original;
      EXPECT_TRUE(r.header("boxwatch-source-offset").has_value());
    }
    if (reason == "state_too_large") {
      EXPECT_TRUE(r.value.size() == 500000u || r.value.size() == kMaxValue) << "a refused valid event keeps its bytes whole";
      EXPECT_TRUE(r.key == big_box || r.key == max_box) << r.key;
      EXPECT_FALSE(r.header("boxwatch-truncated").has_value());
    }
    if (reason == "future_timestamp") {
      EXPECT_LT(r.timestamp_ms, NowMs() + 3600000) << "the dead letter must not keep the year-2200 timestamp";
    }
  }
  EXPECT_EQ(got_dead, want_dead);
}

// A permanent refusal by the broker (a changelog topic that takes no record
// of a state's size) ends the worker with exit code 1 and its "stopped"
// line, not with a crash while it closes.
TEST(WorkerFaults, AnErrorExitWithATransactionOpenEndsWithExitCodeOneNotASignal) {
  auto h = WorkerHarness::Create(2, [](std::vector<pipeline::TopicSpec>& specs) {
    for (auto& t : specs) {
      if (t.name.ends_with("boxwatch.state-changelog")) t.configs["max.message.bytes"] = "100";
    }
  });
  ASSERT_TRUE(h.ok()) << h.error().message;
  const sim::Traffic traffic = sim::GenerateTraffic(RecentTraffic(20, 5), DefaultProfile());
  ASSERT_TRUE((*h)->Produce(traffic.records).ok());
  auto worker = (*h)->StartWorker("exit-0");
  ASSERT_TRUE(worker.ok()) << worker.error().message;
  ASSERT_TRUE((*worker)->WaitForLine("{\"event\":\"stopped\"", 120s)) << "the worker did not stop on the refusal";
  EXPECT_NE((*worker)->last_line().find("\"ok\":false"), std::string::npos) << (*worker)->last_line();
  const int status = (*worker)->Wait(60s);
  ASSERT_FALSE(WIFSIGNALED(status)) << "the worker died of signal " << WTERMSIG(status) << " on its error exit";
  ASSERT_TRUE(WIFEXITED(status)) << status;
  EXPECT_EQ(WEXITSTATUS(status), 1);
  auto alerts = (*h)->Alerts();
  ASSERT_TRUE(alerts.ok());
  EXPECT_TRUE(alerts->empty()) << "a refused transaction must not leave committed alerts";
}

}  // namespace
}  // namespace boxwatch::testing
