#include "tests/support/worker_harness.h"

#include <stdlib.h>
#include <unistd.h>

#include <filesystem>
#include <limits>
#include <fstream>
#include <set>
#include <sstream>
#include <thread>

#include "core/http.h"
#include "operators/decode.h"
#include "operators/default_profile.h"
#include "pipeline/partitioner.h"
#include "pipeline/task_core.h"
#include "pipeline/worker_config.h"
#include "sim/produce.h"

namespace boxwatch::testing {

Result<std::unique_ptr<WorkerHarness>> WorkerHarness::Create(
    int partitions, const std::function<void(std::vector<pipeline::TopicSpec>&)>& adjust,
    const std::optional<std::string>& prefix) {
  auto h = std::make_unique<WorkerHarness>();
  auto broker = TestBroker::Start(BrokerKind::kReal);
  if (!broker.ok()) return broker.error();
  h->broker_ = std::move(broker).value();
  h->bootstrap_ = h->broker_->bootstrap();
  h->prefix_ = prefix ? *prefix : TestBroker::UniqueName("w") + ".";
  h->partitions_ = partitions;
  char tmpl[] = "/tmp/boxwatch-worker-test-XXXXXX";
  if (::mkdtemp(tmpl) == nullptr) return Error{Errc::kIo, "mkdtemp failed"};
  h->dir_ = tmpl;
  // Simulated event times are historical: time-based retention would delete them mid-test.
  auto specs = pipeline::TopicSetSpecs({.prefix = h->prefix_, .partitions = partitions, .replication = 1,
                                        .event_retention_ms = -1, .alert_retention_ms = -1});
  if (adjust) adjust(specs);
  Status s = h->broker_->CreateTopics(specs);
  if (!s.ok()) return s.error();
  return h;
}

WorkerHarness::~WorkerHarness() {
  std::error_code ec;
  std::filesystem::remove_all(dir_, ec);
}

Result<std::unique_ptr<Child>> WorkerHarness::StartWorker(const std::string& instance,
                                                          const std::map<std::string, std::string>& extra) {
  const std::string path = dir_ + "/" + instance + ".yaml";
  std::ofstream out(path);
  std::map<std::string, std::string> options = {
      {"bootstrap", bootstrap_},
      {"group_id", prefix_ + "workers"},
      {"instance_id", instance},
      {"topic_prefix", prefix_},
      {"state_dir", StateDir(instance)},
      {"commit_interval_ms", "100"},
      {"allowed_lateness_ms", "300000"},
      {"idle_wait_ms", "2000"},
      {"max_value_bytes", "262144"},
      {"idle_flush_ms", "0"},
      {"metrics_listen", "127.0.0.1:0"},
  };
  for (const auto& [k, v] : extra) options[k] = v;
  for (const auto& [k, v] : options) out << k << ": \"" << v << "\"\n";
  out.close();
  auto child = std::make_unique<Child>(std::vector<std::string>{BOXWATCH_BINARY, "worker", "--config", path},
                                       StderrFile(instance));
  if (!child->started()) return Error{Errc::kIo, "cannot start " + std::string(BOXWATCH_BINARY)};
  if (!child->WaitForLine("{\"event\":\"started\"", std::chrono::seconds(60))) {
    // It ended (its stdout closed) or the deadline passed: which.
    const std::string how = child->EndedHow(std::chrono::seconds(2));
    const bool ran_on = how.rfind("still running", 0) == 0;
    return Error{Errc::kTimeout, "worker " + instance +
                                     (ran_on ? " did not start within 60 s (" + how + ")" : " did not start: it " + how) +
                                     "; see its stderr above"};
  }
  return child;
}

Status WorkerHarness::Produce(const std::vector<sim::TrafficRecord>& records) {
  // Tests may send records up to the topics' max.message.bytes.
  auto props = TestClientProperties();
  if (!props.ok()) return props.error();
  pipeline::KafkaProperties extra = *props;
  extra.emplace_back("message.max.bytes", "16000000");
  auto producer = pipeline::KafkaProducer::Create({.bootstrap = bootstrap_, .extra = extra});
  if (!producer.ok()) return producer.error();
  auto sent = sim::ProduceTraffic(**producer, pipeline::TopicNames(prefix_), records, {});
  return sent.status();
}

Result<std::vector<v1::Alert>> WorkerHarness::Alerts() {
  auto records = ReadAllCommitted(bootstrap_, pipeline::TopicNames(prefix_).Name(pipeline::TopicRole::kAlerts),
                                  partitions_, std::chrono::seconds(60));
  if (!records.ok()) return records.error();
  std::vector<v1::Alert> out;
  for (const auto& r : *records) {
    v1::Alert a;
    if (!a.ParseFromString(r.value)) return Error{Errc::kInvalidArgument, "undecodable alert at offset " + std::to_string(r.offset)};
    out.push_back(std::move(a));
  }
  return out;
}

Result<std::vector<pipeline::OwnedRecord>> WorkerHarness::DeadLetters() {
  return ReadAllCommitted(bootstrap_, pipeline::TopicNames(prefix_).Name(pipeline::TopicRole::kDeadLetter),
                          partitions_, std::chrono::seconds(60));
}

Result<std::vector<v1::Alert>> WorkerHarness::WaitForAlerts(size_t count, std::chrono::seconds timeout,
                                                            bool distinct) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    auto alerts = Alerts();
    if (!alerts.ok()) return alerts;
    size_t have = alerts->size();
    if (distinct) {
      std::set<std::string> ids;
      for (const auto& a : *alerts) ids.insert(a.alert_id());
      have = ids.size();
    }
    if (have >= count || std::chrono::steady_clock::now() > deadline) return alerts;
    std::this_thread::sleep_for(std::chrono::milliseconds(500));  // polling a topic, not a sleep-to-sync
  }
}

// Input records the worker has committed so far (its metrics), -1 when unreadable.
double MetricSum(int port, std::string_view name) {
  auto page = http::Fetch("GET", "127.0.0.1", port, "/metrics");
  if (!page.ok()) return -1;
  std::istringstream lines(page->body);
  double total = 0;
  for (std::string line; std::getline(lines, line);) {
    // The name alone, or followed by its labels: not a longer name that starts with it.
    if (line.rfind(name, 0) == 0 && line.size() > name.size() && (line[name.size()] == ' ' || line[name.size()] == '{')) {
      total += std::atof(line.substr(line.rfind(' ') + 1).c_str());
    }
  }
  return total;
}

int64_t CommittedRecords(int port) {
  return static_cast<int64_t>(MetricSum(port, "boxwatch_worker_transaction_records_total"));
}

// Waits until the worker (its "started" line the last one read) has
// committed at least `n` input records.
bool WaitForCommittedRecords(const Child& worker, int64_t n, std::chrono::seconds timeout) {
  const int port = static_cast<int>(JsonField(worker.last_line(), "metrics_port"));
  if (port <= 0) return false;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (CommittedRecords(port) >= n) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));  // polling the worker's metrics
  }
  return false;
}

AlertDigest Digest(const std::vector<v1::Alert>& alerts) {
  AlertDigest d;
  for (const auto& a : alerts) {
    std::vector<std::string> ids;
    for (const auto& f : a.indicators()) ids.push_back(f.id());
    std::sort(ids.begin(), ids.end());
    std::string v = v1::Priority_Name(a.priority()) + " " + Num(a.score());
    for (const auto& id : ids) v += " " + id;
    // The whole value, so equal digests mean byte-identical alerts (the
    // stored value carries no processing time: emit time is a header).
    uint64_t h = 1469598103934665603ULL;  // FNV-1a
    for (unsigned char c : a.SerializeAsString()) h = (h ^ c) * 1099511628211ULL;
    char hex[24];
    std::snprintf(hex, sizeof hex, " #%016llx", static_cast<unsigned long long>(h));
    v += hex;
    d[a.alert_id()] += d.count(a.alert_id()) ? " DUPLICATE " + v : v;
  }
  return d;
}

std::string Num(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2f", v);
  return buf;
}

std::vector<v1::Alert> ExpectedAlertList(const sim::Traffic& traffic, const operators::Profile& profile,
                                         int partitions, int64_t lateness_ms) {
  pipeline::TaskOptions options = pipeline::TaskOptions::From(pipeline::WorkerConfig{});
  options.allowed_lateness_ms = lateness_ms;
  std::map<int32_t, std::vector<pipeline::InputRecord>> by_partition;
  operators::ReferenceData reference;  // what the traffic publishes before it (a trader register)
  for (const auto& r : traffic.records) {
    if (r.role == pipeline::TopicRole::kReference) {
      (void)operators::ApplyReferenceEntry(&reference, r.key, r.value);
      continue;
    }
    by_partition[pipeline::JavaPartition(r.key, partitions)].push_back(sim::AsInputRecord(r));
  }
  auto alerts = pipeline::OfflineAlerts(by_partition, profile, reference, options, NowMs());
  if (!alerts.ok()) std::abort();  // the offline run of generated traffic cannot fail
  return *alerts;
}

AlertDigest ExpectedAlerts(const sim::Traffic& traffic, const operators::Profile& profile, int partitions,
                           int64_t lateness_ms) {
  return Digest(ExpectedAlertList(traffic, profile, partitions, lateness_ms));
}

const operators::Profile& DefaultProfile() {
  static const operators::Profile p = [] {
    auto r = operators::ParseProfile(operators::DefaultProfileYaml(), operators::kDefaultProfileSource);
    if (!r.ok()) std::abort();  // the built-in profile is checked by the unit tests
    return std::move(r).value();
  }();
  return p;
}

sim::TrafficOptions RecentTraffic(int containers, uint32_t seed) {
  sim::TrafficOptions o;
  o.seed = seed;
  o.containers = containers;
  const int64_t day = 24 * 3600 * 1000LL;
  o.start_ms = (NowMs() / day - 2) * day + 3 * 3600 * 1000LL;
  return o;
}

sim::TrafficOptions SeizureTraffic(int containers, uint32_t seed) {
  sim::TrafficOptions o = RecentTraffic(containers, seed);
  const int64_t day = 24 * 3600 * 1000LL;
  o.start_ms -= 10 * day;
  o.spread_ms = 10 * day;
  o.outcome_rate = 0.8;
  o.reused_front_rate = 0.5;
  // Devices, officers and trade as in the field: skewed tracker clocks,
  // store-and-forward uploads, replays, re-seals, reports days late, split
  // consignments fed back across partitions, a trader register.
  o.field = true;
  return o;
}

size_t SeizureAlerts(const AlertDigest& digest) {
  size_t n = 0;
  for (const auto& [id, v] : digest) n += v.find(" history.party_seizure") != std::string::npos;
  return n;
}

int64_t JsonField(const std::string& line, const std::string& name) {
  const std::string key = "\"" + name + "\":";
  const size_t pos = line.find(key);
  if (pos == std::string::npos) return -1;
  return std::atoll(line.c_str() + pos + key.size());
}

}  // namespace boxwatch::testing
