// `boxwatch backtest` against real Apache Kafka: on the input topics a
// worker has processed, the backtest of the same profile reproduces the
// worker's alerts byte for byte, and a candidate that drops one indicator
// drops exactly the containers an independent offline run of that candidate
// no longer alerts.

#include <google/protobuf/struct.pb.h>
#include <google/protobuf/util/json_util.h>
#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <set>
#include <sstream>

#include "operators/default_profile.h"
#include "tests/support/worker_harness.h"

namespace boxwatch::testing {
namespace {

using namespace std::chrono_literals;

std::string ReadAll(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Runs the boxwatch binary with `args`; returns its exit code, output in `log`.
int RunBoxwatch(const std::string& args, const std::string& log) {
  const std::string cmd = std::string(BOXWATCH_BINARY) + " " + args + " > " + log + " 2>&1";
  const int status = std::system(cmd.c_str());
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

std::set<std::string> Containers(const AlertDigest& digest) {
  std::set<std::string> out;
  for (const auto& [id, v] : digest) out.insert(id.substr(0, id.rfind('-')));
  return out;
}

TEST(BacktestOnRealKafka, ReproducesTheWorkersAlertsAndExplainsACandidate) {
  auto h = WorkerHarness::Create(4);
  ASSERT_TRUE(h.ok()) << h.error().message;
  const sim::Traffic traffic = sim::GenerateTraffic(RecentTraffic(1500, 23), DefaultProfile());
  const AlertDigest expected = ExpectedAlerts(traffic, DefaultProfile(), 4);
  ASSERT_GT(expected.size(), 100u);
  ASSERT_TRUE((*h)->Produce(traffic.records).ok());
  auto worker = (*h)->StartWorker("backtest-0");
  ASSERT_TRUE(worker.ok()) << worker.error().message;
  auto alerts = (*h)->WaitForAlerts(expected.size(), 240s);
  ASSERT_TRUE(alerts.ok()) << alerts.error().message;
  (*worker)->Kill(SIGTERM);
  const AlertDigest by_worker = Digest(*alerts);
  ASSERT_EQ(by_worker.size(), expected.size()) << "the worker did not raise every expected alert within 240 s";

  // 1. The default profile's backtest on the topics: the worker's alerts, byte for byte.
  const std::string dir = (*h)->dir();
  const std::string source = "--bootstrap " + (*h)->bootstrap() + " --topic-prefix " + (*h)->prefix();
  ASSERT_EQ(RunBoxwatch("backtest " + source + " --profile default --no-baseline --alerts " + dir + "/alerts.jsonl",
                        dir + "/backtest.log"),
            0)
      << ReadAll(dir + "/backtest.log");
  std::vector<v1::Alert> replayed;
  std::istringstream lines(ReadAll(dir + "/alerts.jsonl"));
  for (std::string line; std::getline(lines, line);) {
    v1::Alert a;
    ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(line, &a).ok()) << line;
    replayed.push_back(std::move(a));
  }
  const AlertDigest by_backtest = Digest(replayed);
  EXPECT_EQ(by_backtest.size(), by_worker.size());
  EXPECT_TRUE(by_backtest == by_worker) << "the backtest's alerts differ from the worker's";

  // 2. A candidate without party.watchlisted, against the default.
  std::string yaml(operators::DefaultProfileYaml());
  const std::string line = "party.watchlisted: {weight: 55,";
  ASSERT_NE(yaml.find(line), std::string::npos) << "the default profile's watchlist line changed; update the test";
  yaml.replace(yaml.find(line), line.size(), "party.watchlisted: {enabled: false, weight: 55,");
  yaml.replace(yaml.find("version: \""), 10, "version: \"no-watchlist-");
  std::ofstream(dir + "/candidate.yaml") << yaml;
  ASSERT_EQ(RunBoxwatch("backtest " + source + " --profile " + dir + "/candidate.yaml --baseline default --json " +
                            dir + "/report.json --html " + dir + "/report.html",
                        dir + "/candidate.log"),
            0)
      << ReadAll(dir + "/candidate.log");
  google::protobuf::Struct report;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(ReadAll(dir + "/report.json"), &report).ok());
  std::set<std::string> dropped, added;
  for (const auto& v : report.fields().at("no_longer_alerted").list_value().values()) {
    dropped.insert(v.struct_value().fields().at("container").string_value());
  }
  for (const auto& v : report.fields().at("newly_alerted").list_value().values()) {
    added.insert(v.struct_value().fields().at("container").string_value());
  }
  // Expected: what the worker alerted and an offline run of the candidate does not.
  auto candidate = operators::ParseProfile(yaml, "candidate");
  ASSERT_TRUE(candidate.ok()) << candidate.error().message;
  const std::set<std::string> before = Containers(by_worker);
  const std::set<std::string> after = Containers(ExpectedAlerts(traffic, *candidate, 4));
  std::set<std::string> want_dropped;
  for (const auto& c : before) {
    if (!after.count(c)) want_dropped.insert(c);
  }
  EXPECT_FALSE(want_dropped.empty()) << "the input has no container alerted for a watchlisted party alone";
  EXPECT_EQ(dropped, want_dropped);
  EXPECT_TRUE(added.empty());
  // Each dropped container was alerted only with the dropped indicator.
  for (const auto& a : *alerts) {
    if (!dropped.count(a.container_number())) continue;
    bool carries = false;
    for (const auto& f : a.indicators()) carries |= f.id() == "party.watchlisted";
    EXPECT_TRUE(carries) << a.alert_id() << " was alerted without party.watchlisted";
  }
}

}  // namespace
}  // namespace boxwatch::testing
