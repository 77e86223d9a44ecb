// TaskCore: event time per container, the partition clock, release and
// resumption, without Kafka.
#include "pipeline/task_core.h"

#include <gtest/gtest.h>

#include <map>
#include <random>

#include "operators/default_profile.h"
#include "pipeline/cache_states.h"
#include "pipeline/partitioner.h"
#include "pipeline/state_parts.h"
#include "pipeline/topics.h"
#include "pipeline/worker_config.h"
#include "sim/traffic.h"
#include "tests/support/map_partition.h"

namespace boxwatch::pipeline {
namespace {

constexpr int64_t kMin = 60000;
constexpr int64_t kStart = 1794960000000;  // 2026-11-18T00:00Z
constexpr int64_t kNow = kStart + 400LL * 24 * 3600 * 1000;  // wall clock well after the data

const operators::Profile& Profile() {
  static const operators::Profile p = [] {
    auto r = operators::ParseProfile(operators::DefaultProfileYaml(), operators::kDefaultProfileSource);
    EXPECT_TRUE(r.ok());
    return std::move(r).value();
  }();
  return p;
}

// One container's alert as bytes, its processing-time field cleared.
std::string Canonical(v1::Alert a) {
  a.set_emit_time_ms(0);
  return a.SerializeAsString();
}

// The worker's state path without RocksDB: the write-behind cache and the
// part codec (state_parts.h) over a map. Commit() stores what the cache
// holds dirty, as a commit cycle does; a new StoredStates over the same map
// sees only what was stored, as a restarted worker does. A part whose change
// was not marked (say, an evaluation part the engine did not report) is
// lost at a restart.
class StoredStates final : public CacheStates {
 public:
  explicit StoredStates(testing::MapPartition* store, size_t max_entries = 1 << 20)
      : CacheStates(store, max_entries) {}
  Status ForEach(const std::function<void(const std::string&, const Summary&)>& fn) override {
    return ForEachLoading(fn);
  }
  Status Commit() {
    auto writes = cache_.TakeDirty();
    if (!writes.ok()) return writes.error();
    return store_->Commit(*writes, 0, "");
  }
};

struct TaskRun {
  std::map<std::string, std::vector<std::string>> alerts;  // container -> canonical alerts in order
  std::map<std::string, int> late;                         // container -> late records
  TaskCounters counters;
};

// Runs `records` as one task. With `restart_seed` > 0 the task is stopped
// and resumed from its metadata and serialised states (what a commit
// stores) at random points, as after crashes at commits of random sizes.
// `through_codec`: states kept as the worker keeps them (StoredStates),
// committed at those points and resumed, every other one, from what was
// stored; else whole states copied.
TaskRun RunTask(const std::vector<sim::TrafficRecord>& records, uint32_t restart_seed = 0,
                bool through_codec = false) {
  operators::ReferenceData ref;
  operators::RiskEngine engine(&Profile(), &ref);
  const TaskOptions options = TaskOptions::From(WorkerConfig{});
  InputMerge merge(kNow, options.max_future_ms);
  for (const auto& r : records) merge.Add(sim::AsInputRecord(r));
  testing::MapPartition store;
  std::unique_ptr<ContainerStates> states;
  if (through_codec) {
    states = std::make_unique<StoredStates>(&store);
  } else {
    states = std::make_unique<MemoryStates>();
  }
  auto core = std::make_unique<TaskCore>(options, &engine, states.get());
  EXPECT_TRUE(core->Start("").ok());
  std::mt19937 rng(restart_seed);
  std::uniform_int_distribution<int> gap(1, 400);
  int until_restart = restart_seed > 0 ? gap(rng) : -1;
  int commits = 0;
  TaskRun run;
  TaskOutput out;
  while (auto record = merge.Next()) {
    EXPECT_TRUE(core->Process(*record, kNow, &out).ok());
    for (const auto& a : out.alerts) run.alerts[a.container_number()].push_back(Canonical(a));
    if (out.rejected && out.rejected->reason == operators::RejectReason::kLate) ++run.late[std::string(record->key)];
    if (until_restart > 0 && --until_restart == 0) {
      until_restart = gap(rng);
      const std::string meta = core->EncodeMeta();
      if (through_codec) {
        EXPECT_TRUE(static_cast<StoredStates&>(*states).Commit().ok());
        if (++commits % 2 == 1) continue;  // committed, not restarted
        states = std::make_unique<StoredStates>(&store);
      } else {
        auto restored = std::make_unique<MemoryStates>();
        for (const auto& [key, s] : static_cast<MemoryStates&>(*states).states()) {
          v1::ContainerState copy;
          EXPECT_TRUE(copy.ParseFromString(s.SerializeAsString()));
          restored->Put(key, std::move(copy));
        }
        states = std::move(restored);
      }
      core = std::make_unique<TaskCore>(options, &engine, states.get());
      EXPECT_TRUE(core->Start(meta).ok());
    }
  }
  run.counters = core->counters();
  return run;
}

// Input records only: the field model's trader register (reference topic)
// is left out, so every run here reads the same (empty) reference data.
sim::Traffic InputsOnly(sim::Traffic traffic) {
  std::erase_if(traffic.records, [](const sim::TrafficRecord& r) { return InputIndex(r.role) < 0; });
  return traffic;
}

sim::Traffic Traffic(uint32_t seed, int containers, bool field = false) {
  sim::TrafficOptions o;
  o.seed = seed;
  o.containers = containers;
  o.start_ms = kStart;
  o.field = field;
  return InputsOnly(sim::GenerateTraffic(o, Profile()));
}

size_t Count(const TaskRun& r) {
  size_t n = 0;
  for (const auto& [k, v] : r.alerts) n += v.size();
  return n;
}

// The run straight through against runs resumed at random points.
void ExpectTheSameWhateverTheRestarts(const sim::Traffic& traffic) {
  const TaskRun straight = RunTask(traffic.records);
  ASSERT_GT(Count(straight), 30u) << "the input must raise alerts";
  for (uint32_t seed : {1u, 2u, 3u}) {
    SCOPED_TRACE("restart seed " + std::to_string(seed));
    const TaskRun resumed = RunTask(traffic.records, seed);
    EXPECT_TRUE(resumed.alerts == straight.alerts);
    EXPECT_EQ(resumed.late, straight.late);
  }
}

// The indexes order containers by key as strings do (ties between equal
// due times are walked in that order), and give the key back.
TEST(TaskCoreIndexKey, OrdersAsTheBytesAndGivesTheKeyBack) {
  std::mt19937 rng(20261205);
  SCOPED_TRACE("seed 20261205");
  auto random_key = [&] {
    std::string k(1 + rng() % TaskCore::kMaxIndexKey, ' ');
    for (char& c : k) c = static_cast<char>(1 + rng() % 255);  // any byte but NUL
    if (rng() % 4 == 0) k = "MSKU" + std::to_string(1000000 + rng() % 9000000);  // container-like, shared prefixes
    return k;
  };
  for (int i = 0; i < 20000; ++i) {
    const std::string a = random_key(), b = random_key();
    const auto ka = TaskCore::IndexKey::Of(a), kb = TaskCore::IndexKey::Of(b);
    EXPECT_EQ(ka < kb, a < b) << a << " / " << b;
    EXPECT_EQ(ka == kb, a == b) << a << " / " << b;
    EXPECT_EQ(ka.str(), a);
  }
  EXPECT_LT(TaskCore::IndexKey::Of("MSKU123"), TaskCore::IndexKey::Of("MSKU1234")) << "a prefix sorts first";
}

TEST(TaskCore, ResumingFromCommittedStateAtAnyPointGivesTheSameAlerts) { ExpectTheSameWhateverTheRestarts(Traffic(7, 400)); }

// The same through the worker's state codec: only the parts marked dirty
// are stored, so an evaluation part whose change went unmarked would be
// lost at a restart and its container alert again (or not at all).
TEST(TaskCore, ResumingFromThePartsStoredAtAnyCommitGivesTheSameAlerts) {
  const sim::Traffic traffic = Traffic(7, 400, /*field=*/true);
  const TaskRun straight = RunTask(traffic.records);
  ASSERT_GT(Count(straight), 30u) << "the input must raise alerts";
  for (uint32_t seed : {4u, 5u}) {
    SCOPED_TRACE("restart seed " + std::to_string(seed));
    const TaskRun resumed = RunTask(traffic.records, seed, /*through_codec=*/true);
    EXPECT_TRUE(resumed.alerts == straight.alerts);
    EXPECT_EQ(resumed.late, straight.late);
  }
}

// The field model (skewed tracker clocks, store-and-forward uploads, replays,
// power saving, re-seals, late filing): the same alerts and the same late
// records whatever the commit points.
TEST(TaskCore, OnFieldTrafficResumingAtAnyPointGivesTheSameAlertsAndLateRecords) {
  ExpectTheSameWhateverTheRestarts(Traffic(7, 600, /*field=*/true));
}

// Re-encodes a GPS record with its fix time and Kafka timestamp moved.
sim::TrafficRecord Shifted(const sim::TrafficRecord& r, int64_t by_ms) {
  const operators::Encoding enc = r.json ? operators::Encoding::kJson : operators::Encoding::kProtobuf;
  auto decoded = operators::DecodeGps({r.key, r.value, enc}, ProcessingTimeMs(kNow), {});
  sim::TrafficRecord out = r;
  out.timestamp_ms += by_ms;
  if (auto* e = std::get_if<v1::GpsEvent>(&decoded)) {
    e->set_fix_time_ms(e->fix_time_ms() + by_ms);
    out.value = operators::Encode(*e, enc);
  }
  return out;
}

TEST(TaskCore, AFastTrackerClockChangesNoOtherContainersAlertsAndMakesNothingLate) {
  const sim::Traffic traffic = Traffic(11, 300);
  const TaskRun base = RunTask(traffic.records);
  ASSERT_GT(Count(base), 20u);
  // Every tracker of the three busiest GPS containers runs 9 minutes fast.
  std::map<std::string, int> fixes;
  for (const auto& r : traffic.records) {
    if (r.role == TopicRole::kGps && r.expect_dead_letter.empty()) ++fixes[r.key];
  }
  std::vector<std::pair<int, std::string>> by_count;
  for (const auto& [k, n] : fixes) by_count.push_back({n, k});
  std::sort(by_count.rbegin(), by_count.rend());
  ASSERT_GE(by_count.size(), 3u);
  std::set<std::string> fast;
  for (int i = 0; i < 3; ++i) fast.insert(by_count[i].second);
  std::vector<sim::TrafficRecord> skewed;
  for (const auto& r : traffic.records) {
    skewed.push_back(r.role == TopicRole::kGps && fast.count(r.key) && r.expect_dead_letter.empty() ? Shifted(r, 9 * kMin)
                                                                                                    : r);
  }
  const TaskRun run = RunTask(skewed);
  size_t compared = 0;
  for (const auto& [container, alerts] : base.alerts) {
    if (fast.count(container)) continue;
    auto it = run.alerts.find(container);
    ASSERT_TRUE(it != run.alerts.end()) << container << " lost its alerts";
    EXPECT_TRUE(it->second == alerts) << container;
    ++compared;
  }
  EXPECT_GT(compared, 10u);
  for (const auto& [container, alerts] : run.alerts) {
    if (!fast.count(container)) {
      EXPECT_TRUE(base.alerts.count(container)) << container << " gained alerts";
    }
  }
  for (const auto& [container, n] : run.late) {
    EXPECT_EQ(n, base.late.count(container) ? base.late.at(container) : 0) << container << " got late records";
  }
}

// A tracked box: fixes every 2 minutes along a line, keyed `box`.
std::vector<sim::TrafficRecord> Fixes(const std::string& box, int64_t from, int count, int64_t step = 2 * kMin,
                                      int first_id = 0) {
  std::vector<sim::TrafficRecord> out;
  for (int i = 0; i < count; ++i) {
    v1::GpsEvent e;
    e.set_container_number(box);
    e.set_tracker_id("TRK-" + box);
    e.set_event_id("E" + std::to_string(first_id + i));
    e.set_fix_time_ms(from + i * step);
    e.mutable_position()->set_lat(13.0 + 0.001 * (first_id + i));
    e.mutable_position()->set_lon(100.9);
    e.set_speed_kmh(60);
    e.set_seal_state(v1::GpsEvent::SEAL_STATE_CLOSED);
    out.push_back({TopicRole::kGps, box, e.SerializeAsString(), e.fix_time_ms(), false, ""});
  }
  return out;
}

TEST(TaskCore, AStoreAndForwardBurstAfterACoverageGapIsProcessedInOrder) {
  const std::string box = "CSQU3054383";
  const std::string other = "MSCU1234566";
  // The box reports for an hour, loses coverage for 50 minutes while the
  // other box goes on reporting, then uploads the 25 buffered fixes at once.
  std::vector<sim::TrafficRecord> records = Fixes(box, kStart, 30);
  const int64_t gap_from = kStart + 30 * 2 * kMin;
  auto during = Fixes(other, kStart, 60);
  records.insert(records.end(), during.begin(), during.end());
  std::sort(records.begin(), records.end(),
            [](const auto& a, const auto& b) { return a.timestamp_ms < b.timestamp_ms; });
  auto burst = Fixes(box, gap_from, 25, 2 * kMin, 30);
  records.insert(records.end(), burst.begin(), burst.end());  // read after everything before
  auto after = Fixes(other, kStart + 60 * 2 * kMin, 10, 2 * kMin, 60);
  records.insert(records.end(), after.begin(), after.end());
  const TaskRun run = RunTask(records);
  EXPECT_TRUE(run.late.empty()) << run.late.begin()->first << ": " << run.late.begin()->second << " late";
  EXPECT_EQ(run.counters.processed, records.size());
}

// Fetching ahead (TaskCore::FetchAhead, as the worker does over the next
// records) is a hint only: the same alerts, the same stored bytes and the
// same cache look-ups as without it, including for keys with no state.
TEST(TaskCore, FetchingAheadChangesNoAlertNoStoredByteAndNoCacheCount) {
  operators::ReferenceData ref;
  operators::RiskEngine engine(&Profile(), &ref);
  const TaskOptions options = TaskOptions::From(WorkerConfig{});
  const sim::Traffic traffic = Traffic(11, 300);
  InputMerge merge(kNow, options.max_future_ms);
  for (const auto& r : traffic.records) merge.Add(sim::AsInputRecord(r));
  std::vector<InputRecord> records;
  while (auto r = merge.Next()) records.push_back(*r);
  ASSERT_GT(records.size(), 5000u);

  struct Result {
    std::vector<std::string> alerts;
    std::map<std::string, std::string> stored;
    uint64_t hits = 0, loads = 0;
  };
  auto run = [&](bool ahead) {
    Result result;
    testing::MapPartition store;
    StoredStates states(&store, /*max_entries=*/64);
    TaskCore core(options, &engine, &states);
    EXPECT_TRUE(core.Start("").ok());
    TaskOutput out;
    for (size_t i = 0; i < records.size(); ++i) {
      if (ahead) {
        for (int step = 0; step < TaskCore::kFetchSteps; ++step) {
          const size_t at = i + TaskCore::kFetchSteps - step;
          if (at < records.size()) core.FetchAhead(records[at].key, step);
          core.FetchAhead("NOSTATE0001", step);
        }
      }
      EXPECT_TRUE(core.Process(records[i], kNow, &out).ok());
      for (const auto& a : out.alerts) result.alerts.push_back(Canonical(a));
      // Commits, so that entries are evicted and loaded again.
      if (i % 997 == 996) {
        EXPECT_TRUE(states.Commit().ok());
      }
    }
    EXPECT_TRUE(states.Commit().ok());
    result.stored = store.values;
    result.hits = states.cache().GetStats().hits;
    result.loads = states.cache().GetStats().loads;
    return result;
  };
  const Result plain = run(false), ahead = run(true);
  EXPECT_FALSE(plain.alerts.empty());
  EXPECT_EQ(ahead.alerts, plain.alerts);
  EXPECT_TRUE(ahead.stored == plain.stored);
  EXPECT_EQ(ahead.hits, plain.hits);
  EXPECT_EQ(ahead.loads, plain.loads);
  EXPECT_GT(plain.loads, 0u) << "the cache is small enough to load evicted states again";
}

// A declaration filed late (mid-trip) moves the container's progress; a
// tracker whose clock runs 12 minutes slow still has its later fixes
// joined: a fix is judged against its own tracker's fixes.
TEST(TaskCore, ASlowTrackerAfterADeclarationFiledLateIsNotLate) {
  const std::string box = "CSQU3054383";
  const int64_t skew = -12 * kMin;
  std::vector<sim::TrafficRecord> records = Fixes(box, kStart + skew, 20);  // true times kStart..kStart+38 min
  v1::Manifest m;
  m.set_container_number(box);
  m.set_version(1);
  m.set_declared_at_ms(kStart + 40 * kMin);  // filed after the box arrived
  m.mutable_consignee()->set_name("Kura Agro Trading LLC");
  records.push_back({TopicRole::kManifests, box, m.SerializeAsString(), m.declared_at_ms(), false, ""});
  auto later = Fixes(box, kStart + 40 * kMin + skew, 15, 2 * kMin, 20);  // device times 12 min behind the filing
  records.insert(records.end(), later.begin(), later.end());
  const TaskRun run = RunTask(records);
  EXPECT_TRUE(run.late.empty()) << run.late.begin()->second << " fixes late";
  EXPECT_EQ(run.counters.processed, records.size());
  // A fix the tracker itself had passed by more than the lateness still is late.
  auto stale = Fixes(box, kStart + skew, 1, 2 * kMin, 99);
  records.push_back(stale.front());
  EXPECT_EQ(RunTask(records).late.size(), 1u);
}

TEST(TaskCore, TheSizeLimitJudgesAStateAfterItsEvaluatedVersionsAreDropped) {
  // Five versions of a large manifest, an hour apart: only four are kept, so
  // a state limit that holds four (and not five) takes every version.
  operators::ReferenceData ref;
  operators::RiskEngine engine(&Profile(), &ref);
  const std::string box = "CSQU3054383";
  auto version = [&](uint32_t v) {
    v1::Manifest m;
    m.set_container_number(box);
    m.set_version(v);
    m.set_declared_at_ms(kStart + v * 3600000LL);
    m.mutable_consignee()->set_name("Consignee " + std::to_string(v));
    for (int i = 0; i < 20; ++i) {
      auto* g = m.add_goods();
      g->set_hs_code("690721");
      g->set_description(std::string(3000, 'a' + static_cast<char>(v)));
      g->set_packages(10);
      g->set_gross_weight_kg(1000);
    }
    return m.SerializeAsString();
  };
  const int64_t one = static_cast<int64_t>(version(1).size());
  TaskOptions options = TaskOptions::From(WorkerConfig{});
  options.state_budget_bytes = 4 * one + one / 2;
  MemoryStates states;
  TaskCore core(options, &engine, &states);
  ASSERT_TRUE(core.Start("").ok());
  TaskOutput out;
  std::vector<std::string> values;
  for (uint32_t v = 1; v <= 5; ++v) values.push_back(version(v));
  for (uint32_t v = 1; v <= 5; ++v) {
    ASSERT_TRUE(core.Process({.input = 0, .key = box, .value = values[v - 1], .timestamp_ms = kStart + v * 3600000LL},
                             kNow, &out)
                    .ok());
    EXPECT_FALSE(out.rejected) << "version " << v << ": " << out.rejected->detail;
  }
  ASSERT_NE(states.states().find(box), states.states().end());
  EXPECT_EQ(states.states()[box].manifest_versions_size(), 4);
  EXPECT_LE(static_cast<int64_t>(states.states()[box].ByteSizeLong()), options.state_budget_bytes);
}

TEST(TaskCore, PartitionClockIgnoresUpToSevenInEightFastRecordsOfABlock) {
  operators::ReferenceData ref;
  operators::RiskEngine engine(&Profile(), &ref);
  MemoryStates states;
  TaskCore core(TaskOptions::From(WorkerConfig{}), &engine, &states);
  ASSERT_TRUE(core.Start("").ok());
  TaskOutput out;
  // 64 records: 8 on time, 56 from clocks 50 s fast (a block spans at most
  // 60 s of record time). Undecodable records count: the clock reads only
  // timestamps.
  for (int i = 0; i < TaskCore::kBlockRecords; ++i) {
    const bool on_time = i % 8 == 0;
    const int64_t ts = on_time ? kStart + i : kStart + 50000 + i;
    if (i > 0) {
      EXPECT_EQ(core.partition_clock_ms(), TaskCore::kUnset) << "the block is still open at " << i;
    }
    ASSERT_TRUE(core.Process({.input = 2, .key = "X", .value = "", .timestamp_ms = ts}, kNow, &out).ok());
  }
  EXPECT_EQ(core.partition_clock_ms(), kStart + 56) << "the 8th smallest is the last on-time record";
  // A block also closes at the first record 60 s past its first.
  ASSERT_TRUE(core.Process({.input = 2, .key = "X", .value = "", .timestamp_ms = kStart + 100000}, kNow, &out).ok());
  ASSERT_TRUE(core.Process({.input = 2, .key = "X", .value = "", .timestamp_ms = kStart + 170000}, kNow, &out).ok());
  EXPECT_EQ(core.partition_clock_ms(), kStart + 100000);
  // Metadata carries the clock and the open block.
  ASSERT_TRUE(core.Process({.input = 2, .key = "X", .value = "", .timestamp_ms = kStart + 180000}, kNow, &out).ok());
  MemoryStates again;
  TaskCore resumed(TaskOptions::From(WorkerConfig{}), &engine, &again);
  ASSERT_TRUE(resumed.Start(core.EncodeMeta()).ok());
  EXPECT_EQ(resumed.EncodeMeta(), core.EncodeMeta());
  EXPECT_EQ(resumed.partition_clock_ms(), kStart + 100000);
  // Metadata of the per-partition watermark starts a fresh clock.
  ASSERT_TRUE(resumed.Start("1794960000000\n0\nCSQU3054383").ok());
  EXPECT_EQ(resumed.partition_clock_ms(), TaskCore::kUnset);
}

// One task over in-memory states with the default profile, started empty.
struct OneTask {
  operators::ReferenceData ref;
  operators::RiskEngine engine{&Profile(), &ref};
  MemoryStates states;
  TaskOptions options = TaskOptions::From(WorkerConfig{});
  TaskCore core{options, &engine, &states};
  OneTask() { EXPECT_TRUE(core.Start("").ok()); }
};

// A radiation portal's neutron alarm on `box` at `at_ms`: fires at once.
v1::ScanResult NeutronAlarm(const std::string& box, int64_t at_ms) {
  v1::ScanResult scan;
  scan.set_container_number(box);
  scan.set_scan_id("RPM-1");
  scan.set_site("THLCH");
  scan.set_device_id("RPM-1");
  scan.set_scanned_at_ms(at_ms);
  scan.set_kind(v1::ScanResult::SCAN_KIND_RPM);
  scan.mutable_rpm()->set_gamma_cps(100);
  scan.mutable_rpm()->set_gamma_background_cps(100);
  scan.mutable_rpm()->set_neutron_cps(40);
  scan.mutable_rpm()->set_neutron_background_cps(2);
  scan.mutable_rpm()->set_neutron_alarm(true);
  return scan;
}

TEST(TaskCore, AQuietContainerIsReleasedByThePartitionClockNotBeforeItsLateness) {
  // A neutron alarm on a box that then goes quiet: no event of its own moves
  // its bound, the partition clock must.
  OneTask task;
  TaskCore& core = task.core;
  const TaskOptions& options = task.options;
  const std::string box = "CSQU3054383";
  v1::ScanResult scan = NeutronAlarm(box, kStart);
  const std::string value = scan.SerializeAsString();
  TaskOutput out;
  ASSERT_TRUE(core.Process({.input = 1, .key = box, .value = value, .timestamp_ms = kStart}, kNow, &out).ok());
  EXPECT_TRUE(out.alerts.empty()) << "held back for the lateness";
  // Another box's fixes move the partition clock.
  std::vector<sim::TrafficRecord> other = Fixes("MSCU1234566", kStart, 200, 5000);
  std::vector<v1::Alert> alerts;
  int64_t released_at = 0;
  for (const auto& r : other) {
    ASSERT_TRUE(core.Process({.input = 2, .key = r.key, .value = r.value, .timestamp_ms = r.timestamp_ms}, kNow, &out)
                    .ok());
    for (const auto& a : out.alerts) {
      if (a.container_number() == box && released_at == 0) {
        released_at = core.partition_clock_ms();
      }
    }
  }
  ASSERT_NE(released_at, 0) << "the quiet box was never released";
  EXPECT_GT(released_at, kStart + options.allowed_lateness_ms);
  EXPECT_EQ(core.counters().quiet_releases, 1u);
}

// States in memory, counting the full reads (ForEach) an expiry sweep makes.
class CountingStates final : public ContainerStates {
 public:
  Result<v1::ContainerState*> Get(const std::string& key) override { return inner.Get(key); }
  v1::ContainerState* Put(const std::string& key, v1::ContainerState state) override {
    return inner.Put(key, std::move(state));
  }
  Status MarkDirty(const std::string& key, uint32_t parts) override { return inner.MarkDirty(key, parts); }
  Status Erase(const std::string& key) override { return inner.Erase(key); }
  Status ForEach(const std::function<void(const std::string&, const Summary&)>& fn) override {
    ++reads;
    return inner.ForEach(fn);
  }
  MemoryStates inner;
  int reads = 0;
};

// The expiry sweep (every 24 h of partition clock) reads every state only
// once one can have expired (its last event more than state_ttl_ms, 30
// days, before the clock less L): a replay of weeks does not read a
// partition's states whole every simulated day. The box that went quiet
// still expires at the first sweep after its TTL, and the others do not.
TEST(TaskCore, AnExpirySweepReadsTheStatesOnlyWhenOneCanHaveExpired) {
  operators::ReferenceData ref;
  operators::RiskEngine engine(&Profile(), &ref);
  CountingStates states;
  const TaskOptions options = TaskOptions::From(WorkerConfig{});
  TaskCore core(options, &engine, &states);
  ASSERT_TRUE(core.Start("").ok());
  ASSERT_EQ(states.reads, 1) << "Start lists the stored states";
  const int64_t kDay = 24 * 3600 * 1000LL;
  const std::string quiet = "CSQU3054383";
  TaskOutput out;
  const std::string first = NeutronAlarm(quiet, kStart).SerializeAsString();
  ASSERT_TRUE(core.Process({.input = 1, .key = quiet, .value = first, .timestamp_ms = kStart}, kNow, &out).ok());
  // A scan a day on another box, 40 days: the partition clock moves a day at
  // a time (each record closes the block before it).
  const std::string busy = "MSCU1234566";
  int reads_before_ttl = 0;
  for (int day = 1; day <= 40; ++day) {
    const int64_t t = kStart + day * kDay;
    v1::ScanResult scan = NeutronAlarm(busy, t);
    scan.set_scan_id("RPM-1-" + std::to_string(day));  // a new scan, not a repeat of the first
    const std::string v = scan.SerializeAsString();
    ASSERT_TRUE(core.Process({.input = 1, .key = busy, .value = v, .timestamp_ms = t}, kNow, &out).ok());
    if (core.partition_clock_ms() - options.allowed_lateness_ms <= kStart + options.state_ttl_ms) {
      reads_before_ttl = states.reads;
    }
  }
  EXPECT_EQ(reads_before_ttl, 1) << "a sweep read the states while none could have expired";
  EXPECT_EQ(states.inner.states().count(quiet), 0u) << "the quiet box outlived its TTL";
  EXPECT_EQ(states.inner.states().count(busy), 1u);
  EXPECT_EQ(core.counters().expired, 1u);
  // One read found the quiet box expired; the busy one is young again, so the
  // sweeps after it read nothing.
  EXPECT_EQ(states.reads, 2);
}

// The bound also covers states a task finds stored when it starts (a
// restart or a restore): an old quiet box there still expires once its TTL
// has passed. And a sweep owed from metadata without a partition clock (an
// older format, or none) erases nothing: its horizon used to be computed
// from the unset clock, which wrapped around and made every quiet state
// look expired.
TEST(TaskCore, StatesFoundAtStartExpireOnTimeAndASweepWithoutAClockErasesNothing) {
  operators::ReferenceData ref;
  operators::RiskEngine engine(&Profile(), &ref);
  const TaskOptions options = TaskOptions::From(WorkerConfig{});
  const int64_t kDay = 24 * 3600 * 1000LL;
  const std::string quiet = "CSQU3054383", busy = "MSCU1234566";
  auto scan = [&](const std::string& box, int day) {
    v1::ScanResult r = NeutronAlarm(box, kStart + day * kDay);
    r.set_scan_id("RPM-1-" + std::to_string(day));
    return r.SerializeAsString();
  };
  TaskOutput out;
  MemoryStates first;
  TaskCore before(options, &engine, &first);
  ASSERT_TRUE(before.Start("").ok());
  ASSERT_TRUE(before.Process({.input = 1, .key = quiet, .value = scan(quiet, 0), .timestamp_ms = kStart}, kNow, &out).ok());
  for (int day = 1; day <= 5; ++day) {
    ASSERT_TRUE(before.Process({.input = 1, .key = busy, .value = scan(busy, day), .timestamp_ms = kStart + day * kDay},
                               kNow, &out)
                    .ok());
  }
  ASSERT_EQ(first.states().count(quiet), 1u);

  // A restart on the same states: the quiet box is known only from the listing.
  CountingStates again;
  again.inner.states() = first.states();
  TaskCore after(options, &engine, &again);
  ASSERT_TRUE(after.Start(before.EncodeMeta()).ok());
  for (int day = 6; day <= 40; ++day) {
    ASSERT_TRUE(after.Process({.input = 1, .key = busy, .value = scan(busy, day), .timestamp_ms = kStart + day * kDay},
                              kNow, &out)
                    .ok());
    const int64_t horizon = after.partition_clock_ms() - options.allowed_lateness_ms;
    if (horizon <= kStart + options.state_ttl_ms) {
      EXPECT_EQ(again.inner.states().count(quiet), 1u) << "expired before its TTL, day " << day;
    } else if (horizon > kStart + options.state_ttl_ms + options.expiry_sweep_interval_ms) {
      EXPECT_EQ(again.inner.states().count(quiet), 0u) << "not expired by the first sweep after its TTL, day " << day;
    }
  }
  EXPECT_EQ(again.inner.states().count(quiet), 0u) << "the quiet box found at start outlived its TTL";
  EXPECT_EQ(again.inner.states().count(busy), 1u);
  EXPECT_EQ(again.reads, 2) << "Start's listing, then the one sweep that could expire something";

  // Metadata without a clock owes a sweep; the gate's first opening runs it.
  MemoryStates legacy;
  legacy.states() = first.states();
  TaskCore old(options, &engine, &legacy);
  ASSERT_TRUE(old.Start("1794960000000\n0\n" + quiet).ok());
  ASSERT_EQ(old.partition_clock_ms(), TaskCore::kUnset);
  ASSERT_TRUE(old.SetGate(kStart + 6 * kDay, kNow, &out).ok());
  EXPECT_EQ(legacy.states().size(), first.states().size()) << "a sweep without a partition clock erased states";
  EXPECT_EQ(old.counters().expired, 0u);
}

TEST(TaskCore, AnAlertTheGateHeldCountsItsLatencyFromWhenItsContainerWasFirstHeld) {
  OneTask task;
  TaskCore& core = task.core;
  const TaskOptions& options = task.options;
  TaskOutput out;
  ASSERT_TRUE(core.SetGate(kStart, kNow, &out).ok());  // the other tasks' horizons are behind
  const std::string box = "CSQU3054383";
  v1::ScanResult scan = NeutronAlarm(box, kStart);
  const std::string value = scan.SerializeAsString();
  ASSERT_TRUE(core.Process({.input = 1, .key = box, .value = value, .timestamp_ms = kStart}, kNow + 1000, &out).ok());
  EXPECT_EQ(core.gated(), 0u) << "not yet past its lateness: held back, not by the gate";
  // Its own fixes take it past the lateness: from the first, the gate holds it.
  int64_t ingest = kNow + 2000;
  for (const auto& r : Fixes(box, kStart + options.allowed_lateness_ms + kMin, 3, kMin)) {
    ASSERT_TRUE(
        core.Process({.input = 2, .key = r.key, .value = r.value, .timestamp_ms = r.timestamp_ms}, ingest, &out).ok());
    EXPECT_TRUE(out.alerts.empty());
    ASSERT_EQ(core.gated(), 1u);
    ingest += 1000;
  }
  ASSERT_TRUE(core.SetGate(operators::kEndOfTime, kNow + 9000, &out).ok());
  ASSERT_FALSE(out.alerts.empty()) << "the gate released nothing";
  ASSERT_EQ(out.alert_ingest_ms.size(), out.alerts.size());
  for (int64_t t : out.alert_ingest_ms) EXPECT_EQ(t, kNow + 2000);
  EXPECT_EQ(core.gated(), 0u);
  // Another box, never held: its alert counts from the record that released it.
  const std::string other = "MSCU1234566";
  scan.set_container_number(other);
  scan.set_scanned_at_ms(kStart + options.allowed_lateness_ms + 4 * kMin);
  const std::string second = scan.SerializeAsString();
  ASSERT_TRUE(core.Process({.input = 1, .key = other, .value = second, .timestamp_ms = scan.scanned_at_ms()},
                           kNow + 10000, &out)
                  .ok());
  std::vector<int64_t> seen;
  for (const auto& r : Fixes(other, scan.scanned_at_ms() + kMin, 40, kMin)) {
    ASSERT_TRUE(
        core.Process({.input = 2, .key = r.key, .value = r.value, .timestamp_ms = r.timestamp_ms}, kNow + 11000, &out)
            .ok());
    ASSERT_EQ(out.alert_ingest_ms.size(), out.alerts.size());
    seen.insert(seen.end(), out.alert_ingest_ms.begin(), out.alert_ingest_ms.end());
  }
  ASSERT_FALSE(seen.empty()) << "the second box raised nothing";
  for (int64_t t : seen) EXPECT_EQ(t, kNow + 11000);
}

// ------------------------------------------------------------ feedback as of event time

using Canonicals = std::map<std::string, std::string>;  // alert id -> canonical bytes

// The partitions' tasks as a worker runs them: each processes its records in
// random runs, its feedback reaches the shared reference data only at its
// commits (as listings are read back from the reference topic), and its
// horizon is published with them. With `gated`, every task's gate is the
// lowest published horizon + L + 1, as Worker::UpdateGate sets it. With
// `restarts`, a task is now and then restarted after a commit from what it
// stored (its metadata and serialised states), as a worker restarts.
Canonicals RunOnline(const std::map<int32_t, std::vector<InputRecord>>& partitions, const TaskOptions& options,
                     uint32_t seed, bool gated, bool restarts = false) {
  operators::ReferenceData ref;
  const operators::RiskEngine engine(&Profile(), &ref);
  struct Task {
    std::vector<InputRecord> merged;
    size_t next = 0;
    MemoryStates states;
    std::unique_ptr<TaskCore> core;
    std::vector<operators::RiskEngine::ReferenceUpdate> unpublished;
    int64_t published = TaskCore::kUnset;
  };
  std::vector<std::unique_ptr<Task>> tasks;
  for (const auto& [p, records] : partitions) {
    auto t = std::make_unique<Task>();
    InputMerge merge(kNow, options.max_future_ms);
    for (const auto& r : records) merge.Add(r);
    while (auto r = merge.Next()) t->merged.push_back(*r);
    t->core = std::make_unique<TaskCore>(options, &engine, &t->states);
    EXPECT_TRUE(t->core->Start("").ok());
    tasks.push_back(std::move(t));
  }
  Canonicals got;
  TaskOutput out;
  auto take = [&](Task& t) {
    for (const auto& a : out.alerts) got[a.alert_id()] = Canonical(a);
    t.unpublished.insert(t.unpublished.end(), out.feedback.begin(), out.feedback.end());
  };
  auto regate = [&] {
    if (!gated) return;
    int64_t low = operators::kEndOfTime;
    for (const auto& t : tasks) low = std::min(low, t->published);
    const int64_t gate = low == TaskCore::kUnset ? TaskCore::kUnset : low + options.allowed_lateness_ms + 1;
    for (auto& t : tasks) {
      EXPECT_TRUE(t->core->SetGate(gate, kNow, &out).ok());
      take(*t);
    }
  };
  auto commit = [&](Task& t) {
    for (const auto& u : t.unpublished) EXPECT_TRUE(operators::ApplyReferenceEntry(&ref, u.key, u.value).ok());
    t.unpublished.clear();
    t.published = t.core->feedback_horizon_ms();
  };
  regate();
  std::mt19937 rng(seed);
  int restarted = 0;
  int idle_rounds = 0;  // picks in a row that processed nothing: a stuck gate
  for (;;) {
    std::vector<Task*> open;
    for (auto& t : tasks) {
      if (t->next < t->merged.size()) open.push_back(t.get());
    }
    if (open.empty()) break;
    if (++idle_rounds > 10000) {
      std::string why;
      for (const auto& x : tasks) {
        why += "\n  horizon " + std::to_string(x->core->feedback_horizon_ms()) + " published " +
               std::to_string(x->published) + " P " + std::to_string(x->core->partition_clock_ms()) + " gated " +
               std::to_string(x->core->gated()) + " at " + std::to_string(x->next) + "/" +
               std::to_string(x->merged.size());
      }
      ADD_FAILURE() << "every open task is held by the gate:" << why;
      break;
    }
    Task& t = *open[rng() % open.size()];
    if (t.core->gated() == 0) idle_rounds = 0;
    for (int n = 1 + static_cast<int>(rng() % 400); n > 0 && t.next < t.merged.size(); --n) {
      EXPECT_TRUE(t.core->Process(t.merged[t.next++], kNow, &out).ok());
      take(t);
    }
    // Commits at random points. A task at the end of its input is caught up:
    // its horizon moves to the clock, and it commits (a worker goes on
    // committing, so its horizon is never left behind).
    if (t.next == t.merged.size()) t.core->IdleHorizon(kNow);
    if (rng() % 2 == 0 || t.next == t.merged.size()) {
      commit(t);
      if (restarts && rng() % 4 == 0) {
        const std::string meta = t.core->EncodeMeta();
        MemoryStates stored;
        for (const auto& [key, st] : t.states.states()) {
          v1::ContainerState copy;
          EXPECT_TRUE(copy.ParseFromString(st.SerializeAsString()));
          stored.Put(key, std::move(copy));
        }
        t.states = std::move(stored);
        t.core = std::make_unique<TaskCore>(options, &engine, &t.states);
        EXPECT_TRUE(t.core->Start(meta).ok());
        ++restarted;
      }
      regate();
    }
  }
  // Every task caught up and idle: its horizon moves to the clock.
  for (auto& t : tasks) {
    t->core->IdleHorizon(kNow);
    commit(*t);
  }
  regate();
  if (restarts) {
    EXPECT_GT(restarted, 10) << "the run must restart its tasks";
  }
  return got;
}

// Traffic whose feedback recurs across partitions: outcomes on 80 % of the
// smuggling boxes, fronts reused, trips over 20 days.
sim::TrafficOptions FeedbackTraffic(uint32_t seed, bool field) {
  sim::TrafficOptions o;
  o.seed = seed;
  o.containers = 1500;
  o.start_ms = kStart;
  o.outcome_rate = 0.8;
  o.reused_front_rate = 0.5;
  o.spread_ms = 20LL * 24 * 3600 * 1000;  // trips over 20 days: later manifests meet earlier seizures
  o.field = field;
  return o;
}

// The traffic's input records on 4 partitions, and the offline run's alerts
// (the run that knows every listing) with how many carry `indicator`.
struct OfflineRun {
  std::map<int32_t, std::vector<InputRecord>> partitions;  // views into the traffic
  Canonicals want;
  size_t with_indicator = 0;
};
OfflineRun RunOfflineOn(const sim::Traffic& traffic, const TaskOptions& options, std::string_view indicator) {
  OfflineRun run;
  for (const auto& r : traffic.records) run.partitions[JavaPartition(r.key, 4)].push_back(sim::AsInputRecord(r));
  auto offline = OfflineAlerts(run.partitions, Profile(), {}, options, kNow);
  EXPECT_TRUE(offline.ok()) << offline.error().message;
  for (const auto& a : offline.ok() ? *offline : std::vector<v1::Alert>{}) {
    run.want[a.alert_id()] = Canonical(a);
    for (const auto& f : a.indicators()) run.with_indicator += f.id() == indicator;
  }
  return run;
}

// Seizures reported to one task reach other tasks' containers through the
// reference data. Read as of event time behind the gate, the alerts are
// exactly those of the offline run that knows every seizure, whatever the
// tasks' relative speed and commit points; without the gate they are not.
TEST(TaskCore, SeizureFeedbackGivesTheSameAlertsWhateverTheTasksTiming) {
  const sim::Traffic traffic = sim::GenerateTraffic(FeedbackTraffic(11, false), Profile());
  const TaskOptions options = TaskOptions::From(WorkerConfig{});
  const auto [partitions, want, on_seized_parties] = RunOfflineOn(traffic, options, "history.party_seizure");
  ASSERT_GE(on_seized_parties, 10u) << "the input must raise alerts on parties with a recorded seizure";
  bool ungated_differs = false;
  for (uint32_t seed : {1u, 2u, 3u, 4u}) {
    SCOPED_TRACE("timing seed " + std::to_string(seed));
    const Canonicals got = RunOnline(partitions, options, seed, true);
    EXPECT_EQ(got.size(), want.size());
    EXPECT_TRUE(got == want) << "the alerts depend on the tasks' timing";
    ungated_differs = ungated_differs || RunOnline(partitions, options, seed, false) != want;
    if (seed <= 2) {
      const Canonicals resumed = RunOnline(partitions, options, seed, true, /*restarts=*/true);
      EXPECT_TRUE(resumed == want) << "restarted tasks behind the gate changed the alerts";
    }
  }
  EXPECT_TRUE(ungated_differs) << "without the gate the timing should show: the test cannot tell";
  std::printf("%zu alerts, %zu on parties with a recorded seizure\n", want.size(), on_seized_parties);
}

// The field model feeds back across partitions twice: seizures (parties and
// bills) and the under-filled boxes a split consignment is counted from.
// Behind the gate the alerts are the offline run's whatever the timing.
TEST(TaskCore, FieldFeedbackGivesTheSameAlertsWhateverTheTasksTiming) {
  const sim::Traffic traffic = InputsOnly(sim::GenerateTraffic(FeedbackTraffic(12, true), Profile()));
  const TaskOptions options = TaskOptions::From(WorkerConfig{});
  const auto [partitions, want, split] = RunOfflineOn(traffic, options, "manifest.split_consignment");
  ASSERT_GE(split, 5u) << "the input must raise alerts on split consignments";
  for (uint32_t seed : {1u, 2u, 3u}) {
    SCOPED_TRACE("timing seed " + std::to_string(seed));
    const Canonicals got = RunOnline(partitions, options, seed, true);
    EXPECT_EQ(got.size(), want.size());
    EXPECT_TRUE(got == want) << "the alerts depend on the tasks' timing";
  }
  std::printf("%zu alerts, %zu on split consignments\n", want.size(), split);
}

}  // namespace
}  // namespace boxwatch::pipeline
