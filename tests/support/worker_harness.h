#pragma once
// Runs `boxwatch worker` processes against the real broker for integration
// tests: a fresh topic set (unique prefix), configs with their own state
// directories, traffic production, and reading alerts and dead letters back.

#include <functional>
#include <map>
#include <optional>
#include <memory>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "core/types.h"
#include "operators/engine.h"
#include "sim/traffic.h"
#include "tests/support/child_process.h"
#include "tests/support/test_broker.h"

namespace boxwatch::testing {

// What an alert says, for comparing runs: id -> priority, score, fired
// indicator ids and a hash of the whole value (equal digests: byte-identical
// alerts).
using AlertDigest = std::map<std::string, std::string>;

class WorkerHarness {
 public:
  // Creates the topic set with `partitions` partitions on the real broker;
  // `adjust`, when given, may change the topic specifications first.
  // `prefix`: the topic prefix (default: one unique to this harness).
  static Result<std::unique_ptr<WorkerHarness>> Create(
      int partitions, const std::function<void(std::vector<pipeline::TopicSpec>&)>& adjust = {},
      const std::optional<std::string>& prefix = std::nullopt);
  ~WorkerHarness();

  const std::string& bootstrap() const { return bootstrap_; }
  const std::string& prefix() const { return prefix_; }
  // A scratch directory of this harness (state, configs), removed at the end.
  const std::string& dir() const { return dir_; }
  std::string StateDir(const std::string& instance) const { return dir_ + "/state-" + instance; }
  // From now on, processes this harness starts append their stderr to
  // dir()/<name>.stderr instead of the test's (for tests that read it).
  void CaptureStderr() { capture_stderr_ = true; }
  // Where process `name`'s stderr goes: a file, or "" (the test's stderr).
  std::string StderrFile(const std::string& name) const {
    return capture_stderr_ ? dir_ + "/" + name + ".stderr" : std::string();
  }

  // Starts `boxwatch worker` as `instance`; waits for its "started" line.
  Result<std::unique_ptr<Child>> StartWorker(const std::string& instance,
                                              const std::map<std::string, std::string>& extra = {});
  Status Produce(const std::vector<sim::TrafficRecord>& records);

  // Alerts committed so far (read_committed, to the end).
  Result<std::vector<v1::Alert>> Alerts();
  Result<std::vector<pipeline::OwnedRecord>> DeadLetters();
  // Polls the committed alerts until they reach `count` or `timeout` passes;
  // returns what it read last.
  // With `distinct`, counts distinct alert ids (at-least-once may repeat alerts).
  Result<std::vector<v1::Alert>> WaitForAlerts(size_t count, std::chrono::seconds timeout, bool distinct = false);

 private:
  std::unique_ptr<TestBroker> broker_;
  std::string bootstrap_;
  std::string prefix_;
  std::string dir_;
  int partitions_ = 0;
  bool capture_stderr_ = false;
};

// The alerts a correct pipeline must produce for `traffic` once it has read
// everything: each partition's records merged as a task merges them and run
// through pipeline::TaskCore (the worker's own decisions) with the worker's
// default options and `lateness_ms`; the workers run without idle flush.
// The offline run's alerts themselves, in emission order.
std::vector<v1::Alert> ExpectedAlertList(const sim::Traffic& traffic, const operators::Profile& profile,
                                         int partitions, int64_t lateness_ms = 300000);
AlertDigest ExpectedAlerts(const sim::Traffic& traffic, const operators::Profile& profile, int partitions,
                           int64_t lateness_ms = 300000);
AlertDigest Digest(const std::vector<v1::Alert>& alerts);
// The sum of every sample of the metric `name` (all its label sets) that
// the process exports on `port`; -1 when the page is unreadable.
double MetricSum(int port, std::string_view name);
// Input records a worker has committed so far (from its metrics on `port`), -1 when unreadable.
int64_t CommittedRecords(int port);
// Waits until the worker (its "started" line the last one read) has
// committed at least `n` input records.
bool WaitForCommittedRecords(const Child& worker, int64_t n, std::chrono::seconds timeout);
// The built-in default profile, parsed once.
const operators::Profile& DefaultProfile();
// Simulator options for `containers` boxes whose event times end within the
// two days before now: inside the topics' retention, never in the future.
sim::TrafficOptions RecentTraffic(int containers, uint32_t seed);
// As RecentTraffic, with inspection outcomes and seizures whose parties come
// back on later manifests (reused fronts, trips over 10 days ending about
// two days ago): seizure feedback changes alerts. The simulator's field
// model is on (skewed tracker clocks, late uploads, replays, re-seals, split
// consignments fed back, a trader register).
sim::TrafficOptions SeizureTraffic(int containers, uint32_t seed);
// Alerts of `digest` with the history.party_seizure indicator.
size_t SeizureAlerts(const AlertDigest& digest);
std::string Num(double v);
// Parses a {"event":"stopped",...} line's numeric field.
int64_t JsonField(const std::string& line, const std::string& name);
using boxwatch::NowMs;

}  // namespace boxwatch::testing
