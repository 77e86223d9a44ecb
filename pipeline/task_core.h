#pragma once
// TaskCore: everything a worker task decides about its records, without
// Kafka or RocksDB. The worker feeds it the task's records in merged order
// and writes what comes out (alerts, dead letters, feedback) into its
// transaction; tests and the harness's expected alerts run the same code
// over an in-memory state map.
//
// Event time is per container (DESIGN.md "Processing semantics";
// docs/worker.md "Event time"):
//  - A container's progress is the maximum over its manifests, scans and
//    fixes of min(event time, wall clock, P + L), where L is
//    allowed_lateness_ms and P the partition clock below. An event is late
//    when it is older than its own container's progress minus L; no other
//    container's clock enters. Outcomes are never late.
//  - Items (manifest versions, scans, fixes) are evaluated in event-time
//    order once they are older than the container's release bound:
//    progress - L, moved as each of its events is processed, so alerts are
//    emitted inside the record that released them, whatever the commit size.
//  - P, the partition clock, is a low quantile of the records' timestamps:
//    records form blocks of 64 (a block also ends at the first record 60 s
//    of record time past its first); at a block's end P rises to its
//    ceil(n/8)-th smallest timestamp (each capped at the wall clock), so
//    up to 7 in 8 fast clocks cannot move it. P releases containers that
//    went quiet: a due index holds every container with pending items at
//    earliest pending + L + 1, and when P reaches an entry the container is
//    released to min(P - L, its latest event + 1); P also drives expiry.
//  - Every decision reads only the record, its container's state, P and the
//    profile and reference data in force; P and its open block are part of
//    the task metadata committed with each transaction. So the same merged
//    sequence gives the same outputs however it is cut into transactions,
//    and a task resumed after a crash continues exactly.
//  - Feedback is reference data as of event time (DESIGN.md "Reference data
//    is an event-time input too"). The task's feedback horizon H is
//    max(P, the first record's time, the wall clock when it was last caught
//    up and idle); a seizure
//    it processes is listed from max(inspection, H + 1) + L, so every
//    listing it emits later is after H + L, and the worker publishes H with
//    each commit. An evaluation at t reads the listings seized before t;
//    the worker sets a gate, the lowest H of all tasks + L + 1, and nothing
//    at or after the gate is evaluated: containers held by it wait and are
//    released when the gate moves (SetGate). A task evaluates up to its own
//    P, so it waits only for tasks more than L behind it. Offline runs,
//    which know every listing, leave the gate open.
// Not thread-safe: one TaskCore per task, used from the worker's thread.

#include <algorithm>
#include <compare>
#include <cstdint>
#include <deque>
#include <functional>
#include <limits>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "absl/container/btree_set.h"
#include "absl/container/flat_hash_map.h"
#include "boxwatch/v1/alert.pb.h"
#include "boxwatch/v1/state.pb.h"
#include "core/result.h"
#include "operators/decode.h"
#include "operators/engine.h"

namespace boxwatch::pipeline {

struct WorkerConfig;

// What a container's own bound (its progress - L) is counted from: its
// progress, or its tracker's clock when that is set and behind.
inline int64_t OwnProgress(const v1::ContainerState& s) {
  return s.gps().progress_ms() > 0 ? std::min(s.progress_ms(), s.gps().progress_ms()) : s.progress_ms();
}

// The container states a task works on: the worker's write-behind cache over
// RocksDB, or a map in tests. Semantics as state::WriteBehindCache.
class ContainerStates {
 public:
  virtual ~ContainerStates() = default;
  // Null when the container has no state.
  [[nodiscard]] virtual Result<v1::ContainerState*> Get(const std::string& key) = 0;
  // Hints that Get(key) follows soon, in steps a few records apart (as
  // state::WriteBehindCache's): Prefetch asks for where the key is listed,
  // PrefetchEntry (once that has arrived) for the entry, and Peek returns
  // the cached state, or nullptr, without loading, counting or reordering
  // anything. A store need not implement them.
  virtual void Prefetch(std::string_view /*key*/) {}
  virtual void PrefetchEntry(std::string_view /*key*/) {}
  virtual const v1::ContainerState* Peek(std::string_view /*key*/) { return nullptr; }
  virtual v1::ContainerState* Put(const std::string& key, v1::ContainerState state) = 0;
  // What a change touched (the bits of pipeline/state_parts.h's parts), so
  // that the store may rewrite just those parts: kMovement its clock,
  // pending items and GPS window (a fix joined, a release; trims of scans
  // and manifest versions the store detects itself); kDeclaration its
  // manifests, scans and outcomes; kEvaluation its fired indicators or alert
  // bookkeeping (an evaluation that changed them: RiskEngine::Release).
  static constexpr uint32_t kMovement = 1, kDeclaration = 2, kEvaluation = 4, kAll = 7;
  // The state of `key` changed, in `parts`.
  [[nodiscard]] virtual Status MarkDirty(const std::string& key, uint32_t parts) = 0;
  [[nodiscard]] virtual Status Erase(const std::string& key) = 0;
  struct Summary {
    int64_t last_event_ms = 0;
    int64_t due_ms = 0;    // ContainerState.due_ms
    bool pending = false;  // has unevaluated items
    int64_t own_progress_ms = 0;  // what its own bound is counted from (OwnBound)
  };
  // Calls `fn` for every container with state, with its latest values
  // (flushed or not), in any order.
  [[nodiscard]] virtual Status ForEach(const std::function<void(const std::string& key, const Summary&)>& fn) = 0;
};

// States in a map, for offline runs (tests, expected alerts, replays).
class MemoryStates final : public ContainerStates {
 public:
  Result<v1::ContainerState*> Get(const std::string& key) override {
    auto it = states_.find(key);
    return it == states_.end() ? nullptr : &it->second;
  }
  v1::ContainerState* Put(const std::string& key, v1::ContainerState state) override {
    return &(states_[key] = std::move(state));
  }
  Status MarkDirty(const std::string&, uint32_t) override { return Status::Ok(); }
  Status Erase(const std::string& key) override {
    auto it = states_.find(key);
    if (it == states_.end()) return Status::Ok();
    if (on_erase_) on_erase_(it->second);
    states_.erase(it);
    return Status::Ok();
  }
  Status ForEach(const std::function<void(const std::string&, const Summary&)>& fn) override {
    for (const auto& [key, s] : states_) {
      fn(key, {s.last_event_ms(), s.due_ms(), !s.pending_items().empty(), OwnProgress(s)});
    }
    return Status::Ok();
  }
  std::map<std::string, v1::ContainerState>& states() { return states_; }
  // Called with a state just before it is erased (expiry), e.g. to keep a summary.
  void OnErase(std::function<void(const v1::ContainerState&)> fn) { on_erase_ = std::move(fn); }

 private:
  std::map<std::string, v1::ContainerState> states_;
  std::function<void(const v1::ContainerState&)> on_erase_;
};

struct TaskOptions {
  int64_t allowed_lateness_ms = 300000;  // L, ms
  int64_t max_future_ms = 600000;        // ms a payload's event time may lead the clock
  int64_t state_ttl_ms = 30LL * 24 * 3600 * 1000;  // ms of event time after the last event
  int64_t expiry_sweep_interval_ms = 24LL * 3600 * 1000;  // ms of partition clock between expiry sweeps
  int64_t max_value_bytes = 900 << 10;
  int64_t state_budget_bytes = 0;  // declarations may not grow a state past this; 0: no check
  int64_t state_limit_bytes = 0;   // for messages: the configured max_state_bytes
  int64_t gps_reserve_bytes = 0;   // for messages: what the budget keeps for fixes
  // Who writes this task's state: "group <group_id> prefix <topic_prefix>",
  // kept in the metadata. Start refuses metadata of another owner unless
  // adopt_foreign_state.
  std::string owner;
  bool adopt_foreign_state = false;
  static TaskOptions From(const WorkerConfig& config);
};

// One input record as the merge hands it over.
struct InputRecord {
  int input = 0;  // index into kInputTopicRoles: 0 manifests, 1 scans, 2 gps, 3 outcomes
  std::string_view key;
  std::string_view value;
  std::string_view content_type;  // the content-type header, "" when absent
  int64_t timestamp_ms = 0;       // Kafka timestamp
  bool future_timestamp = false;  // timestamp beyond the clock + max_future_ms when buffered
};

struct TaskOutput {
  std::optional<operators::Rejection> rejected;  // the record goes to the dead letters
  std::vector<v1::Alert> alerts;                 // in emission order
  // Per alert: where its ingest -> alert latency starts. The `now_ms` of the
  // call that released it, or, for a container the gate held, the `now_ms`
  // of the call that first held it (-1: held since the task started).
  std::vector<int64_t> alert_ingest_ms;
  std::vector<operators::RiskEngine::ReferenceUpdate> feedback;
  int64_t feedback_timestamp_ms = 0;
  void Clear() {
    rejected.reset();
    alerts.clear();
    alert_ingest_ms.clear();
    feedback.clear();
  }
};

struct TaskCounters {
  uint64_t processed = 0;         // records joined (duplicates included)
  uint64_t late = 0;
  uint64_t expired = 0;           // states deleted by expiry
  uint64_t feedback = 0;          // reference updates produced
  uint64_t clock_capped = 0;      // events whose progress was capped (ahead of the wall clock or P + L)
  uint64_t quiet_releases = 0;    // containers released by the partition clock
  uint64_t capacity_releases = 0; // containers released because of too many unevaluated items
};

// The worker's merge over inputs read in full (offline runs: expected
// alerts, tests, replays): the record with the lowest timestamp at the heads
// of the four inputs, ties in input order, and a record more than
// max_future_ms ahead of `now_ms` first (it is dead-lettered).
class InputMerge {
 public:
  InputMerge(int64_t now_ms, int64_t max_future_ms) : now_ms_(now_ms), max_future_ms_(max_future_ms) {}
  // Appends a record to its input; each input in offset order.
  void Add(InputRecord record);
  // The next record in merged order; nullopt when every input is empty.
  std::optional<InputRecord> Next();

 private:
  int64_t now_ms_;
  int64_t max_future_ms_;
  std::deque<InputRecord> inputs_[4];
};

// Every partition's records (each input in offset order) through its own
// TaskCore with `options`, the wall clock at `now_ms`, as the worker merges
// them, for runs over inputs read in full (tests' expected alerts). When the
// records feed seizures back, a first pass collects every listing and a
// second evaluates with all of them, read as of event time: what the
// worker's gate guarantees online. `reference`: entries published before.
// `rejected`, when given, counts the records dead-lettered, by reason name.
Result<std::vector<v1::Alert>> OfflineAlerts(const std::map<int32_t, std::vector<InputRecord>>& partitions,
                                             const operators::Profile& profile,
                                             const operators::ReferenceData& reference, const TaskOptions& options,
                                             int64_t now_ms, std::map<std::string, int64_t>* rejected = nullptr);

class TaskCore {
 public:
  static constexpr int64_t kUnset = std::numeric_limits<int64_t>::min();
  static constexpr int kBlockRecords = 64;
  static constexpr int64_t kBlockSpanMs = 60000;

  TaskCore(const TaskOptions& options, const operators::RiskEngine* engine, ContainerStates* states);

  // Restores P and its open block from task metadata ("" or an older
  // format: a fresh clock), then rebuilds the due index from the states.
  // Metadata written by another owner: Errc::kInvalidArgument, the message
  // naming both owners (ForeignOwner() then says whose), unless adopted.
  [[nodiscard]] Status Start(std::string_view meta);
  // The owner named by the metadata Start refused; empty otherwise.
  const std::string& ForeignOwner() const { return foreign_owner_; }
  std::string EncodeMeta() const;

  // Processes one record; `now_ms` is the wall clock of the poll pass that
  // read it. `out` is cleared first.
  [[nodiscard]] Status Process(const InputRecord& record, int64_t now_ms, TaskOutput* out);
  // Fetching ahead: what a container's join or release reads first lies at
  // the end of a chain of pointers (its slot in the cache, the entry, the
  // GPS track and pending items, the window's buffers), each a wait for
  // memory once the working set outgrows the CPU caches. A caller that knows
  // the next keys asks for one link of each at a time: step 0 for the key
  // kFetchSteps places ahead, up to step kFetchSteps - 1 for the next one,
  // so that every link has arrived by the time the next step (or the work)
  // reads it. Steps 1 to 3 look the key up again (a hash and a probe of
  // what step 0 fetched). Only hints: nothing is loaded, counted or changed.
  static constexpr int kFetchSteps = 4;
  // Walk's, down to PrefetchState's step 3 (what an evaluation reads).
  static constexpr int kWalkFetchSteps = 6;
  void FetchAhead(std::string_view key, int step) const;
  // The task is caught up and has been idle long enough: when that releases
  // some container (HasDueBy(now_ms)), P moves to the wall clock and the
  // quiet containers are released; else nothing changes. `out` gets their
  // alerts.
  [[nodiscard]] Status Idle(int64_t now_ms, TaskOutput* out);
  // Whether some container would be released were the partition clock at `t`.
  bool HasDueBy(int64_t t) {
    Settle();
    return !due_.empty() && due_.begin()->first <= t;
  }

  int64_t partition_clock_ms() const { return p_ms_; }
  // H above; kUnset before the first record.
  int64_t feedback_horizon_ms() const { return std::max(p_ms_, idle_horizon_ms_); }
  // The task is caught up and idle at `now_ms`: H may move to it.
  void IdleHorizon(int64_t now_ms) { idle_horizon_ms_ = std::max(idle_horizon_ms_, now_ms); }
  // Evaluates nothing at or after `gate_ms` from now on; when the gate
  // moves up, the containers it held are released as far as it allows
  // (their alerts into `out`, which is cleared first).
  [[nodiscard]] Status SetGate(int64_t gate_ms, int64_t now_ms, TaskOutput* out);
  // Containers with items the gate holds back.
  size_t gated() const { return gated_of_.size(); }
  // Containers with state: counted by Start, kept by joins and expiry.
  size_t containers() const { return containers_; }
  const TaskCounters& counters() const { return counters_; }

  // A container's key in the due and gate indexes: its bytes (at most
  // kMaxIndexKey: container numbers have 11) zero-padded into two
  // big-endian words, so that comparing the words orders keys as their
  // bytes do (keys hold no NUL) and hashing one costs two words. A string
  // key made each B-tree step a memcmp and each look-up a string hash:
  // about 8 % of a task's instructions at 24,000 containers.
  static constexpr size_t kMaxIndexKey = 16;
  struct IndexKey {
    uint64_t hi = 0, lo = 0;
    static IndexKey Of(std::string_view key);  // key.size() <= kMaxIndexKey
    std::string str() const;
    // The key's bytes in `buf`, without a string.
    std::string_view View(char (&buf)[kMaxIndexKey]) const;
    friend auto operator<=>(const IndexKey&, const IndexKey&) = default;
    template <typename H>
    friend H AbslHashValue(H h, const IndexKey& k) {
      return H::combine(std::move(h), k.hi, k.lo);
    }
  };
 private:
  int64_t OwnBound(const v1::ContainerState& s) const;
  Status Join(const InputRecord& record, int64_t now_ms, TaskOutput* out);
  // Adds a record's timestamp to the open block; true when P rose.
  bool Tick(int64_t timestamp_ms, int64_t now_ms);
  Status Walk(int64_t now_ms, TaskOutput* out);
  Status Sweep();
  bool SweepDue() const;
  Status ReleaseGated(int64_t now_ms, TaskOutput* out);
  // Releases `s` to `bound`, sets its due time and the index entry.
  // Returns whether the evaluation changed what E keeps (RiskEngine::Release).
  bool Release(const std::string& key, v1::ContainerState& s, int64_t bound, int64_t now_ms, TaskOutput* out);
  // Marks a released container dirty: its movement part, and its
  // evaluation part when the release changed it.
  Status MarkReleased(const std::string& key, bool evaluation_changed);
  void SetDue(const std::string& key, int64_t due_ms);
  void SetDue(IndexKey key, int64_t due_ms);
  // kEndOfTime: not held; `now_ms` is kept while it stays held.
  void SetGated(const std::string& key, int64_t earliest_ms, int64_t now_ms);
  struct Held {
    int64_t earliest_ms;
    int64_t since_ms;  // now_ms when it was first held; -1: held since Start
    // Its released_before_ms after its latest release (kUnset: not known),
    // and the gate then: what Walk needs to tell that visiting it would
    // change nothing.
    int64_t released_before_ms = kUnset;
    int64_t gate_ms = kUnset;
  };
  using HeldEntry = absl::flat_hash_map<IndexKey, Held>::iterator;
  // The same, given the key's entry in gated_of_ (end(): none), and the
  // container's released_before_ms after the release that calls this.
  void SetGated(IndexKey key, HeldEntry it, int64_t earliest_ms, int64_t now_ms, int64_t released_before_ms);
  // Whether releasing the due container `key` now would change nothing:
  // the gate holds it, everything it holds is at or after the gate, it was
  // released up to the gate already, and the gate has not moved down since
  // (a lower gate than at its last release may trim what that one kept).
  // Then, for a quiet release's bound
  // (at most its latest event + 1, after its earliest pending item): the
  // engine's bound stays, nothing is evaluated, the windows were trimmed as
  // far as they will be, and its earliest item, gate entry and due time
  // stay as they are. Walk then drops it from the due index without
  // reading its state; ReleaseGated applies the partition clock when the
  // gate moves.
  bool WalkWouldChangeNothing(IndexKey key) const;

  TaskOptions options_;
  const operators::RiskEngine* engine_;
  ContainerStates* states_;
  int64_t p_ms_ = kUnset;
  int64_t last_sweep_ms_ = kUnset;  // P at the last expiry sweep
  std::vector<int64_t> block_;      // capped timestamps of the open block, in arrival order
  // The due index, lazy: due_of_ holds each container's due time and the
  // time of its entry in due_, which is never later. A due time that moves
  // later (every release of a container still receiving events) changes
  // due_of_ only; Settle moves an entry when it reaches the front, so the
  // front, and the order in which containers come due, are as if every
  // entry were exact.
  struct DueOf {
    int64_t due_ms;
    int64_t indexed_ms;
  };
  // absl's B-tree and open-addressing map, not std::set and
  // std::unordered_map: one node per entry made each look-up a chain of
  // cache misses once the containers outgrew the CPU caches (3.6 % of a
  // 72,000-container drain for this index). Neither is iterated in hash
  // order, so nothing depends on absl's per-process hash seed; a B-tree
  // insert or erase invalidates its iterators (Settle copies the key first).
  void Settle();
  absl::btree_set<std::pair<int64_t, IndexKey>> due_;
  absl::flat_hash_map<IndexKey, DueOf> due_of_;
  int64_t idle_horizon_ms_ = kUnset;  // the horizon's floor: the first record's time, then idle spells
  bool examine_gated_ = false;        // Start listed pending containers: the next SetGate looks at them
  bool sweep_deferred_ = false;       // a sweep skipped held containers: sweep again once they are released
  int64_t gate_ms_ = operators::kEndOfTime;
  // Containers the gate holds, by their earliest unevaluated item.
  absl::btree_set<std::pair<int64_t, IndexKey>> gated_;
  absl::flat_hash_map<IndexKey, Held> gated_of_;
  TaskCounters counters_;
  // At most the last event time of every stored state (kEndOfTime: none
  // stored): a sweep reads the states only once this is older than the
  // TTL, so a replay of days or a partition of millions of young states is
  // not read whole once per sweep interval. Lowered by every join, set by
  // Start and by each sweep that reads.
  int64_t oldest_event_ms_ = operators::kEndOfTime;
  size_t containers_ = 0;
  std::string foreign_owner_;
  // The record being joined, decoded; kept from record to record so that a
  // GPS event is decoded into the last one's message (its strings' buffers).
  std::variant<v1::Manifest, v1::ScanResult, v1::GpsEvent, v1::InspectionOutcome> event_;
};

}  // namespace boxwatch::pipeline
