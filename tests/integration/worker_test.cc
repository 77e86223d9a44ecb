// The stateful worker against real Apache Kafka: golden output, dead
// letters, SIGKILL crashes, restores and rebalances. Each test creates its
// own topic set and runs `boxwatch worker` processes.

#include <google/protobuf/util/json_util.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <sstream>
#include <thread>

#include "core/http.h"
#include "operators/default_profile.h"
#include "pipeline/partitioner.h"
#include "pipeline/state_parts.h"
#include "tests/support/worker_harness.h"

namespace boxwatch::testing {
namespace {

using namespace std::chrono_literals;

std::string Diff(const AlertDigest& want, const AlertDigest& got) {
  std::string out;
  int shown = 0;
  for (const auto& [id, v] : want) {
    auto it = got.find(id);
    if (it == got.end()) {
      if (shown++ < 10) out += "\n  missing " + id + ": " + v;
    } else if (it->second != v) {
      if (shown++ < 10) out += "\n  differs " + id + ": want " + v + " got " + it->second;
    }
  }
  for (const auto& [id, v] : got) {
    if (!want.count(id) && shown++ < 10) out += "\n  unexpected " + id + ": " + v;
  }
  return out;
}

int64_t StopWorker(Child& worker) {
  const int status = worker.Kill(SIGTERM);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "worker exit status " << status;
  return 0;
}

// Golden input through one worker with the given processing_guarantee and
// other options; `stopped` gets the worker's "stopped" line.
void GoldenRun(const std::string& guarantee, std::map<std::string, std::string> options = {},
               std::string* stopped = nullptr) {
  auto h = WorkerHarness::Create(4);
  ASSERT_TRUE(h.ok()) << h.error().message;
  const sim::Traffic traffic = sim::GenerateTraffic(RecentTraffic(2000, 7), DefaultProfile());
  const AlertDigest expected = ExpectedAlerts(traffic, DefaultProfile(), 4);
  ASSERT_GT(expected.size(), 100u) << "the golden input must raise alerts";
  ASSERT_TRUE((*h)->Produce(traffic.records).ok());

  options["processing_guarantee"] = guarantee;
  auto worker = (*h)->StartWorker("golden-0", options);
  ASSERT_TRUE(worker.ok()) << worker.error().message;
  EXPECT_NE((*worker)->last_line().find("\"processing_guarantee\":\"" + guarantee + "\""), std::string::npos)
      << (*worker)->last_line();
  // Every record committed (the alerts may be complete before the last records
  // that raise none), then the alerts.
  EXPECT_TRUE(WaitForCommittedRecords(**worker, static_cast<int64_t>(traffic.records.size()), 240s))
      << "the worker did not commit every input record within 240 s";
  auto alerts = (*h)->WaitForAlerts(expected.size(), 240s);
  ASSERT_TRUE(alerts.ok()) << alerts.error().message;
  StopWorker(**worker);
  ASSERT_TRUE((*worker)->WaitForLine("{\"event\":\"stopped\"", 5s));
  if (stopped != nullptr) *stopped = (*worker)->last_line();
  std::printf("%s\n", (*worker)->last_line().c_str());
  EXPECT_EQ(JsonField((*worker)->last_line(), "processed"), static_cast<int64_t>(traffic.records.size()));
  const AlertDigest got = Digest(*alerts);
  EXPECT_EQ(got.size(), expected.size());
  EXPECT_TRUE(got == expected) << Diff(expected, got);

  // Every labelled neutron source is CRITICAL.
  for (const auto& [container, scenario] : traffic.labels) {
    if (scenario != sim::Scenario::kNeutron) continue;
    bool critical = false;
    for (const auto& a : *alerts) critical |= a.container_number() == container && a.priority() == v1::PRIORITY_CRITICAL;
    EXPECT_TRUE(critical) << container;
  }
}

TEST(WorkerOnRealKafka, GoldenInputGivesExactlyTheExpectedAlerts) { GoldenRun("exactly_once"); }

// Without failures, at-least-once gives the same output, without transactions.
TEST(WorkerOnRealKafka, AtLeastOnceGivesTheSameAlertsWhenNothingFails) { GoldenRun("at_least_once"); }

// A tiny prefetch per input partition (librdkafka's queue of each holds
// about 200 records, so its fetches stop and start all the time and the
// merge often finds an input's queue empty while the broker holds more):
// the same alerts, nothing late.
TEST(WorkerOnRealKafka, TinyPrefetchPerInputPartitionChangesNoAlert) {
  std::string stopped;
  GoldenRun("exactly_once", {{"max_buffered_records", "200"}}, &stopped);
  EXPECT_GT(JsonField(stopped, "processed"), 0) << stopped;
  EXPECT_EQ(JsonField(stopped, "late"), 0) << stopped;
}

TEST(WorkerOnRealKafka, BadRecordsGoToTheDeadLetterTopicWithReasons) {
  auto h = WorkerHarness::Create(4);
  ASSERT_TRUE(h.ok()) << h.error().message;
  sim::TrafficOptions o = RecentTraffic(1500, 11);
  o.bad_records = true;
  const sim::Traffic traffic = sim::GenerateTraffic(o, DefaultProfile());
  std::map<std::string, int> want;
  for (const auto& r : traffic.records) {
    if (!r.expect_dead_letter.empty()) ++want[r.expect_dead_letter];
  }
  ASSERT_EQ(want.size(), 5u);  // undecodable, invalid container number, future, oversized, late
  const AlertDigest expected = ExpectedAlerts(traffic, DefaultProfile(), 4);
  ASSERT_TRUE((*h)->Produce(traffic.records).ok());
  auto worker = (*h)->StartWorker("dl-0");
  ASSERT_TRUE(worker.ok()) << worker.error().message;
  // Every record committed, the dead letters with them, then the alerts.
  EXPECT_TRUE(WaitForCommittedRecords(**worker, static_cast<int64_t>(traffic.records.size()), 240s))
      << "the worker did not commit every input record within 240 s";
  auto alerts = (*h)->WaitForAlerts(expected.size(), 240s);
  ASSERT_TRUE(alerts.ok());
  StopWorker(**worker);
  EXPECT_TRUE(Digest(*alerts) == expected) << Diff(expected, Digest(*alerts));

  auto dead = (*h)->DeadLetters();
  ASSERT_TRUE(dead.ok()) << dead.error().message;
  std::map<std::string, int> got;
  for (const auto& r : *dead) {
    ASSERT_TRUE(r.header("boxwatch-reason").has_value());
    ASSERT_TRUE(r.header("boxwatch-source-topic").has_value());
    ASSERT_TRUE(r.header("boxwatch-source-partition").has_value());
    ASSERT_TRUE(r.header("boxwatch-source-offset").has_value());
    EXPECT_FALSE(r.header("boxwatch-detail").value_or("").empty());
    ++got[std::string(*r.header("boxwatch-reason"))];
  }
  EXPECT_EQ(got, want);
  // The original bytes are kept; a value over max_value_bytes (262144 in
  // these tests) keeps its first 262144 bytes and says how long it was.
  for (const auto& r : *dead) {
    if (r.header("boxwatch-reason") == "oversized") {
      EXPECT_EQ(r.value.size(), 262144u);
      EXPECT_EQ(r.header("boxwatch-truncated").value_or(""), "true");
      EXPECT_EQ(r.header("boxwatch-original-bytes").value_or(""), std::to_string(512u << 10));
    } else {
      EXPECT_FALSE(r.header("boxwatch-truncated").has_value());
    }
  }
}

// A random seed, printed so that a failing run can be repeated: with
// BOXWATCH_TEST_SEED set, that one.
unsigned PrintedSeed() {
  const char* given = std::getenv("BOXWATCH_TEST_SEED");
  const unsigned seed = given != nullptr ? static_cast<unsigned>(std::strtoul(given, nullptr, 10)) : std::random_device{}();
  std::printf("seed %u%s\n", seed, given != nullptr ? " (BOXWATCH_TEST_SEED)" : "");
  return seed;
}

// Input for the crash tests: `containers` containers with 45 GPS fixes each,
// on the broker; returns the offline alert set and the record count. With
// `seizures`, inspection outcomes whose seizures feed back (SeizureTraffic).
std::pair<AlertDigest, size_t> ProduceCrashInput(WorkerHarness& h, int containers, uint32_t seed,
                                                 bool seizures = false) {
  sim::TrafficOptions o = seizures ? SeizureTraffic(containers, seed) : RecentTraffic(containers, seed);
  o.gps_per_container = 45;
  const sim::Traffic traffic = sim::GenerateTraffic(o, DefaultProfile());
  EXPECT_TRUE(h.Produce(traffic.records).ok());
  return {ExpectedAlerts(traffic, DefaultProfile(), 4), traffic.records.size()};
}

// Starts worker `instance` `kills` times, each time SIGKILLing it at a random
// moment 0.1 s to 0.1 s + spread after its first committed input (so each
// kill lands while it processes, however long joining the group takes).
void KillAtRandomMoments(WorkerHarness& h, const std::string& instance,
                         const std::map<std::string, std::string>& options, int kills,
                         std::chrono::milliseconds spread, std::mt19937& rng, bool after_first_commit = true) {
  for (int kill = 0; kill < kills; ++kill) {
    auto worker = h.StartWorker(instance, options);
    ASSERT_TRUE(worker.ok()) << worker.error().message;
    // Kill only once it has committed input (the group join, restore and first
    // fetch take seconds on a loaded machine, and a kill before any commit tests nothing).
    if (after_first_commit) {
      ASSERT_TRUE(WaitForCommittedRecords(**worker, 1, 90s)) << "the worker committed nothing within 90 s";
    }
    const int base_ms = after_first_commit ? 100 : 500;
    std::this_thread::sleep_for(std::chrono::milliseconds(base_ms + rng() % spread.count()));  // a random moment
    const int status = (*worker)->Kill(SIGKILL);
    ASSERT_TRUE(WIFSIGNALED(status)) << "the worker ended before it was killed: " << status;
  }
}

TEST(WorkerOnRealKafka, SigkillAtRandomMomentsGivesTheUninterruptedAlertSet) {
  std::mt19937 rng(PrintedSeed());
  auto h = WorkerHarness::Create(4);
  ASSERT_TRUE(h.ok()) << h.error().message;
  // Seizures feed back to other containers' alerts: those too must not
  // depend on when the worker dies.
  const auto [expected, records] = ProduceCrashInput(**h, 4700, 23, true);
  ASSERT_GE(records, 200000u);
  ASSERT_GE(SeizureAlerts(expected), 10u) << "the input must raise alerts on parties with a recorded seizure";

  // Smaller transactions keep the input from being finished before the last
  // kill (also while the worker is behind: the backlog cadence is off).
  const std::map<std::string, std::string> options = {{"max_records_per_commit", "200"},
                                                      {"backlog_records_per_commit", "200"}};
  KillAtRandomMoments(**h, "crash-0", options, 6, 2500ms, rng);
  auto worker = (*h)->StartWorker("crash-0", options);
  ASSERT_TRUE(worker.ok()) << worker.error().message;
  auto alerts = (*h)->WaitForAlerts(expected.size(), 400s);
  ASSERT_TRUE(alerts.ok());
  StopWorker(**worker);
  ASSERT_TRUE((*worker)->WaitForLine("{\"event\":\"stopped\"", 5s));
  std::printf("%s\n", (*worker)->last_line().c_str());
  EXPECT_EQ(JsonField((*worker)->last_line(), "late"), 0);
  EXPECT_GT(JsonField((*worker)->last_line(), "processed"), 0) << "the input was finished before the last kill";
  auto final_alerts = (*h)->Alerts();
  ASSERT_TRUE(final_alerts.ok());
  const AlertDigest got = Digest(*final_alerts);
  EXPECT_EQ(final_alerts->size(), expected.size()) << "duplicates or losses";
  EXPECT_TRUE(got == expected) << Diff(expected, got);
}

// The worker's Kafka commit of a cycle runs on its own thread while the
// next cycle is processed, that cycle's outputs held back until the commit
// is done. A producer that takes over the worker's transactional id fences
// it (as a successor fences a zombie), at random moments while it commits
// every 200 records: a commit on its way fails, or the cycle after it. Each
// time the worker starts over from what is committed, and the alerts are
// the uninterrupted set, none twice, none lost.
TEST(WorkerOnRealKafka, FencedCommitsWhileTheNextCycleIsProcessedRepeatNothingAndLoseNothing) {
  std::mt19937 rng(PrintedSeed());
  auto h = WorkerHarness::Create(4);
  ASSERT_TRUE(h.ok()) << h.error().message;
  const auto [expected, records] = ProduceCrashInput(**h, 3000, 37, true);
  ASSERT_GE(records, 100000u);
  ASSERT_GE(SeizureAlerts(expected), 10u) << "the input must raise alerts on parties with a recorded seizure";
  const std::map<std::string, std::string> options = {{"max_records_per_commit", "200"},
                                                      {"backlog_records_per_commit", "200"}};
  auto worker = (*h)->StartWorker("fenced-0", options);
  ASSERT_TRUE(worker.ok()) << worker.error().message;
  ASSERT_TRUE(WaitForCommittedRecords(**worker, 1, 90s)) << "the worker committed nothing within 90 s";
  auto properties = TestClientProperties();
  ASSERT_TRUE(properties.ok()) << properties.error().message;
  const int fences = 4;
  for (int i = 0; i < fences; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(150 + rng() % 600));  // a random moment
    auto successor = pipeline::KafkaProducer::Create({.bootstrap = (*h)->bootstrap(),
                                                      .transactional_id = (*h)->prefix() + "workers-fenced-0",
                                                      .extra = *properties});
    ASSERT_TRUE(successor.ok()) << successor.error().message;
    Status init = (*successor)->InitTransactions(60s);
    ASSERT_TRUE(init.ok()) << init.ToString();
  }
  auto alerts = (*h)->WaitForAlerts(expected.size(), 400s);
  ASSERT_TRUE(alerts.ok()) << alerts.error().message;
  StopWorker(**worker);
  ASSERT_TRUE((*worker)->WaitForLine("{\"event\":\"stopped\"", 5s));
  std::printf("%s\n", (*worker)->last_line().c_str());
  // Each fence made a new producer (a fence the worker met while it was
  // already starting over may count once for two).
  EXPECT_GE(JsonField((*worker)->last_line(), "rebuilds"), 1) << "the worker was never fenced";
  EXPECT_EQ(JsonField((*worker)->last_line(), "late"), 0);
  auto final_alerts = (*h)->Alerts();
  ASSERT_TRUE(final_alerts.ok());
  const AlertDigest got = Digest(*final_alerts);
  EXPECT_EQ(final_alerts->size(), expected.size()) << "duplicates or losses";
  EXPECT_TRUE(got == expected) << Diff(expected, got);
}

// At-least-once under SIGKILL: every expected alert arrives, each copy of a
// repeated alert is identical, and nothing unexpected appears. Repeats are
// allowed (and counted); loss is not.
TEST(WorkerOnRealKafka, AtLeastOnceUnderSigkillLosesNoAlert) {
  std::mt19937 rng(PrintedSeed());
  auto h = WorkerHarness::Create(4);
  ASSERT_TRUE(h.ok()) << h.error().message;
  const auto [expected, records] = ProduceCrashInput(**h, 3000, 29);
  ASSERT_GE(records, 130000u);

  // Small cycles, also while the worker is behind (the backlog cadence
  // off): each ends with a flush and a synchronous offset commit, so the
  // kills leave input for the last start. With the backlog cadence on, a
  // faster worker finished even 6,000 containers' input before the last
  // kill (seed 3485455368).
  const std::map<std::string, std::string> options = {{"max_records_per_commit", "200"},
                                                      {"backlog_records_per_commit", "200"},
                                                      {"processing_guarantee", "at_least_once"}};
  // Kills timed from start, not from a first commit: they land in the
  // first cycles, between flushed alerts and their offsets.
  KillAtRandomMoments(**h, "alo-0", options, 4, 1500ms, rng, /*after_first_commit=*/false);
  auto worker = (*h)->StartWorker("alo-0", options);
  ASSERT_TRUE(worker.ok()) << worker.error().message;
  auto alerts = (*h)->WaitForAlerts(expected.size(), 400s, /*distinct=*/true);
  ASSERT_TRUE(alerts.ok());
  StopWorker(**worker);
  ASSERT_TRUE((*worker)->WaitForLine("{\"event\":\"stopped\"", 5s));
  std::printf("%s\n", (*worker)->last_line().c_str());
  EXPECT_GT(JsonField((*worker)->last_line(), "processed"), 0) << "the input was finished before the last kill";
  auto final_alerts = (*h)->Alerts();
  ASSERT_TRUE(final_alerts.ok());
  std::map<std::string, const v1::Alert*> first;
  size_t repeats = 0;
  for (const auto& a : *final_alerts) {
    auto [it, fresh] = first.emplace(a.alert_id(), &a);
    if (fresh) continue;
    ++repeats;
    EXPECT_EQ(Digest({*it->second}), Digest({a})) << "two different alerts share the id " << a.alert_id();
  }
  std::vector<v1::Alert> distinct;
  for (const auto& [id, a] : first) distinct.push_back(*a);
  std::printf("%zu alerts, %zu distinct, %zu repeated after crashes\n", final_alerts->size(), distinct.size(), repeats);
  // Whether a kill fell between a cycle's alerts and its offsets is up to
  // timing (with librdkafka 2.8 often none does): reported, not required.
  // What is required: no loss, and repeats identical.
  if (repeats == 0) std::printf("note: no kill fell between an output and its offsets in this run\n");
  const AlertDigest got = Digest(distinct);
  EXPECT_EQ(got.size(), expected.size()) << "losses or unexpected alerts";
  EXPECT_TRUE(got == expected) << Diff(expected, got);
}

TEST(WorkerOnRealKafka, CleanRestartReplaysNothingAndALostVolumeIsRestored) {
  auto h = WorkerHarness::Create(4);
  ASSERT_TRUE(h.ok()) << h.error().message;
  const sim::Traffic traffic = sim::GenerateTraffic(RecentTraffic(1500, 31), DefaultProfile());
  // First half of every container's events, then the rest after the restarts.
  std::vector<sim::TrafficRecord> first(traffic.records.begin(), traffic.records.begin() + traffic.records.size() / 2);
  std::vector<sim::TrafficRecord> second(traffic.records.begin() + traffic.records.size() / 2, traffic.records.end());
  ASSERT_TRUE((*h)->Produce(first).ok());
  {
    auto worker = (*h)->StartWorker("restore-0");
    ASSERT_TRUE(worker.ok());
    sim::Traffic half{first, traffic.labels};
    auto alerts = (*h)->WaitForAlerts(ExpectedAlerts(half, DefaultProfile(), 4).size(), 240s);
    ASSERT_TRUE(alerts.ok());
    (*worker)->Kill(SIGTERM);
  }
  {  // Clean restart: the local checkpoint is current, nothing to restore.
    auto worker = (*h)->StartWorker("restore-0");
    ASSERT_TRUE(worker.ok());
    ASSERT_TRUE((*worker)->WaitForLine("{\"event\":\"assigned\",\"tasks\":4", 60s))
        << "the restarted worker never got its four partitions";
    EXPECT_EQ(JsonField((*worker)->last_line(), "restored_records"), 0) << (*worker)->last_line();
    (*worker)->Kill(SIGTERM);
    ASSERT_TRUE((*worker)->WaitForLine("{\"event\":\"stopped\"", 60s));
    EXPECT_EQ(JsonField((*worker)->last_line(), "restored_records"), 0) << (*worker)->last_line();
  }
  std::filesystem::remove_all((*h)->StateDir("restore-0"));  // the volume is lost
  ASSERT_TRUE((*h)->Produce(second).ok());
  auto worker = (*h)->StartWorker("restore-0");
  ASSERT_TRUE(worker.ok());
  const AlertDigest expected = ExpectedAlerts(traffic, DefaultProfile(), 4);
  auto alerts = (*h)->WaitForAlerts(expected.size(), 240s);
  ASSERT_TRUE(alerts.ok());
  (*worker)->Kill(SIGTERM);
  ASSERT_TRUE((*worker)->WaitForLine("{\"event\":\"stopped\"", 60s));
  EXPECT_GT(JsonField((*worker)->last_line(), "restored_records"), 1000) << (*worker)->last_line();
  const AlertDigest got = Digest(*alerts);
  EXPECT_TRUE(got == expected) << Diff(expected, got);
}

// The changelog of a topic prefix belongs to the group that wrote it: a
// worker of another group, starting with an empty state directory, would
// restore it and then find its own input older than that state.
TEST(WorkerOnRealKafka, AnotherGroupRefusesStateItDidNotWriteUnlessToldToAdoptIt) {
  auto h = WorkerHarness::Create(2);
  ASSERT_TRUE(h.ok()) << h.error().message;
  const sim::Traffic traffic = sim::GenerateTraffic(RecentTraffic(150, 71), DefaultProfile());
  ASSERT_TRUE((*h)->Produce(traffic.records).ok());
  {
    auto worker = (*h)->StartWorker("owner-0");
    ASSERT_TRUE(worker.ok()) << worker.error().message;
    ASSERT_TRUE(WaitForCommittedRecords(**worker, static_cast<int64_t>(traffic.records.size()), 120s));
    (*worker)->Kill(SIGTERM);
  }
  const std::string other_group = (*h)->prefix() + "other-group";
  {
    auto worker = (*h)->StartWorker("stranger-0", {{"group_id", other_group}});
    ASSERT_TRUE(worker.ok()) << worker.error().message;
    ASSERT_TRUE((*worker)->WaitForLine("{\"event\":\"stopped\"", 120s)) << "the worker did not refuse the state";
    EXPECT_NE((*worker)->last_line().find("\"ok\":false"), std::string::npos) << (*worker)->last_line();
    EXPECT_EQ(JsonField((*worker)->last_line(), "processed"), 0) << (*worker)->last_line();
    const int status = (*worker)->Wait(30s);
    ASSERT_TRUE(WIFEXITED(status)) << "wait status " << status;
    EXPECT_EQ(WEXITSTATUS(status), 3) << "foreign state has its own exit code (docs/worker.md)";
  }
  {  // Told to adopt it, the other group takes the state over and runs.
    auto worker = (*h)->StartWorker("stranger-0", {{"group_id", other_group}, {"state_owner", "adopt"}});
    ASSERT_TRUE(worker.ok()) << worker.error().message;
    const int port = static_cast<int>(JsonField((*worker)->last_line(), "metrics_port"));
    ASSERT_TRUE((*worker)->WaitForLine("{\"event\":\"assigned\",\"tasks\":2", 120s))
        << "the adopting worker never got its partitions";
    // Its group has no committed offsets, so it reads the input from the
    // start, behind the adopted state: all of it late. It stays ready, but
    // /readyz says so.
    std::string body;
    const auto deadline = std::chrono::steady_clock::now() + 120s;
    while (std::chrono::steady_clock::now() < deadline && body.find("dead-lettered as late") == std::string::npos) {
      auto r = http::Fetch("GET", "127.0.0.1", port, "/readyz", "");
      if (r.ok()) {
        EXPECT_EQ(r->status, 200) << r->body;
        body = r->body;
      }
      std::this_thread::sleep_for(500ms);  // polling the worker's endpoint
    }
    EXPECT_NE(body.find("input records of the last 30 s were dead-lettered as late"), std::string::npos) << body;
    const int status = (*worker)->Kill(SIGTERM);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "wait status " << status;
  }
}

TEST(WorkerOnRealKafka, ExpiredStateIsDeletedWithChangelogTombstones) {
  auto h = WorkerHarness::Create(4);
  ASSERT_TRUE(h.ok()) << h.error().message;
  const sim::Traffic traffic = sim::GenerateTraffic(RecentTraffic(800, 53), DefaultProfile());
  ASSERT_TRUE((*h)->Produce(traffic.records).ok());
  // One hour of event time without news expires a container; the input spans several hours.
  auto worker = (*h)->StartWorker("ttl-0", {{"state_ttl_ms", "3600000"}, {"expiry_sweep_interval_ms", "200"}});
  ASSERT_TRUE(worker.ok()) << worker.error().message;
  const std::string changelog = pipeline::TopicNames((*h)->prefix()).Name(pipeline::TopicRole::kStateChangelog);
  size_t tombstones = 0;
  std::map<std::string, bool> live;  // each key's last record: a value (true) or a tombstone
  const auto deadline = std::chrono::steady_clock::now() + 120s;
  while (tombstones == 0 && std::chrono::steady_clock::now() < deadline) {
    auto records = ReadAllCommitted((*h)->bootstrap(), changelog, 4, 60s);
    ASSERT_TRUE(records.ok()) << records.error().message;
    tombstones = 0;
    live.clear();
    // One per container: its movement part (its other parts' keys go with it).
    for (const auto& r : *records) {
      tombstones += r.value.empty() && pipeline::IsMovementKey(r.key) ? 1 : 0;
      live[r.key] = !r.value.empty();
    }
    if (tombstones == 0) std::this_thread::sleep_for(500ms);  // polling the topic
  }
  // A deleted container leaves no part behind: its declaration, evaluation
  // and every window chunk its movement part listed are deleted with it.
  size_t chunks = 0, left = 0;
  std::string a_left;
  for (const auto& [key, is_live] : live) {
    if (pipeline::IsWindowChunkKey(key)) ++chunks;
    const std::string container = key.substr(0, key.find('#'));
    auto m = live.find(container);
    if (key != container && is_live && m != live.end() && !m->second) {
      ++left;
      a_left = key;
    }
  }
  EXPECT_GT(chunks, 0u) << "the input's windows were long enough to be stored in chunks";
  EXPECT_EQ(left, 0u) << "parts of deleted containers still live on the changelog, e.g. " << a_left;
  (*worker)->Kill(SIGTERM);
  ASSERT_TRUE((*worker)->WaitForLine("{\"event\":\"stopped\"", 10s));
  const int64_t expired = JsonField((*worker)->last_line(), "expired");
  EXPECT_GT(expired, 0) << (*worker)->last_line();
  EXPECT_GT(tombstones, 0u);
  EXPECT_LE(static_cast<int64_t>(tombstones), expired) << "every tombstone is an expiry";
}

TEST(WorkerOnRealKafka, PublishedProfileAndReferenceEntriesAreApplied) {
  auto h = WorkerHarness::Create(4);
  ASSERT_TRUE(h.ok()) << h.error().message;
  // A new profile version, published with the CLI, and a watchlist entry on the reference topic.
  std::string yaml(operators::DefaultProfileYaml());
  const std::string old_version = "version: \"" + DefaultProfile().version + "\"";
  ASSERT_NE(yaml.find(old_version), std::string::npos);
  yaml.replace(yaml.find(old_version), old_version.size(), "version: \"published-test-1\"");
  const std::string path = (*h)->StateDir("profile") + ".yaml";
  {
    std::ofstream out(path);
    out << yaml;
  }
  Child publish({BOXWATCH_BINARY, "profile", "publish", path, "--bootstrap", (*h)->bootstrap(), "--prefix",
                 (*h)->prefix()});
  ASSERT_TRUE(publish.WaitForLine("published profile default version published-test-1", 60s));
  publish.Kill(SIGTERM);
  auto producer = pipeline::KafkaProducer::Create({.bootstrap = (*h)->bootstrap()});
  ASSERT_TRUE(producer.ok());
  const std::string reference = pipeline::TopicNames((*h)->prefix()).Name(pipeline::TopicRole::kReference);
  const sim::Traffic traffic = sim::GenerateTraffic(RecentTraffic(200, 61), DefaultProfile());
  // Every manifest's notify party goes on the watchlist: every container is then watchlisted.
  std::set<std::string> notify_parties;
  for (const auto& r : traffic.records) {
    if (r.role != pipeline::TopicRole::kManifests) continue;
    v1::Manifest m;
    if (r.json) ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(r.value, &m).ok());
    else ASSERT_TRUE(m.ParseFromString(r.value));
    notify_parties.insert(m.notify_party().name());
  }
  for (const auto& name : notify_parties) {
    const std::string key = "watchlisted_parties:" + name;
    ASSERT_TRUE((*producer)->Produce({.topic = reference, .key = key, .value = "1"}).ok());
  }
  ASSERT_TRUE((*producer)->Flush(30s).ok());

  ASSERT_TRUE((*h)->Produce(traffic.records).ok());
  auto worker = (*h)->StartWorker("ref-0");
  ASSERT_TRUE(worker.ok()) << worker.error().message;
  // Until every container has an alert that names the watchlisted party.
  // Not until 200 alerts: a container's priority may rise (a second alert)
  // before another's first alert is committed, so the first 200 alerts
  // need not name 200 containers.
  std::set<std::string> watchlisted;
  Result<std::vector<v1::Alert>> alerts = std::vector<v1::Alert>{};
  const auto deadline = std::chrono::steady_clock::now() + 120s;
  while (watchlisted.size() < 200u && std::chrono::steady_clock::now() < deadline) {
    alerts = (*h)->Alerts();
    ASSERT_TRUE(alerts.ok()) << alerts.error().message;
    watchlisted.clear();
    for (const auto& a : *alerts) {
      for (const auto& f : a.indicators()) {
        if (f.id() == "party.watchlisted") watchlisted.insert(a.container_number());
      }
    }
    if (watchlisted.size() < 200u) std::this_thread::sleep_for(500ms);  // polling the alerts topic
  }
  (*worker)->Kill(SIGTERM);
  std::printf("%zu alerts name %zu watchlisted containers\n", alerts->size(), watchlisted.size());
  EXPECT_EQ(watchlisted.size(), 200u) << "of " << alerts->size() << " alerts within 120 s";
  for (const auto& a : *alerts) EXPECT_EQ(a.profile_version(), "published-test-1") << a.alert_id();
}

TEST(WorkerOnRealKafka, PartitionsMoveWithTheirStateWhenWorkersJoinAndLeave) {
  auto h = WorkerHarness::Create(6);
  ASSERT_TRUE(h.ok()) << h.error().message;
  // The input is all there before the workers start: the output may then
  // depend only on the input, whoever processes which partition when.
  // With seizures feeding back across partitions, whichever worker has them.
  const sim::Traffic traffic = sim::GenerateTraffic(SeizureTraffic(4000, 41), DefaultProfile());
  const AlertDigest expected = ExpectedAlerts(traffic, DefaultProfile(), 6);
  ASSERT_GE(SeizureAlerts(expected), 10u) << "the input must raise alerts on parties with a recorded seizure";
  ASSERT_TRUE((*h)->Produce(traffic.records).ok());

  // Small transactions slow the workers down so that members join and leave
  // while the input is still being processed. The leaving member is static:
  // its partitions wait out its session (10 s), then restore elsewhere, while
  // the lowest feedback horizon stands still. The gate must hold through
  // that, on a loaded machine too: reference_wait_ms well above it.
  const std::map<std::string, std::string> slow = {{"max_records_per_commit", "100"},
                                                   {"backlog_records_per_commit", "100"},
                                                   {"reference_wait_ms", "120000"}};
  auto w0 = (*h)->StartWorker("rb-0", slow);
  auto w1 = (*h)->StartWorker("rb-1", slow);
  ASSERT_TRUE(w0.ok() && w1.ok());
  // Membership changes are timed by the input committed (alerts may come
  // later than their input: evaluation waits for every task's horizon).
  const int64_t total = static_cast<int64_t>(traffic.records.size());
  std::vector<Child*> running = {&**w0, &**w1};
  auto committed_reaches = [&](int64_t n) {
    const auto deadline = std::chrono::steady_clock::now() + 120s;
    while (std::chrono::steady_clock::now() < deadline) {
      int64_t sum = 0;
      for (Child* c : running) sum += CommittedRecords(static_cast<int>(JsonField(c->last_line(), "metrics_port")));
      if (sum >= n) return true;
      std::this_thread::sleep_for(100ms);  // polling the workers' metrics
    }
    return false;
  };
  ASSERT_TRUE(committed_reaches(total / 5)) << "the workers did not commit a fifth of the input within 120 s";
  auto w2 = (*h)->StartWorker("rb-2", slow);  // a third joins: partitions move to it, with their state
  ASSERT_TRUE(w2.ok());
  running.push_back(&**w2);
  ASSERT_TRUE(committed_reaches(total / 2)) << "the workers did not commit half of the input within 120 s";
  (*w1)->Kill(SIGTERM);  // one leaves: after its session times out, its partitions move
  ASSERT_TRUE((*w1)->WaitForLine("{\"event\":\"stopped\"", 5s));
  std::printf("rb-1: %s\n", (*w1)->last_line().c_str());
  auto alerts = (*h)->WaitForAlerts(expected.size(), 300s);
  ASSERT_TRUE(alerts.ok());
  int64_t restored = 0, processed_by_others = 0;
  for (auto* w : {&*w0, &*w2}) {
    (*w)->Kill(SIGTERM);
    ASSERT_TRUE((*w)->WaitForLine("{\"event\":\"stopped\"", 5s));
    std::printf("%s\n", (*w)->last_line().c_str());
    EXPECT_EQ(JsonField((*w)->last_line(), "late"), 0);
    restored += JsonField((*w)->last_line(), "restored_records");
    if (w == &*w2) processed_by_others += JsonField((*w)->last_line(), "processed");
  }
  EXPECT_GT(restored, 0) << "partitions moved without their state";
  EXPECT_GT(processed_by_others, 0) << "the joining worker never processed anything";
  const AlertDigest got = Digest(*alerts);
  EXPECT_EQ(alerts->size(), expected.size());
  EXPECT_TRUE(got == expected) << Diff(expected, got);
}

// A worker that stalls (SIGSTOP, as a frozen VM or a long pause would) for
// less than its session timeout while the other goes on: the running worker
// holds its evaluations at the feedback gate until the stalled worker's
// horizons move again, and the alerts are those of the input alone.
TEST(WorkerOnRealKafka, AStalledWorkerHoldsTheOtherAtTheFeedbackGateAndChangesNoAlert) {
  auto h = WorkerHarness::Create(6);
  ASSERT_TRUE(h.ok()) << h.error().message;
  // The lab model: with the field model's delayed trackers a quiet release
  // (partition clock) can evaluate a box before its late fixes arrive, and a
  // gate hold lets them in first, which changes the alert's case file
  // (docs/worker.md, Known limits). The crash and rebalance tests run the
  // field model.
  sim::TrafficOptions lab = SeizureTraffic(3000, 43);
  lab.field = false;
  const sim::Traffic traffic = sim::GenerateTraffic(lab, DefaultProfile());
  const AlertDigest expected = ExpectedAlerts(traffic, DefaultProfile(), 6);
  ASSERT_GE(SeizureAlerts(expected), 10u) << "the input must raise alerts on parties with a recorded seizure";
  ASSERT_TRUE((*h)->Produce(traffic.records).ok());

  // A 30 s session: librdkafka heartbeats every 3 s, so with the default
  // 10 s the broker could hear nothing for 11 s of an 8 s stall and evict
  // the stalled member, and the test would be one of rebalances.
  const std::string kafka_properties = (*h)->dir() + "/stall.properties";
  {
    std::ofstream out(kafka_properties);
    out << "session.timeout.ms=30000\n";
  }
  const std::map<std::string, std::string> slow = {{"max_records_per_commit", "100"},
                                                   {"backlog_records_per_commit", "100"},
                                                   {"kafka_config", kafka_properties}};
  auto w0 = (*h)->StartWorker("st-0", slow);
  auto w1 = (*h)->StartWorker("st-1", slow);
  ASSERT_TRUE(w0.ok() && w1.ok());
  const int port0 = static_cast<int>(JsonField((*w0)->last_line(), "metrics_port"));
  const int port1 = static_cast<int>(JsonField((*w1)->last_line(), "metrics_port"));
  const int64_t total = static_cast<int64_t>(traffic.records.size());
  // Both must own partitions and have moved before the stall.
  const auto deadline = std::chrono::steady_clock::now() + 120s;
  while (std::chrono::steady_clock::now() < deadline &&
         (CommittedRecords(port0) + CommittedRecords(port1) < total / 5 || CommittedRecords(port0) <= 0 ||
          CommittedRecords(port1) <= 0)) {
    std::this_thread::sleep_for(100ms);  // polling the workers' metrics
  }
  ASSERT_GT(CommittedRecords(port1), 0) << "st-1 committed nothing within 120 s";
  ASSERT_GE(CommittedRecords(port0) + CommittedRecords(port1), total / 5);

  // 8 s: well inside the session timeout, so no rebalance; well inside
  // reference_wait_ms (30 s), so the gate holds rather than opens.
  const double expired_before = MetricSum(port0, "boxwatch_worker_reference_wait_expired_total");
  ASSERT_GE(expired_before, 0) << "st-0's metrics are unreadable";
  const double rebalances_before = MetricSum(port0, "boxwatch_worker_rebalances_total");
  ASSERT_GE(rebalances_before, 0) << "st-0's metrics are unreadable";
  (*w1)->Signal(SIGSTOP);
  const int64_t committed_at_stop = CommittedRecords(port0);
  double most_held = 0;
  const auto resume_at = std::chrono::steady_clock::now() + 8s;
  while (std::chrono::steady_clock::now() < resume_at) {
    most_held = std::max(most_held, MetricSum(port0, "boxwatch_worker_gated_containers"));
    std::this_thread::sleep_for(250ms);  // the gauge is refreshed every 2 s
  }
  const int64_t committed_in_stall = CommittedRecords(port0) - committed_at_stop;
  (*w1)->Signal(SIGCONT);
  std::printf("during the stall st-0 committed %lld records and held up to %.0f containers at the gate\n",
              static_cast<long long>(committed_in_stall), most_held);

  auto alerts = (*h)->WaitForAlerts(expected.size(), 300s);
  ASSERT_TRUE(alerts.ok());
  EXPECT_EQ(MetricSum(port0, "boxwatch_worker_rebalances_total"), rebalances_before)
      << "st-0 went through a rebalance: the stall outlasted st-1's session, and the test's premise failed";
  EXPECT_EQ(MetricSum(port0, "boxwatch_worker_reference_wait_expired_total"), expired_before)
      << "the gate opened without the stalled worker's horizons";
  for (auto* w : {&*w0, &*w1}) {
    (*w)->Kill(SIGTERM);
    ASSERT_TRUE((*w)->WaitForLine("{\"event\":\"stopped\"", 10s));
    std::printf("%s\n", (*w)->last_line().c_str());
    EXPECT_EQ(JsonField((*w)->last_line(), "late"), 0);
  }
  EXPECT_GT(most_held, 0) << "the running worker never held a container for the stalled worker's horizons";
  const AlertDigest got = Digest(*alerts);
  EXPECT_EQ(alerts->size(), expected.size());
  EXPECT_TRUE(got == expected) << Diff(expected, got);
  if (got != expected) {
    for (const auto& a : *alerts) {
      auto it = expected.find(a.alert_id());
      if (it == expected.end() || Digest({a}).at(a.alert_id()) == it->second) continue;
      std::printf("GOT %s\n", a.DebugString().c_str());
      for (const auto& e : ExpectedAlertList(traffic, DefaultProfile(), 6)) {
        if (e.alert_id() == a.alert_id()) std::printf("WANT %s\n", e.DebugString().c_str());
      }
    }
  }
}

// Through a backlog, one worker's tasks stay within the allowed lateness of
// each other in event time, even when one partition holds four times the
// records per hour of the others: each task's published feedback horizon
// (its partition clock, from which the gate is set) is never more than L
// ahead of another's, give or take a clock block and a cycle. Taking turns by record counts alone, the three sparse
// partitions ran hours ahead of the dense one, and the gate held everything
// they processed meanwhile.
TEST(WorkerOnRealKafka, TasksKeepWithinTheAllowedLatenessOfEachOtherThroughABacklog) {
  constexpr int kPartitions = 4;
  constexpr int64_t kLatenessMs = 300000;  // the worker's default allowed_lateness_ms
  auto h = WorkerHarness::Create(kPartitions);
  ASSERT_TRUE(h.ok()) << h.error().message;
  sim::TrafficOptions o = RecentTraffic(24000, 17);
  o.gps_per_container = 0;
  o.scans = false;
  o.scenario_rate = 0;
  o.lookalike_rate = 0;
  const sim::Traffic traffic = sim::GenerateTraffic(o, DefaultProfile());
  // Partition 0 keeps every manifest, the others one container in four; the
  // filing times (about 18 h of them) are brought ten times closer, so that
  // L holds a few hundred records.
  int64_t first_ms = INT64_MAX;
  for (const auto& r : traffic.records) first_ms = std::min(first_ms, r.timestamp_ms);
  std::vector<sim::TrafficRecord> skewed;
  std::map<int32_t, int64_t> per_partition;
  int64_t latest_ms = 0;
  for (const auto& r : traffic.records) {
    if (r.role != pipeline::TopicRole::kManifests) continue;
    const int32_t p = pipeline::JavaPartition(r.key, kPartitions);
    if (p != 0 && pipeline::Murmur2(r.key + "#") % 4 != 0) continue;
    skewed.push_back(r);
    skewed.back().timestamp_ms = first_ms + (r.timestamp_ms - first_ms) / 10;
    ++per_partition[p];
    latest_ms = std::max(latest_ms, skewed.back().timestamp_ms);
  }
  ASSERT_GT(per_partition[0], 3 * per_partition[1]) << "partition 0 must hold the most records per hour";
  ASSERT_GT(latest_ms - first_ms, 8 * kLatenessMs) << "the input must span much more than L";
  ASSERT_TRUE((*h)->Produce(skewed).ok());

  // Small cycles, so that the horizons are published often.
  auto worker = (*h)->StartWorker("align-0", {{"max_records_per_commit", "50"},
                                              {"backlog_records_per_commit", "50"}});
  ASSERT_TRUE(worker.ok()) << worker.error().message;
  ASSERT_TRUE(WaitForCommittedRecords(**worker, static_cast<int64_t>(skewed.size()), 240s))
      << "the worker did not commit every input record within 240 s";
  StopWorker(**worker);

  auto reference = ReadAllCommitted((*h)->bootstrap(), (*h)->prefix() + "boxwatch.reference", 1, 30s);
  ASSERT_TRUE(reference.ok()) << reference.error().message;
  // The horizons after each commit: one transaction's records have
  // consecutive offsets, its commit marker takes the next. A caught-up
  // task's horizon moves to the wall clock, past the input, and leaves the
  // comparison.
  std::map<int32_t, int64_t> horizon;
  int64_t widest = 0;
  size_t commits = 0;
  auto compare = [&] {
    if (horizon.size() < 2) return;
    int64_t lo = INT64_MAX, hi = INT64_MIN;
    for (const auto& [q, v] : horizon) lo = std::min(lo, v), hi = std::max(hi, v);
    widest = std::max(widest, hi - lo);
  };
  int64_t next_offset = -1;
  for (const auto& r : *reference) {
    if (r.key.rfind("__horizon__:", 0) != 0) continue;
    if (r.offset != next_offset) {
      compare();
      ++commits;
    }
    next_offset = r.offset + 1;
    const int32_t p = std::stoi(r.key.substr(12));
    const int64_t ms = std::stoll(r.value);
    if (ms > latest_ms) {
      horizon.erase(p);
    } else {
      horizon[p] = ms;
    }
  }
  compare();
  std::printf("%zu records (partition 0: %lld, 1: %lld) over %.0f s, %zu commits with horizons, widest spread %.0f s\n",
              skewed.size(), static_cast<long long>(per_partition[0]), static_cast<long long>(per_partition[1]),
              static_cast<double>(latest_ms - first_ms) / 1000, commits, static_cast<double>(widest) / 1000);
  ASSERT_GT(commits, 40u) << "too few commits to judge";
  // L, plus a partition clock block's span (60 s: the clock moves in
  // blocks) and a cycle's records.
  EXPECT_LE(widest, kLatenessMs + 120000) << "a task ran more than the allowed lateness ahead of another";
}

}  // namespace
}  // namespace boxwatch::testing
