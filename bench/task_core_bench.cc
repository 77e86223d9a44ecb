// One task's processing without Kafka: the simulator's field traffic merged
// and run through TaskCore, its states in the worker's write-behind cache and
// part codec over a real RocksDB partition, the dirty parts taken and stored
// every `records per commit` records, as a commit cycle does. What it leaves
// out (the consumer, the producer and the broker) bench/pipeline/run
// measures; this is the worker's own cost per event, repeatable enough for
// `valgrind --tool=callgrind` (instruction counts) and perf.
//
//   build/release/bench/task_core_bench --benchmark_filter='/2400/5000'
//
// Arguments: containers (about 42 records each), records per commit (5,000
// is the live cadence at 50 % of the benchmark's rate, 250,000 a drain's),
// and 1 for the containers' manifests alone.
#include <benchmark/benchmark.h>

#include <cstdlib>
#include <filesystem>
#include <map>
#include <string>

#include "operators/default_profile.h"
#include "pipeline/cache_states.h"
#include "pipeline/state_parts.h"
#include "pipeline/task_core.h"
#include "pipeline/topics.h"
#include "pipeline/worker_config.h"
#include "sim/traffic.h"
#include "state/state_store.h"

namespace boxwatch {
namespace {

constexpr int64_t kStart = 1794960000000;                    // 2026-11-18T00:00Z
constexpr int64_t kNow = kStart + 40LL * 24 * 3600 * 1000;  // wall clock after the data

const operators::Profile& Profile() {
  static const operators::Profile p = [] {
    auto r = operators::ParseProfile(operators::DefaultProfileYaml(), operators::kDefaultProfileSource);
    if (!r.ok()) std::abort();
    return std::move(r).value();
  }();
  return p;
}

// The field model's input records for `containers` boxes (its trader register,
// on the reference topic, left out: the task reads no reference data here).
// With `manifests_only`, their manifests alone: the opening of a phase of
// bench/pipeline/run's latency runs, where every box's pre-arrival notice
// comes before its trip.
const std::vector<sim::TrafficRecord>& Records(int containers, bool manifests_only) {
  static std::map<std::pair<int, bool>, std::vector<sim::TrafficRecord>> made;
  auto it = made.find({containers, manifests_only});
  if (it != made.end()) return it->second;
  sim::TrafficOptions o;
  o.seed = 1;
  o.containers = containers;
  o.start_ms = kStart;
  o.field = true;
  sim::Traffic t = sim::GenerateTraffic(o, Profile());
  std::erase_if(t.records, [&](const sim::TrafficRecord& r) {
    return pipeline::InputIndex(r.role) < 0 || (manifests_only && r.role != pipeline::TopicRole::kManifests);
  });
  return made.emplace(std::pair{containers, manifests_only}, std::move(t.records)).first->second;
}

// The worker's state path (pipeline/cache_states.h) over one RocksDB
// partition.
class BenchStates final : public pipeline::CacheStates {
 public:
  explicit BenchStates(state::PartitionStore* store) : CacheStates(store, 100000) {}
  Status ForEach(const std::function<void(const std::string&, const Summary&)>& fn) override {
    return ForEachLoading(fn);
  }
  // What a commit cycle does with the state: the dirty parts, in changelog
  // order, into one RocksDB batch. Returns their bytes.
  Result<uint64_t> Commit(int64_t offset, const std::string& meta) {
    auto writes = cache_.TakeDirty();
    if (!writes.ok()) return writes.error();
    pipeline::OrderForChangelog(&*writes);
    uint64_t bytes = 0;
    for (const auto& w : *writes) bytes += w.key.size() + (w.value ? w.value->size() : 0);
    if (Status s = store_->Commit(*writes, offset, meta); !s.ok()) return s.error();
    return bytes;
  }
};

void BM_TaskCore(benchmark::State& st) {
  const int containers = static_cast<int>(st.range(0));
  const int64_t per_commit = st.range(1);
  const auto& records = Records(containers, st.range(2) != 0);
  operators::ReferenceData ref;
  operators::RiskEngine engine(&Profile(), &ref);
  const pipeline::TaskOptions options = pipeline::TaskOptions::From(pipeline::WorkerConfig{});
  uint64_t events = 0, state_bytes = 0, alerts = 0;
  for (auto _ : st) {
    st.PauseTiming();
    const std::string dir = (std::filesystem::temp_directory_path() / "boxwatch-task-core-bench").string();
    std::filesystem::remove_all(dir);
    auto store = state::StateStore::Open({.path = dir});
    if (!store.ok()) {
      st.SkipWithError(store.error().message.c_str());
      return;
    }
    auto partition = (*store)->Partition(0);
    if (!partition.ok()) {
      st.SkipWithError(partition.error().message.c_str());
      return;
    }
    pipeline::InputMerge merge(kNow, options.max_future_ms);
    for (const auto& r : records) merge.Add(sim::AsInputRecord(r));
    // As the worker's store thread: RocksDB's per-operation counters off.
    state::DisableStoreCountersOnThisThread();
    st.ResumeTiming();
    BenchStates states(*partition);
    pipeline::TaskCore core(options, &engine, &states);
    if (Status s = core.Start(""); !s.ok()) {
      st.SkipWithError(s.message().c_str());
      return;
    }
    pipeline::TaskOutput out;
    int64_t in_commit = 0, offset = 0;
    auto commit = [&]() -> bool {
      auto bytes = states.Commit(++offset, core.EncodeMeta());
      if (!bytes.ok()) {
        st.SkipWithError(bytes.error().message.c_str());
        return false;
      }
      state_bytes += *bytes;
      in_commit = 0;
      return true;
    };
    while (auto record = merge.Next()) {
      if (Status s = core.Process(*record, kNow, &out); !s.ok()) {
        st.SkipWithError(s.message().c_str());
        return;
      }
      alerts += out.alerts.size();
      ++events;
      if (++in_commit == per_commit && !commit()) return;
    }
    if (in_commit > 0 && !commit()) return;
    // What the store gathered in memory goes to RocksDB within the timing.
    if (Status w = (*partition)->WriteGathered(); !w.ok()) {
      st.SkipWithError(w.message().c_str());
      return;
    }

    st.PauseTiming();
    store->reset();
    std::filesystem::remove_all(dir);
    st.ResumeTiming();
  }
  st.counters["ns_per_event"] =
      benchmark::Counter(static_cast<double>(events), benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
  st.counters["state_bytes_per_event"] = static_cast<double>(state_bytes) / static_cast<double>(events);
  st.counters["alerts"] = static_cast<double>(alerts) / static_cast<double>(st.iterations());

}
BENCHMARK(BM_TaskCore)
    ->ArgNames({"containers", "per_commit", "manifests_only"})
    ->ArgsProduct({{2400, 24000}, {5000, 250000}, {0}})
    ->Args({24000, 5000, 1})
    ->Args({72000, 250000, 0})
    ->Unit(benchmark::kMillisecond)
    // The store writes gathered commits on a thread of its own, and RocksDB
    // flushes and compacts on its pools: all of it is the task's cost.
    ->MeasureProcessCPUTime()
    ->Iterations(1);

}  // namespace
}  // namespace boxwatch

BENCHMARK_MAIN();
