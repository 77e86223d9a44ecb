// Failures of what the pipeline runs on.
//
// Broker failures on a replicated cluster: a 3-node Kafka cluster of its own
// (scripts/kafka start --brokers 3; topics with replication 3 and
// min.insync.replicas 2). While a worker drains its input and a dispatcher
// feeds a hub, the leader of an input partition is SIGKILLed, then the
// leader of a changelog partition (or another node) is killed briefly too,
// which takes the cluster below its quorum; both come back. The alerts must
// equal the uninterrupted run's byte for byte, the hub must hold exactly the
// committed alerts, and every input record must be committed (lag zero).
// The time the pipeline took to recover is printed.
//
// A full state volume: the worker's state_dir on a small tmpfs that fills
// up. The worker must stop processing, say why on /readyz and in a metric,
// keep running, and once space is freed go on and produce exactly the alerts
// of an undisturbed run.
#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <optional>
#include <thread>

#include "core/http.h"
#include "tests/support/delivery_harness.h"

namespace boxwatch::testing {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
using Clock = std::chrono::steady_clock;

// Runs scripts/kafka with `args`; true on success. Its output goes to the
// test's output only when it fails.
bool Kafka(const std::string& args) {
  const std::string log = "/tmp/boxwatch-infra-kafka-" + std::to_string(::getpid()) + ".log";
  const std::string cmd = std::string(BOXWATCH_SOURCE_DIR) + "/scripts/kafka " + args + " >" + log + " 2>&1";
  const bool ok = std::system(cmd.c_str()) == 0;
  if (!ok) {
    std::ifstream in(log);
    std::cerr << "scripts/kafka " << args << " failed:\n" << in.rdbuf() << "\n";
  }
  std::remove(log.c_str());
  return ok;
}

// Stops the cluster and removes its directory when the test ends, however
// it ends; the harness's bootstrap variable is put back as it was.
struct Cluster {
  std::string dir;
  std::optional<std::string> previous_bootstrap;
  ~Cluster() {
    if (previous_bootstrap) {
      ::setenv("BOXWATCH_KAFKA_BOOTSTRAP_FILE", previous_bootstrap->c_str(), 1);
    } else {
      ::unsetenv("BOXWATCH_KAFKA_BOOTSTRAP_FILE");
    }
    if (dir.empty()) return;
    Kafka("stop --dir " + dir);
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
  }
};

double Since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

TEST(BrokerFailures, LeaderKillsAndALostQuorumChangeNoAlertAndLagReturnsToZero) {
  char tmpl[] = "/tmp/boxwatch-brokers-XXXXXX";
  ASSERT_NE(::mkdtemp(tmpl), nullptr);
  Cluster cluster{tmpl, std::nullopt};
  if (const char* b = std::getenv("BOXWATCH_KAFKA_BOOTSTRAP_FILE")) cluster.previous_bootstrap = b;
  ASSERT_TRUE(Kafka("start --dir " + cluster.dir + " --brokers 3")) << "the 3-node cluster did not start";
  // The harness and its processes use this cluster.
  ::setenv("BOXWATCH_KAFKA_BOOTSTRAP_FILE", (cluster.dir + "/bootstrap").c_str(), 1);

  const int partitions = 4;
  std::set<std::string> regions;
  for (const auto& [country, region] : DefaultProfile().regions) regions.insert(region);
  std::string region_list;
  for (const auto& r : regions) region_list += (region_list.empty() ? "" : ",") + r;
  auto h = DeliveryHarness::Create(partitions, {{"hub-all", regions}}, std::nullopt,
                                   [](std::vector<pipeline::TopicSpec>& specs) {
                                     for (auto& s : specs) {
                                       s.replication = 3;
                                       s.configs["min.insync.replicas"] = "2";
                                     }
                                   });
  ASSERT_TRUE(h.ok()) << h.error().message;
  auto& w = (*h)->workers();

  const uint32_t seed = 2024;
  SCOPED_TRACE("traffic seed " + std::to_string(seed));
  const sim::Traffic traffic = sim::GenerateTraffic(RecentTraffic(1200, seed), DefaultProfile());
  const AlertDigest expected = ExpectedAlerts(traffic, DefaultProfile(), partitions);
  ASSERT_TRUE(w.Produce(traffic.records).ok());
  const int64_t total = static_cast<int64_t>(traffic.records.size());

  auto worker = w.StartWorker("bf-1", {{"idle_flush_ms", "0"},
                                             {"max_records_per_commit", "500"},
                                             {"backlog_records_per_commit", "500"}});
  ASSERT_TRUE(worker.ok()) << worker.error().message;
  const int metrics_port = static_cast<int>(JsonField((*worker)->last_line(), "metrics_port"));
  int grpc_port = 0, http_port = 0;
  auto dispatcher = (*h)->StartDispatcher(0, &grpc_port);
  ASSERT_TRUE(dispatcher.ok()) << dispatcher.error().message;
  auto hub = (*h)->StartHub("hub-all", region_list, grpc_port, &http_port);
  ASSERT_TRUE(hub.ok()) << hub.error().message;

  // Under load: a fifth of the input committed, most still to come.
  ASSERT_TRUE(WaitForCommittedRecords(**worker, total / 5, seconds(180))) << "the worker made no progress";
  const int64_t at_kill = CommittedRecords(metrics_port);
  ASSERT_LT(at_kill, total) << "the input was drained before any broker was killed";

  auto admin = pipeline::KafkaAdmin::Create(w.bootstrap());
  ASSERT_TRUE(admin.ok()) << admin.error().message;
  const pipeline::TopicNames names(w.prefix());
  auto gps_leaders = (*admin)->Leaders(names.Name(pipeline::TopicRole::kGps), seconds(10));
  auto changelog_leaders = (*admin)->Leaders(names.Name(pipeline::TopicRole::kStateChangelog), seconds(10));
  ASSERT_TRUE(gps_leaders.ok() && changelog_leaders.ok());
  const int first = gps_leaders->at(0);
  int second = changelog_leaders->at(0);
  if (second == first) second = first % 3 + 1;
  ASSERT_TRUE(first >= 1 && first <= 3) << "gps[0] has no leader";
  admin->reset();

  const auto t0 = Clock::now();
  ASSERT_TRUE(Kafka("kill-node --dir " + cluster.dir + " --node " + std::to_string(first)));
  std::printf("t=%5.1f s  SIGKILL node %d (leader of gps[0]); %lld of %lld records committed\n", Since(t0), first,
              static_cast<long long>(at_kill), static_cast<long long>(total));
  std::this_thread::sleep_for(seconds(5));  // the cluster runs on two nodes for a while
  std::printf("t=%5.1f s  %lld committed on two nodes\n", Since(t0),
              static_cast<long long>(CommittedRecords(metrics_port)));
  ASSERT_TRUE(Kafka("kill-node --dir " + cluster.dir + " --node " + std::to_string(second)));
  std::printf("t=%5.1f s  SIGKILL node %d (leader of state-changelog[0]): one node left, no quorum\n", Since(t0),
              second);
  std::this_thread::sleep_for(seconds(5));  // "briefly": long enough for every client to notice
  ASSERT_TRUE(Kafka("start-node --dir " + cluster.dir + " --node " + std::to_string(second)));
  std::printf("t=%5.1f s  node %d back\n", Since(t0), second);
  ASSERT_TRUE(Kafka("start-node --dir " + cluster.dir + " --node " + std::to_string(first)));
  const double restarted = Since(t0);
  std::printf("t=%5.1f s  node %d back: all three up\n", restarted, first);

  // Lag returns to zero: every input record committed.
  ASSERT_TRUE(WaitForCommittedRecords(**worker, total, seconds(300)))
      << "the worker did not commit its whole input; committed " << CommittedRecords(metrics_port) << " of " << total;
  const double drained = Since(t0);
  auto alerts = w.WaitForAlerts(expected.size(), seconds(60));
  ASSERT_TRUE(alerts.ok()) << alerts.error().message;
  EXPECT_EQ(Digest(*alerts), expected) << "broker failures changed the alerts";

  std::set<std::string> on_topic;
  for (const auto& a : *alerts) on_topic.insert(a.alert_id());
  std::set<std::string> at_hub;
  const auto deadline = Clock::now() + seconds(120);
  while (Clock::now() < deadline) {
    auto ids = (*h)->HubAlertIds(http_port);
    if (ids.ok()) at_hub = *ids;
    if (at_hub == on_topic) break;
    std::this_thread::sleep_for(milliseconds(500));  // polling the hub
  }
  const double delivered = Since(t0);
  EXPECT_EQ(at_hub, on_topic) << "the hub does not hold exactly the committed alerts";
  std::printf(
      "recovery: brokers back at t=%.1f s; whole input committed at t=%.1f s (%.1f s after); every alert at the hub "
      "at t=%.1f s; %zu alerts, identical to the uninterrupted run\n",
      restarted, drained, drained - restarted, delivered, on_topic.size());

  const int status = (*worker)->Kill(SIGTERM);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "worker exit status " << status;
  (*dispatcher)->Kill(SIGTERM);
  (*hub)->Kill(SIGTERM);
}

// Unmounts the tmpfs when the test ends.
struct Mount {
  std::string path;
  ~Mount() {
    if (!path.empty()) std::system(("umount -l " + path + " 2>/dev/null").c_str());
  }
};

std::string Get(int port, const std::string& path) {
  auto r = http::Fetch("GET", "127.0.0.1", port, path, "");
  return r.ok() ? std::to_string(r->status) + " " + r->body : "unreachable";
}

TEST(StateDisk, AFullStateVolumeStopsProcessingUntilSpaceReturnsAndLosesNothing) {
  ASSERT_EQ(::geteuid(), 0u) << "this test mounts a small tmpfs for the worker's state and needs root (the README's "
                                "test command runs as root)";
  auto h = WorkerHarness::Create(2);
  ASSERT_TRUE(h.ok()) << h.error().message;
  Mount volume{(*h)->dir() + "/statevol"};
  std::filesystem::create_directories(volume.path);
  ASSERT_EQ(std::system(("mount -t tmpfs -o size=24m tmpfs " + volume.path).c_str()), 0) << "mount failed";
  // Leave about 1.5 MB: the store opens, and the state of this input does not fit.
  struct statvfs vfs {};
  ASSERT_EQ(::statvfs(volume.path.c_str(), &vfs), 0);
  const uint64_t free_bytes = static_cast<uint64_t>(vfs.f_bavail) * vfs.f_frsize;
  ASSERT_GT(free_bytes, 3u << 20) << "the fresh 24 MB tmpfs has only " << free_bytes << " bytes free";
  const std::string filler = volume.path + "/filler";
  {
    std::ofstream out(filler, std::ios::binary);
    const std::string block(1 << 20, 'x');
    for (uint64_t left = free_bytes - (3u << 19); left > 0;) {
      const uint64_t n = std::min<uint64_t>(left, block.size());
      out.write(block.data(), static_cast<std::streamsize>(n));
      left -= n;
    }
  }

  // 2,500 boxes: the volume fills at about a quarter of the input. With
  // 1,000 it filled at 97 %, and a worker fast enough to commit the rest
  // before the last gathered batch was written passed the volume by.
  const sim::Traffic traffic = sim::GenerateTraffic(RecentTraffic(2500, 77), DefaultProfile());
  const AlertDigest expected = ExpectedAlerts(traffic, DefaultProfile(), 2);
  ASSERT_TRUE((*h)->Produce(traffic.records).ok());
  const int64_t total = static_cast<int64_t>(traffic.records.size());
  // Commits reach RocksDB two at a time (commit_overlay_commits), so the
  // volume fills while the input is processed, in the write of a gathered
  // batch; by default this small input would stay gathered in memory until
  // the end.
  auto worker = (*h)->StartWorker("disk-1", {{"state_dir", volume.path + "/state"},
                                             {"write_buffer_bytes", "1048576"},
                                             {"commit_overlay_commits", "2"},
                                             {"max_records_per_commit", "500"},
                                             {"backlog_records_per_commit", "500"}});
  ASSERT_TRUE(worker.ok()) << worker.error().message;
  const int port = static_cast<int>(JsonField((*worker)->last_line(), "metrics_port"));

  std::string ready;
  const auto deadline = Clock::now() + seconds(180);
  while (Clock::now() < deadline && ready.find("state disk full") == std::string::npos) {
    ready = Get(port, "/readyz");
    if (CommittedRecords(port) >= total) break;
    std::this_thread::sleep_for(milliseconds(200));  // polling the worker's endpoint
  }
  ASSERT_NE(ready.find("503 not ready: state disk full"), std::string::npos)
      << "the worker never reported the full disk (readyz: " << ready << ")";
  const int64_t stuck = CommittedRecords(port);
  EXPECT_LT(stuck, total) << "the whole input was committed although the disk was full";
  EXPECT_NE(Get(port, "/metrics").find("boxwatch_worker_state_disk_full 1"), std::string::npos);
  std::this_thread::sleep_for(seconds(3));  // it stays stopped, and alive
  EXPECT_EQ(CommittedRecords(port), stuck) << "input was committed while the state could not be stored";
  std::printf("disk full after %lld of %lld records\n", static_cast<long long>(stuck), static_cast<long long>(total));

  std::filesystem::remove(filler);
  ASSERT_TRUE(WaitForCommittedRecords(**worker, total, seconds(180)))
      << "the worker did not go on once space returned; readyz: " << Get(port, "/readyz");
  EXPECT_EQ(Get(port, "/readyz").substr(0, 9), "200 ready");
  auto alerts = (*h)->WaitForAlerts(expected.size(), seconds(60));
  ASSERT_TRUE(alerts.ok()) << alerts.error().message;
  EXPECT_EQ(Digest(*alerts), expected) << "the full disk changed the alerts";
  const int status = (*worker)->Kill(SIGTERM);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "worker exit status " << status;
  const std::string out = (*worker)->ReadRest(seconds(5));
  EXPECT_NE(out.find("\"ok\":true"), std::string::npos) << out;
  EXPECT_NE(out.find("\"late\":0,"), std::string::npos) << out;
}

}  // namespace
}  // namespace boxwatch::testing
