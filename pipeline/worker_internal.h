#pragma once
// The worker's private parts, shared by the files it is written in, one per
// job (CONVENTIONS.md, "Size of a unit"):
//   worker.cc          lifecycle, clients, readiness and gauges, the control
//                      topics, the feedback gate, recovery and the run loop;
//   worker_restore.cc  assignment, revocation, restore from the changelog;
//   worker_process.cc  the tasks' input buffers, the merge, each record and
//                      what it releases, when a cycle opens and how many
//                      records it may hold;
//   worker_commit.cc   the commit cycle: dirty states, the changelog, the
//                      Kafka transaction, the RocksDB batches.
// Not an API: only those files include it.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <future>
#include <limits>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

#include "pipeline/cache_states.h"
#include "pipeline/expiry_fields.h"
#include "pipeline/state_parts.h"
#include "pipeline/worker.h"
#include "state/write_behind_cache.h"

namespace boxwatch::pipeline {
namespace worker_internal {

inline constexpr const char* kLog = "worker";
inline constexpr const char* kTaskMetaKey = "__task__";  // changelog key of a task's metadata
// Reference-topic key of a task's feedback horizon: the prefix and the partition.
inline constexpr std::string_view kHorizonKeyPrefix = "__horizon__:";
inline constexpr int kInputs = 4;  // manifests, scans, gps, outcomes
// ms the broker holds an empty fetch of a reader that reads a transactional
// topic to its end (the changelog on restore, the control topics at start):
// it passes the last commit marker only with a fetch that finds nothing
// after it (librdkafka's fetch.wait.max.ms, 500 by default, made each read
// to the end half a second longer). The control reader keeps it while it
// follows the topics: 20 empty fetches a second.
inline constexpr int kReadToEndFetchWaitMs = 50;

// A task's container states: the write-behind cache over its RocksDB column
// family, listed from the store (or a restore's summaries) for expiry.
class CachedStates final : public CacheStates {
 public:
  // `before_scan`: called before the store is read whole (the worker's
  // batches on their way land first); may be empty.
  CachedStates(state::PartitionStore* store, size_t max_entries, std::function<Status()> before_scan = {})
      : CacheStates(store, max_entries), before_scan_(std::move(before_scan)) {}
  // The summaries of every stored container, known without a scan (a
  // restore into an empty store saw them all): the next ForEach reads them
  // instead of the store, once.
  void Seed(RestoredSummaries stored) {
    seeded_ = std::move(stored);
    has_seed_ = true;
  }
  Status ForEach(const std::function<void(const std::string&, const Summary&)>& fn) override {
    if (has_seed_) {
      has_seed_ = false;
      for (const auto& s : seeded_) {
        if (!s.deleted && !cache_.IsDirty(s.key)) fn(s.key, s.summary);
      }
      seeded_ = {};
    } else {
      // Stored values, unless a newer one waits in the cache; the movement
      // part's fields read off the wire, as a full parse per stored state is
      // too slow. The last cycles' batches first: a value still on its way
      // would be read stale.
      if (before_scan_) {
        if (Status w = before_scan_(); !w.ok()) return w;
      }
      Status s = store_->ForEach([&](std::string_view key, std::string_view value) {
        if (!IsMovementKey(key) || cache_.IsDirty(key)) return true;
        ExpiryFields f;
        if (ReadExpiryFields(value, &f)) fn(std::string(key), {f.last_event_ms, f.due_ms, f.pending, f.own_progress_ms});
        return true;
      });
      if (!s.ok()) return s;
    }
    cache_.ForEachDirty([&](const std::string& key, const v1::ContainerState* v) {
      if (v != nullptr) fn(key, {v->last_event_ms(), v->due_ms(), !v->pending_items().empty(), OwnProgress(*v)});
    });
    return Status::Ok();
  }

 private:
  std::function<Status()> before_scan_;
  bool has_seed_ = false;
  RestoredSummaries seeded_;  // one per key, the last write
};

}  // namespace worker_internal

// The RocksDB batches of a committed cycle, written on a thread of their own
// while the worker goes on processing (exactly-once: the changelog already
// holds them, and a crash before they land restores them from there). What
// the batches hold stays in the write-behind cache until the next cycle
// (TakeDirty keeps the entries it takes), which waits for them first, so a
// read of the store never misses a write still on its way; a scan of the
// store (expiry), a revocation and a recovery wait for them too.
class Worker::AsyncStoreCommit {
 public:
  struct Item {
    state::PartitionStore* store;
    std::vector<state::PartitionStore::Write> writes;
    int64_t changelog_next_offset;
    std::string meta;
  };
  ~AsyncStoreCommit() { (void)Wait(); }
  void Start(std::vector<Item> items) {
    items_ = std::move(items);
    result_ = Status::Ok();
    auto write = [this] {
      state::DisableStoreCountersOnThisThread();
      for (Item& i : items_) {
        if (Status s = i.store->Commit(i.writes, i.changelog_next_offset, i.meta); !s.ok()) return s;
      }
      return Status::Ok();
    };
    try {
      done_ = std::async(std::launch::async, write);
    } catch (const std::system_error&) {  // no thread to be had: written here
      result_ = write();
    }
  }
  // Waits for the batches started last; their status, again on every call
  // until Start or Forget.
  Status Wait() {
    if (done_.valid()) result_ = done_.get();
    return result_;
  }
  // After Wait failed: the batches, to be written again.
  std::vector<Item>& items() { return items_; }
  // Batches started and not yet forgotten.
  bool started() const { return done_.valid() || !items_.empty(); }
  void Forget() {
    (void)Wait();
    items_.clear();
    result_ = Status::Ok();
  }

 private:
  std::vector<Item> items_;
  std::future<Status> done_;
  Status result_ = Status::Ok();
};

namespace worker_internal {
// The merge time of a record dead-lettered as soon as it is at the front of
// its input (Buffered::merge_ms).
inline constexpr int64_t kMergeFirst = std::numeric_limits<int64_t>::min();
}  // namespace worker_internal

// A record waiting for the merge, with the time it is merged by.
struct Worker::Buffered {
  Message message;
  // The record's Kafka timestamp, or kMergeFirst for a record whose
  // timestamp lies beyond the clock + max_future_ms: such a record is
  // dead-lettered as soon as it reaches the front of its partition, so it
  // never holds the other inputs back (a year-2200 timestamp would make the
  // merge wait until everything else is read, and then all of it late).
  int64_t merge_ms;
  bool future_timestamp;
  int64_t now_ms;  // wall clock of the poll pass that read it
  // Its content-type header (empty: none) and Kafka timestamp, read when it
  // was routed, while librdkafka's record was still in the CPU's caches; the
  // header's value lives in the record's parsed headers.
  std::string_view content_type;
  int64_t timestamp_ms;
};

struct Worker::Task {
  int32_t partition = 0;
  state::PartitionStore* store = nullptr;
  std::unique_ptr<worker_internal::CachedStates> states;
  std::unique_ptr<TaskCore> core;  // what is decided per record (pipeline/task_core.h)
  // Each input partition's own queue in the consumer (PartitionQueue),
  // and the records taken from it for the merge.
  std::unique_ptr<PartitionQueue> queues[worker_internal::kInputs];
  std::deque<Buffered> buffers[worker_internal::kInputs];
  int64_t next_offset[worker_internal::kInputs] = {-1, -1, -1, -1};  // last processed + 1
  int64_t fetched[worker_internal::kInputs] = {0, 0, 0, 0};  // next offset the consumer will deliver per input
  // Set when the merge stopped waiting for an input whose unread records did
  // not come within idle_wait_ms; cleared when a record of it arrives.
  bool gave_up[worker_internal::kInputs] = {false, false, false, false};
  int64_t routed[worker_internal::kInputs] = {0, 0, 0, 0};  // records taken since the probe last counted them
  int64_t blocked_since_ms = 0;  // wall time since the merge waits for a partition
  int64_t idle_since_ms = 0;     // wall time since the task is caught up
  int64_t caught_up_since_ms = 0;  // the same, for the feedback horizon
  int64_t published_horizon = TaskCore::kUnset;  // the last horizon on the reference topic
  TaskCounters reported;         // the core's counters already added to stats_
};

struct Worker::Cycle {
  std::map<int32_t, std::vector<state::PartitionStore::Write>> writes;
  std::map<int32_t, std::string> metas;  // what the changelog gets is what RocksDB gets
  std::vector<TopicPartitionOffset> offsets;
  std::map<int32_t, int64_t> horizons;  // published in this cycle
  std::vector<Emitted> emitted;
  int64_t records = 0;
  struct PartWrites {
    uint64_t records = 0, bytes = 0;
  };
  PartWrites by_part[4];  // movement, declaration, evaluation, window chunks
  std::chrono::steady_clock::time_point started;
  std::string changelog_topic, reference_topic;
  // Set by whoever commits it on Kafka (the committing thread, or the worker's).
  double produce_seconds = -1;
  double offsets_seconds = -1;
  double transaction_seconds = -1;
  std::chrono::steady_clock::time_point committed;
  int64_t committed_ms = 0;
};

struct Worker::CommitInFlight {
  std::unique_ptr<Cycle> cycle;
  std::future<Status> done;
};

}  // namespace boxwatch::pipeline
