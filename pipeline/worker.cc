#include "pipeline/worker.h"

#include <prometheus/registry.h>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <deque>
#include <future>
#include <limits>
#include <sstream>
#include <system_error>
#include <thread>
#include <unordered_set>

#include "core/log.h"
#include "operators/decode.h"
#include "operators/default_profile.h"
#include "pipeline/expiry_fields.h"
#include "pipeline/kafka_error.h"
#include "pipeline/cache_states.h"
#include "pipeline/state_parts.h"
#include "state/write_behind_cache.h"

namespace boxwatch::pipeline {
namespace {

static_assert(ContainerStates::kMovement == kMovementPart && ContainerStates::kDeclaration == kDeclarationPart &&
                  ContainerStates::kEvaluation == kEvaluationPart && ContainerStates::kAll == ContainerStateCodec::kAllParts,
              "the task's change bits are the state codec's part bits");

using namespace std::chrono_literals;
constexpr const char* kLog = "worker";
constexpr const char* kTaskMetaKey = "__task__";  // changelog key of a task's metadata
// Reference-topic key of a task's feedback horizon: the prefix and the partition.
constexpr std::string_view kHorizonKeyPrefix = "__horizon__:";
constexpr int64_t kMaxHorizonMs = 253402300799999;  // 9999-12-31: a horizon + L never overflows
constexpr int kInputs = 4;                         // manifests, scans, gps, outcomes
// How long refused credentials are retried before the worker ends (exit 4).
constexpr auto kRefusedCredentialsGrace = std::chrono::seconds(120);
// ms the restore reader's consumer waits to fetch again once its queue is full
// (librdkafka's fetch.queue.backoff.ms, 1000 by default).
constexpr int kRestoreFetchQueueBackoffMs = 10;
// The same for an input partition whose queue holds max_buffered_records:
// a small limit must not leave the merge waiting for most of a second.
constexpr int kInputFetchQueueBackoffMs = 20;
// KiB librdkafka fetches ahead per input partition at most (its
// queued.max.messages.kbytes, unless the Kafka properties set it): seconds
// of input at the drain's rate, and 16 of them are 128 MiB.
constexpr int kInputQueueKiB = 8192;
// An input's buffer is refilled from its partition's queue when it holds
// this few records (more than the merge's fetching ahead looks at), with
// up to kTakeBatch: enough to make a take's own cost (a lock and two clock
// reads in librdkafka) small per record, few enough to stay in the caches.
constexpr size_t kRefillAt = 8;
constexpr size_t kTakeBatch = 128;
// ms the broker holds an empty fetch of a reader that reads a transactional
// topic to its end (the changelog on restore, the control topics at start):
// it passes the last commit marker only with a fetch that finds nothing
// after it (librdkafka's fetch.wait.max.ms, 500 by default, made each read
// to the end half a second longer). The control reader keeps it while it
// follows the topics: 20 empty fetches a second.
constexpr int kReadToEndFetchWaitMs = 50;

}  // namespace

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

namespace {

// A task's container states: the write-behind cache over its RocksDB column
// family.
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


}  // namespace

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
constexpr int64_t kMergeFirst = std::numeric_limits<int64_t>::min();

struct Worker::Task {
  int32_t partition = 0;
  state::PartitionStore* store = nullptr;
  std::unique_ptr<CachedStates> states;
  std::unique_ptr<TaskCore> core;  // what is decided per record (pipeline/task_core.h)
  // Each input partition's own queue in the consumer (PartitionQueue),
  // and the records taken from it for the merge.
  std::unique_ptr<PartitionQueue> queues[kInputs];
  std::deque<Buffered> buffers[kInputs];
  int64_t next_offset[kInputs] = {-1, -1, -1, -1};  // last processed + 1
  int64_t fetched[kInputs] = {0, 0, 0, 0};  // next offset the consumer will deliver per input
  // Set when the merge stopped waiting for an input whose unread records did
  // not come within idle_wait_ms; cleared when a record of it arrives.
  bool gave_up[kInputs] = {false, false, false, false};
  int64_t routed[kInputs] = {0, 0, 0, 0};  // records taken since the probe last counted them
  int64_t blocked_since_ms = 0;  // wall time since the merge waits for a partition
  int64_t idle_since_ms = 0;     // wall time since the task is caught up
  int64_t caught_up_since_ms = 0;  // the same, for the feedback horizon
  int64_t published_horizon = TaskCore::kUnset;  // the last horizon on the reference topic
  TaskCounters reported;         // the core's counters already added to stats_
};

Worker::Worker(const WorkerConfig& config) : config_(config), names_(config.topic_prefix) {}

Worker::~Worker() {
  // Closing the consumer revokes its partitions through OnRevoked, which must
  // not commit now: after an error exit the open cycle is the one that
  // failed, and after a clean stop Run has committed already. The consumer
  // is closed while consumer_ still points at it (reset() clears the
  // pointer before the consumer's destructor calls back).
  closing_ = true;
  ResolveCommit();
  if (producer_) {
    // The open cycle failed (or never committed): none of its output may go out.
    if (config_.exactly_once && kafka_txn_open_) {
      producer_->AbortTransaction(5s).PermitUnchecked();
    } else if (!config_.exactly_once && in_transaction_) {
      producer_->Purge();
    }
  }
  in_transaction_ = false;
  kafka_txn_open_ = false;
  deferred_.clear();
  ReleaseQueues();
  if (consumer_) consumer_->Close().PermitUnchecked();
  // The clients call back into the probes (statistics) until they are gone,
  // so they go first.
  tasks_.clear();
  control_.reset();
  consumer_.reset();
  producer_.reset();
  // Last: closing the consumer may still have served an assignment, whose
  // restore retires consumers of its own.
  JoinRetired();
}

Result<std::unique_ptr<Worker>> Worker::Create(const WorkerConfig& config, EventSink sink,
                                               std::shared_ptr<prometheus::Registry> registry) {
  std::unique_ptr<Worker> w(new Worker(config));
  w->sink_ = std::move(sink);
  w->registry_ = registry ? std::move(registry) : std::make_shared<prometheus::Registry>();
  std::array<std::string, kInputs> inputs;
  for (int i = 0; i < kInputs; ++i) inputs[i] = TopicNames().Name(kInputTopicRoles[i]).substr(9);  // "boxwatch." dropped
  w->probe_ = std::make_unique<WorkerProbe>(*w->registry_, inputs);
  w->consumer_stats_ = std::make_unique<KafkaStatsProbe>(*w->registry_, "worker_consumer");
  w->producer_stats_ = std::make_unique<KafkaStatsProbe>(*w->registry_, "worker_producer");
  Status s = w->Init();
  if (!s.ok()) return s.error();
  return w;
}

Status Worker::Init() {
  // How long each step took, for the start-up line (a restart's time to
  // processing is start-up plus restore).
  using Clock = std::chrono::steady_clock;
  const Clock::time_point init_started = Clock::now();
  auto since = [](Clock::time_point from) { return std::chrono::duration<double>(Clock::now() - from).count(); };
  // 1. The topic set must exist and be co-partitioned.
  auto admin = KafkaAdmin::Create(config_.bootstrap, config_.kafka);
  if (!admin.ok()) return admin.error();
  std::vector<std::string> all;
  for (TopicRole r : kAllTopicRoles) all.push_back(names_.Name(r));
  auto counts = (*admin)->PartitionCountsOfAll(all, 10s);
  if (!counts.ok()) return counts.error();
  if (Status s = CheckTopicSet(names_, *counts); !s.ok()) return s;
  partitions_ = counts->at(names_.Name(TopicRole::kManifests));

  // 2. Profile: a file, else the built-in default; a newer one may arrive on the profiles topic.
  auto profile = config_.profile_file.empty()
                     ? operators::ParseProfile(operators::DefaultProfileYaml(), operators::kDefaultProfileSource)
                     : operators::LoadProfile(config_.profile_file);
  if (!profile.ok()) return profile.error();
  profile_ = std::move(profile).value();

  // 3. Local state.
  auto store = state::StateStore::Open({.path = config_.state_dir,
                                        .block_cache_bytes = static_cast<size_t>(config_.block_cache_bytes),
                                        .write_buffer_bytes = static_cast<size_t>(config_.write_buffer_bytes),
                                        .commit_overlay_bytes = static_cast<size_t>(config_.commit_overlay_bytes),
                                        .commit_overlay_commits = static_cast<int>(config_.commit_overlay_commits),
                                        .low_priority_compactions = config_.low_priority_compactions});
  if (!store.ok()) return store.error();
  store_ = std::move(store).value();
  async_store_ = std::make_unique<AsyncStoreCommit>();
  const double through_store_s = since(init_started);
  const Clock::time_point control_started = Clock::now();

  // 4. Control topics, read to their end before processing, then followed.
  const KafkaProperties& extra = config_.kafka;
  auto control = KafkaConsumer::Create({.bootstrap = config_.bootstrap,
                                        .group_id = config_.group_id + "-control-" + config_.instance_id,
                                        .read_committed = true,
                                        .extra = extra,
                                        .fetch_wait_max_ms = kReadToEndFetchWaitMs});
  if (!control.ok()) return control.error();
  control_ = std::move(control).value();
  // Assigned from the first offset each topic holds, asked first: assigned
  // at "the beginning" before the client knew the partition's leader, the
  // client waited half a second to ask where the beginning is.
  constexpr TopicRole kControlRoles[] = {TopicRole::kProfiles, TopicRole::kReference};
  std::pair<int64_t, int64_t> control_wm[2];
  for (int i = 0; i < 2; ++i) {
    auto wm = control_->Watermarks(names_.Name(kControlRoles[i]), 0, 30s);
    if (!wm.ok()) return wm.error();
    control_wm[i] = *wm;
  }
  if (Status s = control_->Assign({{names_.Name(TopicRole::kProfiles), 0, control_wm[0].first},
                                   {names_.Name(TopicRole::kReference), 0, control_wm[1].first}});
      !s.ok()) {
    return s;
  }
  for (int i = 0; i < 2; ++i) {
    const TopicRole role = kControlRoles[i];
    const std::pair<int64_t, int64_t>* wm = &control_wm[i];
    const auto deadline = std::chrono::steady_clock::now() + 60s;
    for (;;) {
      auto pos = control_->Positions();
      int64_t at = -1;
      if (pos.ok()) {
        for (const auto& p : *pos) {
          if (p.topic == names_.Name(role)) at = p.offset;
        }
      }
      if (wm->first >= wm->second || at >= wm->second) break;  // nothing held, or read to the end
      if (std::chrono::steady_clock::now() > deadline) {
        return Error{Errc::kTimeout, "could not read " + names_.Name(role) + " to its end within 60 s"};
      }
      if (Status s = PollControlTopics(50ms); !s.ok()) return s;
    }
  }
  if (pending_profile_) {
    profile_ = std::move(*pending_profile_);
    pending_profile_.reset();
  }
  reference_ = pending_reference_;
  engine_ = std::make_unique<operators::RiskEngine>(&profile_, &reference_);
  BW_LOG(kInfo, kLog) << "profile " << profile_.name << " " << profile_.version << "; " << partitions_
                      << " partitions; " << (config_.exactly_once ? "exactly-once" : "at-least-once")
                      << "; topics and state opened in " << through_store_s << " s, control topics read in "
                      << since(control_started) << " s";
  probe_->ProfileVersion(profile_.name, profile_.version);
  {
    std::vector<std::string> reasons;
    for (int r = 0; r <= static_cast<int>(operators::kLastRejectReason); ++r)
      reasons.push_back(operators::RejectReasonName(static_cast<operators::RejectReason>(r)));
    probe_->KnownReasons(reasons);
    std::set<std::string> regions;
    for (const auto& [country, region] : profile_.regions) regions.insert(region);
    probe_->KnownRegions({regions.begin(), regions.end()});
  }
  SetNotReady("waiting for a partition assignment");

  const Clock::time_point clients_started = Clock::now();
  if (Status s = NewProducer(); !s.ok()) return s;
  Status s = NewConsumer();
  BW_LOG(kInfo, kLog) << "producer" << (config_.exactly_once ? " (transactions initialised)" : "")
                      << " and consumer created in " << since(clients_started) << " s";
  return s;
}

// The group. The range assignor gives every member the same partition
// numbers of every input topic (they share one partition count), which is
// what a task needs; librdkafka's cooperative-sticky assignor balances
// partitions topic by topic and would split partition p of the inputs
// between members. Static membership keeps restarts free of rebalances.
void Worker::ReleaseQueues() {
  for (auto& [p, task] : tasks_) {
    for (auto& q : task->queues) q.reset();
  }
}

Status Worker::NewConsumer() {
  // Each input partition has a queue of its own (Worker::Refill), so
  // librdkafka's bound on what it fetches ahead, queued.min.messages, is
  // per input partition: max_buffered_records. Unless set in the Kafka
  // properties.
  // librdkafka's bound in bytes applies per input partition too: by default
  // kInputQueueKiB, not its 64 MiB (which had been for all of them).
  KafkaProperties extra = config_.kafka;
  auto unset = [&](const char* name) {
    return std::none_of(extra.begin(), extra.end(), [&](const auto& kv) { return kv.first == name; });
  };
  if (unset("queued.min.messages")) {
    extra.insert(extra.begin(), {"queued.min.messages", std::to_string(config_.max_buffered_records)});
  }
  if (unset("queued.max.messages.kbytes")) {
    extra.insert(extra.begin(), {"queued.max.messages.kbytes", std::to_string(kInputQueueKiB)});
  }
  auto consumer = KafkaConsumer::Create({.bootstrap = config_.bootstrap,
                                         .group_id = config_.group_id,
                                         .group_instance_id = config_.instance_id,
                                         .read_committed = true,
                                         .assignment_strategy = "range",
                                         .extra = extra,
                                         .listener = this,
                                         .on_stats = [this](std::string_view j) { consumer_stats_->Update(j); },
                                         .fetch_queue_backoff_ms = kInputFetchQueueBackoffMs});
  if (!consumer.ok()) return consumer.error();
  consumer_ = std::move(consumer).value();
  std::vector<std::string> inputs;
  for (TopicRole r : kInputTopicRoles) inputs.push_back(names_.Name(r));
  return consumer_->Subscribe(inputs);
}

Status Worker::NewProducer() {
  ResolveCommit();  // the producer committing on its own thread is not pulled away
  producer_.reset();
  const KafkaProperties& extra = config_.kafka;
  auto producer = KafkaProducer::Create({.bootstrap = config_.bootstrap,
                                         .transactional_id = config_.exactly_once
                                                                 ? config_.group_id + "-" + config_.instance_id
                                                                 : std::string(),
                                         .transaction_timeout_ms = static_cast<int>(config_.transaction_timeout_ms),
                                         .extra = extra,
                                         .topic_properties = {{names_.Name(TopicRole::kStateChangelog),
                                                               {{"compression.type", config_.changelog_compression}}}},
                                         .on_stats = [this](std::string_view j) { producer_stats_->Update(j); }});
  if (!producer.ok()) return producer.error();
  producer_ = std::move(producer).value();
  in_transaction_ = false;
  kafka_txn_open_ = false;
  deferred_.clear();
  emitted_.clear();
  if (!config_.exactly_once) return Status::Ok();  // idempotent producer, no transactions
  return producer_->InitTransactions(60s);
}

std::string Worker::NotReady() const {
  std::lock_guard lock(ready_mu_);
  return not_ready_;
}

void Worker::SetNotReady(std::string why) {
  std::lock_guard lock(ready_mu_);
  not_ready_ = std::move(why);
}

std::string Worker::ReadinessNote() const {
  std::lock_guard lock(ready_mu_);
  return readiness_note_;
}

void Worker::UpdateLateShare(int64_t now) {
  const uint64_t in = stats_.processed + stats_.dead_letters;
  if (late_window_start_ms_ != 0 && now - late_window_start_ms_ < kLateWindowMs) return;
  std::string note;
  if (late_window_start_ms_ != 0 && in >= late_window_in_ && stats_.late >= late_window_late_) {
    const uint64_t n = in - late_window_in_, late = stats_.late - late_window_late_;
    if (n >= 100 && static_cast<double>(late) > kLateWarningShare * static_cast<double>(n)) {
      char share[32];
      std::snprintf(share, sizeof share, "%.1f", 100.0 * static_cast<double>(late) / static_cast<double>(n));
      note = "warning: " + std::string(share) + "% of the " + std::to_string(n) + " input records of the last " +
             std::to_string(kLateWindowMs / 1000) +
             " s were dead-lettered as late and count towards no alert: device clocks far ahead, input older than "
             "allowed_lateness_ms (" + std::to_string(config_.allowed_lateness_ms) +
             " ms), or state adopted from another pipeline (docs/operations.md, BoxwatchLateInput)";
    }
  }
  late_window_start_ms_ = now;
  late_window_in_ = in;
  late_window_late_ = stats_.late;
  std::lock_guard lock(ready_mu_);
  if (note != readiness_note_ && !note.empty()) BW_LOG(kWarn, kLog) << note;
  readiness_note_ = std::move(note);
}

void Worker::UpdateGauges() {
  const int64_t now = NowMs();
  if (now - gauges_updated_ms_ < 2000) return;
  gauges_updated_ms_ = now;
  UpdateLateShare(now);
  size_t gated = 0;
  for (const auto& [p, task] : tasks_) gated += task->core ? task->core->gated() : 0;
  probe_->Gated(gated);
  for (const auto& [p, task] : tasks_) {
    for (int i = 0; i < kInputs; ++i) {
      if (const int64_t lag = InputLag(*task, i); lag >= 0) probe_->Lag(i, p, lag);
    }
    // Counted by the task; while it restores, RocksDB's estimate of its
    // keys over the two (movement, declaration) nearly every container has
    // (a little high: containers with something fired have a third).
    probe_->State(p, task->core ? task->core->containers() : (task->store->ApproximateKeys() + 1) / 2);
    if (task->core && task->core->partition_clock_ms() != TaskCore::kUnset) {
      probe_->PartitionClockBehind(p, static_cast<double>(now - task->core->partition_clock_ms()) / 1000.0);
    }
  }
  probe_->Store(store_->ApproximateSizeBytes(), store_->BlockCacheUsageBytes());
}

std::vector<int32_t> Worker::ActiveTasks() const {
  std::vector<int32_t> out;
  for (const auto& [p, t] : tasks_) out.push_back(p);
  return out;
}

// ------------------------------------------------------------ rebalancing

void Worker::OnAssigned(const std::vector<TopicPartition>& partitions) {
  // An assignment served while the consumer closes (Recover, the
  // destructor) is not taken: its tasks would hold the closing consumer's
  // queues. The next consumer is assigned afresh.
  if (rebuilding_ || closing_) return;
  // Restore threads open the tasks: nothing may be committing meanwhile.
  if (Status s = FinishCommit(); !s.ok()) {
    pending_error_ = s.error();
    return;
  }
  std::map<int32_t, int> inputs_of;
  for (const auto& tp : partitions) ++inputs_of[tp.partition];
  std::set<int32_t> added;
  for (const auto& [p, n] : inputs_of) {
    if (n == kInputs) {
      added.insert(p);
    } else {
      pending_error_ = Error{Errc::kFatal, "partition " + std::to_string(p) + " arrived with " + std::to_string(n) +
                                               " of the 4 input topics: the assignment is not co-partitioned"};
      return;
    }
  }
  std::vector<std::unique_ptr<Task>> fresh;
  for (int32_t p : added) {
    // Never expected with eager rebalancing (a revocation drops every task
    // first): a task still there goes before its partition is detached again.
    if (tasks_.count(p) != 0) DropTasks({p});
    auto task = std::make_unique<Task>();
    task->partition = p;
    auto store = store_->Partition(p);
    if (!store.ok()) {
      pending_error_ = store.error();
      return;
    }
    task->store = *store;
    std::vector<TopicPartition> inputs;
    for (TopicRole r : kInputTopicRoles) inputs.push_back({names_.Name(r), p});
    auto committed = consumer_->Committed(inputs, 30s);
    if (!committed.ok()) {
      pending_error_ = committed.error();
      return;
    }
    for (int i = 0; i < kInputs; ++i) task->fetched[i] = std::max<int64_t>(0, (*committed)[i].offset);
    // Before the assignment takes effect (it does when this returns), so
    // that none of the partition's records goes to the consumer's queue.
    for (int i = 0; i < kInputs; ++i) {
      auto queue = consumer_->DetachPartition(inputs[i].topic, p);
      if (!queue.ok()) {
        pending_error_ = queue.error();
        return;
      }
      task->queues[i] = std::move(queue).value();
    }
    probe_->RestoreProgress(p, 0);
    fresh.push_back(std::move(task));
  }
  // The stores fill from their changelog partitions side by side; the tasks
  // then start one by one on this thread (starting may produce output).
  SetNotReady("restoring " + std::to_string(fresh.size()) + " partition(s)");
  std::vector<Status> restored = RestoreStores(fresh);
  for (size_t i = 0; i < fresh.size(); ++i) {
    const Task& task = *fresh[i];
    if (restored[i].ok()) continue;
    if (task.core && !task.core->ForeignOwner().empty()) {
      refused_foreign_state_ = true;
      pending_error_ = Error{Errc::kInvalidArgument, "partition " + std::to_string(task.partition) + ": " +
                                                         restored[i].message()};
    } else {
      pending_error_ = restored[i].error();
    }
    return;
  }
  const auto starting = std::chrono::steady_clock::now();
  for (size_t i = 0; i < fresh.size(); ++i) {
    Task& task = *fresh[i];
    if (Status s = StartTask(task); !s.ok()) {
      pending_error_ = s.error();
      return;
    }
    tasks_[task.partition] = std::move(fresh[i]);
  }
  BW_LOG(kInfo, kLog) << "assigned partitions, " << tasks_.size() << " tasks active (started in "
                      << std::chrono::duration<double>(std::chrono::steady_clock::now() - starting).count() << " s)";
  probe_->Rebalance("assigned");
  probe_->Tasks(tasks_.size());
  SetNotReady("");
  if (sink_) {
    sink_("{\"event\":\"assigned\",\"tasks\":" + std::to_string(tasks_.size()) +
          ",\"restored_records\":" + std::to_string(stats_.restored_records) + "}");
  }
}

void Worker::OnRevoked(const std::vector<TopicPartition>& partitions) {
  // Finish the open transaction so the partitions leave with their work committed.
  if (rebuilding_ || closing_) {
    DropTasks({});
  } else if (Status s = CommitCycle(); !s.ok()) {
    pending_error_ = s.error();
  }
  std::set<int32_t> gone;
  for (const auto& tp : partitions) gone.insert(tp.partition);
  DropTasks(gone);
  probe_->Rebalance("revoked");
}

void Worker::OnLost(const std::vector<TopicPartition>& partitions) {
  if (closing_) {
    DropTasks({});
    return;
  }
  // Someone else may own these now: the open work must not be committed.
  ResolveCommit();
  if (config_.exactly_once && kafka_txn_open_) producer_->AbortTransaction(30s).PermitUnchecked();
  kafka_txn_open_ = false;
  in_transaction_ = false;
  deferred_.clear();
  emitted_.clear();
  if (Status s = DropUnsentOutput(); !s.ok()) pending_error_ = s.error();
  std::set<int32_t> all;
  for (const auto& [p, t] : tasks_) all.insert(p);
  DropTasks(all);
  probe_->Rebalance("lost");
  pending_error_ = Error{Errc::kAbortable, "partitions lost; processing restarts from the committed offsets"};
}

void Worker::DropTasks(const std::set<int32_t>& partitions) {
  CountRouted();  // what they read counts before they go
  ResolveCommit();  // its batches name these tasks' stores
  // Their batches on the way land first (a failure leaves the stored
  // checkpoint where it was, or, with gathered commits, keeps the batch in
  // memory: either way the store and its checkpoint agree, and the
  // changelog's tail from that checkpoint is restored when they come back).
  if (Status s = SettleStore(); !s.ok()) {
    BW_LOG(kWarn, kLog) << "storing the last cycle's state: " << s.ToString();
    // Tasks kept would hold clean entries RocksDB never got: recover.
    if (!pending_error_) pending_error_ = s.error();
  }
  for (int32_t p : partitions) {
    tasks_.erase(p);
    probe_->PartitionGone(p);
  }
  probe_->Tasks(tasks_.size());
}

void Worker::RetireConsumer(std::unique_ptr<KafkaConsumer> consumer) noexcept {
  if (!consumer) return;
  KafkaConsumer* c = consumer.release();
  try {
    std::lock_guard<std::mutex> lock(retired_mu_);
    retired_.emplace_back([c] { delete c; });
  } catch (const std::exception&) {
    delete c;  // no thread to be had: closed here
  }
}

void Worker::JoinRetired() {
  std::vector<std::thread> threads;
  {
    std::lock_guard<std::mutex> lock(retired_mu_);
    threads.swap(retired_);
  }
  for (std::thread& t : threads) t.join();
}

std::vector<Status> Worker::RestoreStores(const std::vector<std::unique_ptr<Task>>& tasks) {
  JoinRetired();  // the last restore's consumers: closed before new ones open
  std::vector<Status> out(tasks.size());
  std::vector<uint64_t> records(tasks.size(), 0);
  const size_t threads = std::min<size_t>(tasks.size(), static_cast<size_t>(config_.restore_threads));
  std::atomic<size_t> next{0};
  auto work = [&] {
    for (size_t i = next++; i < tasks.size(); i = next++) {
      RestoredSummaries summaries;
      bool whole = false;
      Result<std::string> meta = RestoreStore(*tasks[i], &records[i], &summaries, &whole);
      const auto opening = std::chrono::steady_clock::now();
      out[i] = meta.ok() ? OpenTask(*tasks[i], *meta, whole ? &summaries : nullptr) : Status(meta.error());
      BW_LOG(kInfo, kLog) << "opened partition " << tasks[i]->partition << " in "
                          << std::chrono::duration<double>(std::chrono::steady_clock::now() - opening).count()
                          << " s" << (whole ? " (due index from the restored records)" : "");
    }
  };
  if (threads <= 1) {
    work();
  } else {
    std::vector<std::thread> pool;
    pool.reserve(threads);
    for (size_t t = 0; t < threads; ++t) pool.emplace_back(work);
    for (std::thread& t : pool) t.join();
  }
  for (uint64_t n : records) stats_.restored_records += n;
  return out;
}

Result<std::string> Worker::RestoreStore(Task& task, uint64_t* restored, RestoredSummaries* summaries, bool* whole) {
  const int64_t checkpoint = task.store->ChangelogCheckpoint();
  // Nothing stored: what the changelog holds is the whole state.
  *whole = checkpoint < 0;
  const std::string changelog = names_.Name(TopicRole::kStateChangelog);
  // The reader takes records faster than the broker's fetches bring them,
  // until its queue fills: then it must not sit idle for librdkafka's
  // default second before the next fetch.
  auto reader = KafkaConsumer::Create({.bootstrap = config_.bootstrap,
                                       .group_id = config_.group_id + "-restore-" + config_.instance_id,
                                       .read_committed = true,
                                       .extra = config_.kafka,
                                       .fetch_queue_backoff_ms = kRestoreFetchQueueBackoffMs,
                                       .fetch_wait_max_ms = kReadToEndFetchWaitMs});
  if (!reader.ok()) return reader.error();
  // The reader is closed off this thread, however the restore ends. (The
  // records polled below are declared after this, so they go first.)
  struct Retire {
    Worker* worker;
    std::unique_ptr<KafkaConsumer>* consumer;
    ~Retire() { worker->RetireConsumer(std::move(*consumer)); }
  } retire_reader{this, &*reader};
  // Read to the high watermark, asked read_uncommitted: a transaction of the
  // partition's previous owner may still be completing, and its records are
  // part of the state (if it aborts, reading on past it costs nothing).
  auto probe = KafkaConsumer::Create({.bootstrap = config_.bootstrap,
                                      .group_id = config_.group_id + "-restore-" + config_.instance_id,
                                      .read_committed = false,
                                      .extra = config_.kafka});
  if (!probe.ok()) return probe.error();
  auto wm = (*probe)->Watermarks(changelog, task.partition, 30s);
  RetireConsumer(std::move(*probe));
  if (!wm.ok()) return wm.error();
  const int64_t start = std::max(checkpoint, wm->first);
  if (start >= wm->second) return task.store->TaskMeta();  // nothing beyond the local checkpoint
  BW_LOG(kInfo, kLog) << "restoring partition " << task.partition << " from changelog offset " << start
                      << " to " << wm->second;
  const auto restore_started = std::chrono::steady_clock::now();
  probe_->RestoreStarted(task.partition, wm->second - start);
  if (Status s = (*reader)->Assign({{changelog, task.partition, start}}); !s.ok()) return s.error();
  state::DisableStoreCountersOnThisThread();
  // The records of a run are copied into one buffer (the consumer's fetch
  // buffers go back at once) and written in key order with only the last
  // write of each key, as one table file added to the store whole
  // (BulkCommit), so the restored state is not inserted into memtables,
  // flushed and compacted again. A run ends at kRestoreRunBytes of keys and
  // values, which bounds the memory a restoring thread holds.
  constexpr size_t kRestoreRunBytes = size_t{64} << 20;
  struct Held {
    size_t at;  // key at `at`, the value right after it
    uint32_t key_size;
    uint32_t value_size;
  };
  std::string run;
  std::vector<Held> held;
  std::vector<state::PartitionStore::WriteView> views;
  std::string meta = task.store->TaskMeta();
  int64_t position = start;
  const auto deadline = std::chrono::steady_clock::now() + 600s;
  int summary_runs = 0;  // runs after the first that added summaries
  auto flush = [&]() -> Status {
    views.clear();
    const std::string_view bytes = run;
    for (const Held& h : held) {
      const std::string_view key = bytes.substr(h.at, h.key_size);
      views.push_back({key, h.value_size == 0 ? std::nullopt
                                              : std::optional<std::string_view>(bytes.substr(h.at + h.key_size, h.value_size))});
    }
    state::KeepLastWritePerKey(&views);
    if (*whole) {  // each run's last writes, in key order; runs after runs
      if (!summaries->empty()) ++summary_runs;
      for (const auto& v : views) {
        if (!IsMovementKey(v.key)) continue;
        ExpiryFields f;
        if (v.value && ReadExpiryFields(*v.value, &f)) {
          summaries->push_back({std::string(v.key), {f.last_event_ms, f.due_ms, f.pending, f.own_progress_ms}});
        } else {  // deleted, or unreadable (a scan would pass it by too)
          summaries->push_back({std::string(v.key), {}, true});
        }
      }
    }
    Status s = task.store->BulkCommit(views, position, meta);
    if (!s.ok() && s.code() == Errc::kNoSpace) {  // a full volume: wait for space, as a commit does
      s = WaitForStateSpace(s, [&] { return task.store->BulkCommit(views, position, meta); });
      if (s.ok()) SetNotReady("restoring partition " + std::to_string(task.partition));
    }
    held.clear();
    run.clear();
    return s;
  };
  // Records come in batches: a record at a time, polling cost a clock read
  // and a queue round trip each (8 % of a restoring worker's CPU).
  std::vector<Message> batch;
  while (position < wm->second) {
    if (std::chrono::steady_clock::now() > deadline) {
      return Error{Errc::kTimeout, "restore of partition " + std::to_string(task.partition) + " took over 600 s"};
    }
    batch.clear();
    if (Status s = (*reader)->PollBatch(20ms, 4096, &batch); !s.ok()) return s.error();
    if (batch.empty()) {
      auto pos = (*reader)->Positions();
      if (pos.ok() && !pos->empty()) position = std::max(position, pos->front().offset);
      continue;
    }
    for (const Message& m : batch) {
      position = m.offset() + 1;
      ++*restored;
      if (m.key() == kTaskMetaKey) {
        meta = std::string(m.value());
      } else {
        if (run.capacity() < kRestoreRunBytes) run.reserve(kRestoreRunBytes + (size_t{1} << 20));
        held.push_back({run.size(), static_cast<uint32_t>(m.key().size()), static_cast<uint32_t>(m.value().size())});
        run.append(m.key());
        run.append(m.value());
      }
      if (run.size() >= kRestoreRunBytes) {
        if (Status s = flush(); !s.ok()) return s.error();
      }
    }
    probe_->RestoreProgress(task.partition, wm->second - position);
  }
  batch.clear();  // records pin their consumer: gone before it is retired
  if (Status s = flush(); !s.ok()) return s.error();
  if (summary_runs > 0) {  // a key in several runs: its last write wins
    state::KeepLastPerKey(summaries, [](const RestoredSummary& r) { return std::string_view(r.key); });
  }
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - restore_started).count();
  BW_LOG(kInfo, kLog) << "restored partition " << task.partition << ": " << *restored << " changelog records in "
                      << seconds << " s";
  probe_->RestoreFinished(task.partition, seconds, static_cast<int64_t>(*restored));
  return meta;
}

Status Worker::OpenTask(Task& task, const std::string& meta, RestoredSummaries* summaries) {
  auto states = std::make_unique<CachedStates>(task.store, static_cast<size_t>(config_.cache_max_entries),
                                               [this] { return BeforeStoreScan(); });
  if (summaries != nullptr) states->Seed(std::move(*summaries));
  task.states = std::move(states);
  task.core = std::make_unique<TaskCore>(TaskOptions::From(config_), engine_.get(), task.states.get());
  return task.core->Start(meta);
}

Status Worker::StartTask(Task& task) {
  // The worker's gate; containers the last incarnation's gate held are
  // looked at once and released as far as this one allows.
  TaskOutput out;
  Status s = task.core->SetGate(GateOf(LowestHorizon()), NowMs(), &out);
  if (s.ok() && !out.alerts.empty()) {
    if (Status t = EnsureTransaction(); !t.ok()) return t;
  }
  if (s.ok()) s = EmitOutput(task, out, -1);  // with no alerts, it reports the counters
  return s;
}

// ------------------------------------------------------------ processing

void Worker::CountRouted() {
  for (auto& [p, task] : tasks_) {
    for (int i = 0; i < kInputs; ++i) {
      if (task->routed[i] == 0) continue;
      probe_->RecordsIn(i, p, task->routed[i]);
      task->routed[i] = 0;
    }
  }
}

Status Worker::Refill(Task& task, int input) {
  PartitionQueue* queue = task.queues[input].get();
  if (queue == nullptr || queue->Empty()) return Status::Ok();
  std::deque<Buffered>& buffer = task.buffers[input];
  if (buffer.size() >= kTakeBatch) return Status::Ok();
  taken_.clear();
  Status s = queue->Take(kTakeBatch - buffer.size(), &taken_);
  // The clock once per take: when these records were read, for the waits
  // and the ingest -> alert latency, and what "too far in the future" is
  // measured from.
  const int64_t now_ms = NowMs();
  for (Message& message : taken_) {
    const int64_t ts = message.timestamp_ms();
    const bool future = ts > now_ms + config_.max_future_ms;
    const std::string_view content_type = message.header("content-type").value_or("");
    task.fetched[input] = message.offset() + 1;
    buffer.push_back({std::move(message), future ? kMergeFirst : ts, future, now_ms, content_type, ts});
  }
  if (!taken_.empty()) {
    task.routed[input] += static_cast<int64_t>(taken_.size());  // counted in the probe once per pass
    task.gave_up[input] = false;
  }
  return s;
}

// At-least-once: output of a cycle that will not commit its offsets is
// dropped, not left to land after someone else took the partitions over;
// replaying the input makes it again.
Status Worker::DropUnsentOutput() {
  if (config_.exactly_once || !producer_) return Status::Ok();
  producer_->Purge();
  return NewProducer();
}

int64_t Worker::InputLag(const Task& task, int input) const {
  const std::string topic = names_.Name(kInputTopicRoles[input]);
  int64_t lo = 0, hi = 0;
  // The watermarks of the last fetch response, cached by the client: no request.
  rd_kafka_get_watermark_offsets(consumer_->handle(), topic.c_str(), task.partition, &lo, &hi);
  if (hi < 0) return -1;  // no fetch response yet
  // On the broker: from the consumer's position, which moves past
  // transaction markers and aborted records (never delivered, but counted
  // by the high watermark), not from the last record processed; plus what
  // the task holds buffered.
  int64_t position = task.fetched[input];
  rd_kafka_topic_partition_list_t* list = rd_kafka_topic_partition_list_new(1);
  rd_kafka_topic_partition_list_add(list, topic.c_str(), task.partition);
  if (rd_kafka_position(consumer_->handle(), list) == RD_KAFKA_RESP_ERR_NO_ERROR && list->elems[0].offset >= 0) {
    position = std::max(position, list->elems[0].offset);
  }
  rd_kafka_topic_partition_list_destroy(list);
  return std::max<int64_t>(0, hi - std::max(position, lo)) + static_cast<int64_t>(task.buffers[input].size());
}

int64_t Worker::HighWatermarkSum(int64_t* known) const {
  int64_t sum = 0;
  *known = 0;
  for (const auto& [p, task] : tasks_) {
    for (int i = 0; i < kInputs; ++i) {
      int64_t lo = 0, hi = -1;
      rd_kafka_get_watermark_offsets(consumer_->handle(), names_.Name(kInputTopicRoles[i]).c_str(), p, &lo, &hi);
      if (hi < 0) continue;
      sum += hi;
      *known += 1000 * p + i + 1;  // which ones, not only how many
    }
  }
  return sum;
}

int64_t Worker::RecordsWaiting() const {
  int64_t n = 0;
  for (const auto& [p, task] : tasks_) {
    for (int i = 0; i < kInputs; ++i) {
      const int64_t lag = InputLag(*task, i);
      n += lag >= 0 ? lag : static_cast<int64_t>(task->buffers[i].size());
    }
  }
  return n;
}

bool Worker::Behind() const {
  // Records alone misjudge by the rate: 50,000 waiting is seconds of a
  // small region's traffic, but at 100,000 events/s half a second, what a
  // worker that keeps up can hold in its fetch queues at any moment. A
  // replay of stored input arrives at no rate: records alone then.
  const auto by_rate =
      static_cast<int64_t>(arrival_rate_ * static_cast<double>(config_.backlog_threshold_ms) / 1000.0);
  return RecordsWaiting() >= std::max({config_.backlog_threshold_records, records_in_transaction_, by_rate});
}

bool Worker::UnreadOnBroker(const std::string& topic, int32_t partition, int64_t fetched) const {
  int64_t lo = 0, hi = 0;
  rd_kafka_get_watermark_offsets(consumer_->handle(), topic.c_str(), partition, &lo, &hi);
  if (hi < 0) return true;  // no fetch response yet: unknown, so assume there is more
  if (std::max(fetched, lo) >= hi) return false;
  // The high watermark also counts transaction markers, which are never
  // delivered: the consumer's position moves past them, the last record
  // polled + 1 does not (transactional input would never look caught up).
  rd_kafka_topic_partition_list_t* list = rd_kafka_topic_partition_list_new(1);
  rd_kafka_topic_partition_list_add(list, topic.c_str(), partition);
  if (rd_kafka_position(consumer_->handle(), list) == RD_KAFKA_RESP_ERR_NO_ERROR && list->elems[0].offset >= 0) {
    fetched = std::max(fetched, list->elems[0].offset);
  }
  rd_kafka_topic_partition_list_destroy(list);
  return std::max(fetched, lo) < hi;
}

Status Worker::Drain() {
  const int64_t now = NowMs();
  WorkerProbe::RecordWaits waits(*probe_);
  // Tasks take turns: a cycle that fills up (max_records_per_commit) ends
  // here, and the next starts with the task after the one it ended in, so
  // no task waits behind another's backlog (nor does its feedback horizon).
  std::vector<Task*> order;
  for (auto it = tasks_.lower_bound(drain_next_); it != tasks_.end(); ++it) order.push_back(it->second.get());
  for (auto it = tasks_.begin(); it != tasks_.end() && it->first < drain_next_; ++it) order.push_back(it->second.get());
  // Rounds keep the tasks within allowed_lateness_ms of each other in event
  // time: a task whose next record is further ahead of the earliest task's
  // ends its turn. The feedback gate holds every evaluation more than 2 x L
  // ahead of the slowest task's horizon, so a task that runs hours ahead (a
  // partition its fetches favour, through a long backlog) holds its
  // containers until the others catch up, past the state cache, and their
  // release reads them back from RocksDB. Tasks with nothing in their
  // queues do not count (one whose fetch is still on its way does not hold
  // the others either: it might never come), and a task blocked on one of
  // its own inputs holds the others only while it is the earliest, up to
  // idle_wait_ms.
  for (bool progressed = true; progressed;) {
    progressed = false;
    bool held_back = false;
    int64_t earliest = std::numeric_limits<int64_t>::max();
    for (Task* t : order) {
      for (int i = 0; i < kInputs; ++i) {
        if (t->buffers[i].size() <= kRefillAt) {
          if (Status s = Refill(*t, i); !s.ok()) return s;
        }
        if (!t->buffers[i].empty()) earliest = std::min(earliest, t->buffers[i].front().merge_ms);
      }
    }
    const int64_t limit = earliest > std::numeric_limits<int64_t>::max() - config_.allowed_lateness_ms
                              ? std::numeric_limits<int64_t>::max()
                              : earliest + config_.allowed_lateness_ms;
    for (Task* task_ptr : order) {
      Task& task = *task_ptr;
      const int32_t p = task.partition;
      for (;;) {
        // Inputs running low take what their queues hold: the merge pulls
        // exactly the inputs it is about to need.
        for (int i = 0; i < kInputs; ++i) {
          if (task.buffers[i].size() > kRefillAt) continue;
          if (Status s = Refill(task, i); !s.ok()) return s;
        }
        int best = -1;
        for (int i = 0; i < kInputs; ++i) {
          if (task.buffers[i].empty()) continue;
          if (best < 0 || task.buffers[i].front().merge_ms < task.buffers[best].front().merge_ms) best = i;
        }
        // Too far ahead of the earliest task: this turn ends here (before the
        // look at the broker's watermarks below, which a held task need not
        // pay). It has records, so it is neither caught up nor idle.
        if (best >= 0 && task.buffers[best].front().merge_ms > limit) {
          task.caught_up_since_ms = 0;
          task.idle_since_ms = 0;
          held_back = true;
          break;
        }
        // A partition with nothing buffered but unread records on the broker
        // may hold something earlier: wait for it, up to idle_wait_ms.
        std::vector<int> waiting_for;
        bool caught_up = true;
        for (int i = 0; i < kInputs; ++i) {
          if (!task.buffers[i].empty()) {
            caught_up = false;
          } else if (UnreadOnBroker(names_.Name(kInputTopicRoles[i]), p, task.fetched[i])) {
            caught_up = false;
            if (!task.gave_up[i]) waiting_for.push_back(i);
          }
        }
        const bool blocked = !waiting_for.empty();
        if (best < 0 && caught_up && FeedbackGated()) {
          // Caught up a while: nothing this task has not processed can be a
          // seizure before now, so its horizon moves to now (and is
          // published, so that the other tasks' evaluations need not wait).
          if (task.caught_up_since_ms == 0) task.caught_up_since_ms = now;
          if (now - task.caught_up_since_ms >= config_.idle_wait_ms) {
            task.core->IdleHorizon(now);
            if (task.published_horizon == TaskCore::kUnset ||
                task.core->feedback_horizon_ms() - task.published_horizon >= 1000) {
              if (Status s = EnsureTransaction(); !s.ok()) return s;
            }
          }
        } else {
          task.caught_up_since_ms = 0;
        }
        if (best < 0) {
          // Nothing buffered. When caught up for a while, the partition clock
          // moves to the wall clock and releases the quiet containers.
          if (caught_up && task.core->HasDueBy(now) && config_.idle_flush_ms > 0) {
            if (task.idle_since_ms == 0) task.idle_since_ms = now;
            if (now - task.idle_since_ms >= config_.idle_flush_ms) {
              task.idle_since_ms = 0;
              if (Status s = EnsureTransaction(); !s.ok()) return s;
              TaskOutput out;
              if (Status s = task.core->Idle(now, &out); !s.ok()) return s;
              if (Status s = EmitOutput(task, out, -1); !s.ok()) return s;
            }
          }
          break;
        }
        task.idle_since_ms = 0;
        // A far-future record goes straight to the dead letters: it waits for nothing.
        if (blocked && task.buffers[best].front().merge_ms != kMergeFirst) {
          if (task.blocked_since_ms == 0) task.blocked_since_ms = now;
          if (now - task.blocked_since_ms < config_.idle_wait_ms) break;
          // Waited long enough: go on without those inputs until they deliver again.
          for (int i : waiting_for) task.gave_up[i] = true;
          BW_LOG(kWarn, kLog) << "partition " << p << ": input records announced by the broker did not arrive within "
                              << config_.idle_wait_ms << " ms; merging without them";
        }
        task.blocked_since_ms = 0;
        Buffered b = std::move(task.buffers[best].front());
        task.buffers[best].pop_front();
        // This input's next records are likely next: their containers are
        // fetched ahead, a step each (TaskCore::FetchAhead), the last step for
        // this record.
        const auto& next = task.buffers[best];
        // Further ahead, librdkafka's records themselves, then their keys
        // (which the first step hashes) and values.
        constexpr int kRecord = TaskCore::kFetchSteps + 1, kKey = TaskCore::kFetchSteps;
        if (static_cast<int>(next.size()) > kRecord) __builtin_prefetch(next[kRecord].message.raw());
        if (static_cast<int>(next.size()) > kKey) {
          const rd_kafka_message_t* r = next[kKey].message.raw();
          __builtin_prefetch(r->key);
          __builtin_prefetch(r->payload);
        }
        for (int k = 0; k + 1 < TaskCore::kFetchSteps && k < static_cast<int>(next.size()); ++k) {
          task.core->FetchAhead(next[k].message.key(), TaskCore::kFetchSteps - 2 - k);
        }
        if (!next.empty()) {
          // The next record's value, which its decoding reads first.
          const std::string_view value = next.front().message.value();
          for (size_t at = 0; at < std::min<size_t>(value.size(), 128); at += 64) __builtin_prefetch(value.data() + at);
        }
        task.core->FetchAhead(b.message.key(), TaskCore::kFetchSteps - 1);
        ++records_merged_;
        progressed = true;
        waits.Add(static_cast<double>(std::max<int64_t>(0, now - b.now_ms)) / 1000.0);
        if (Status s = ProcessRecord(task, best, b); !s.ok()) return s;
        task.next_offset[best] = b.message.offset() + 1;
        // The last cycle's commit, done meanwhile: what this one deferred goes out.
        if ((records_in_transaction_ & 255) == 0 && commit_done_.load(std::memory_order_acquire)) {
          if (Status s = FinishCommit(); !s.ok()) return s;
        }
        // Behind, the transaction may grow, but not past its age limit, nor
        // once fewer records wait than it holds; a stop does not wait for it
        // (looked at every 256 records).
        const bool backlog_over = backlogged_ && (records_in_transaction_ & 255) == 0 &&
                                  ((stop_ != nullptr && stop_->load()) ||
                                   NowMs() - transaction_started_ms_ >= config_.backlog_commit_interval_ms ||
                                   !Behind());
        if (backlog_over || records_in_transaction_ >= CycleLimit()) {
          drain_next_ = p + 1;
          return Status::Ok();
        }
      }
    }
    progressed = progressed && held_back;
  }
  return Status::Ok();
}

int64_t Worker::CycleLimit() const {
  // While the last cycle still commits, this one may not commit anyway: it
  // goes on taking records, up to twice its usual size (a much longer cycle
  // would hold back the feedback horizon each publishes).
  return backlogged_   ? config_.backlog_records_per_commit
         : committing_ ? 2 * config_.max_records_per_commit
                       : config_.max_records_per_commit;
}

// Opens the commit cycle: a Kafka transaction, or with at-least-once only
// the cycle's bookkeeping.
Status Worker::EnsureTransaction() {
  if (in_transaction_) return Status::Ok();
  // While the last cycle commits, this one's transaction begins once that
  // is done (FinishCommit).
  if (config_.exactly_once && !committing_) {
    if (Status s = producer_->BeginTransaction(); !s.ok()) return s;
    kafka_txn_open_ = true;
  }
  in_transaction_ = true;
  records_in_transaction_ = 0;
  backlogged_ = false;
  transaction_started_ms_ = NowMs();
  return Status::Ok();
}

Status Worker::ProduceDeadLetter(Task& task, const Message& m, const char* reason, const std::string& detail,
                                 bool future_timestamp) {
  ++stats_.dead_letters;
  ++stats_.dead_by_reason[reason];
  probe_->DeadLetter(reason);
  if (std::string_view(reason) != operators::RejectReasonName(operators::RejectReason::kLate) &&
      std::string_view(reason) != operators::RejectReasonName(operators::RejectReason::kStateTooLarge)) {
    for (int i = 0; i < kInputs; ++i)
      if (m.topic() == names_.Name(kInputTopicRoles[i])) probe_->DecodeFailure(i);
  }
  // A value over max_value_bytes cannot be copied whole (the dead letter
  // would be refused by the producer and stop every partition): its first
  // max_value_bytes go, and the headers say so and where the original is.
  const std::string_view value = m.value();
  const size_t keep = std::min(value.size(), static_cast<size_t>(config_.max_value_bytes));
  std::vector<Header> headers = {{"boxwatch-reason", reason},
                                 {"boxwatch-detail", ClipText(detail, 1024)},
                                 {"boxwatch-source-topic", std::string(m.topic())},
                                 {"boxwatch-source-partition", std::to_string(m.partition())},
                                 {"boxwatch-source-offset", std::to_string(m.offset())}};
  if (keep < value.size()) {
    headers.push_back({"boxwatch-truncated", "true"});
    headers.push_back({"boxwatch-original-bytes", std::to_string(value.size())});
  }
  return Output({.topic = names_.Name(TopicRole::kDeadLetter),
                             .key = m.key().substr(0, 1024),
                             .value = value.substr(0, keep),
                             // A timestamp from the far future keeps its record
                             // forever under time retention (and newer brokers
                             // refuse it): such dead letters take the producer's clock.
                             .timestamp_ms = future_timestamp || m.timestamp_ms() <= 0 ? 0 : m.timestamp_ms(),
                             .partition = task.partition,
                             .headers = std::move(headers)});
}

Status Worker::ProcessRecord(Task& task, int index, const Buffered& b) {
  if (Status s = EnsureTransaction(); !s.ok()) return s;
  ++records_in_transaction_;
  const Message& m = b.message;
  TaskOutput& out = output_;
  if (Status s = task.core->Process({.input = index,
                                     .key = m.key(),
                                     .value = m.value(),
                                     .content_type = b.content_type,
                                     .timestamp_ms = b.timestamp_ms,
                                     .future_timestamp = b.future_timestamp},
                                    b.now_ms, &out);
      !s.ok()) {
    return s;
  }
  if (out.rejected) {
    if (Status s = ProduceDeadLetter(task, m, operators::RejectReasonName(out.rejected->reason), out.rejected->detail,
                                     b.future_timestamp);
        !s.ok()) {
      return s;
    }
  }
  return EmitOutput(task, out, b.now_ms);
}

Status Worker::EmitOutput(Task& task, const TaskOutput& out, int64_t ingest_ms, int64_t clock_ms) {
  // Whatever released them (a record, the gate, an idle flush, a task's
  // start), alerts and feedback go out inside a transaction: a producer
  // outside one refuses them (_STATE), which ended a worker whose gate moved
  // down while it held restored containers.
  if (!out.alerts.empty() || !out.feedback.empty()) {
    if (Status s = EnsureTransaction(); !s.ok()) return s;
  }
  for (const auto& update : out.feedback) {
    // Feedback (e.g. a seizure lists the consignee) rides in this
    // transaction; every worker applies it from the reference topic.
    probe_->Feedback(1);
    if (Status s = Output({.topic = names_.Name(TopicRole::kReference),
                                       .key = update.key,
                                       .value = update.value,
                                       .timestamp_ms = out.feedback_timestamp_ms});
        !s.ok()) {
      return s;
    }
  }
  // The emit time: now (one clock read for a record that released alerts,
  // and none for the many that do not), or the pass's clock when there is
  // one. Not the ingest time: emit -> hub then starts where the worker let
  // go of the alert, and ingest -> alert covers the worker's part.
  const int64_t now = out.alerts.empty() ? 0 : clock_ms >= 0 ? clock_ms : NowMs();
  for (size_t i = 0; i < out.alerts.size(); ++i) {
    const v1::Alert& a = out.alerts[i];
    // Where ingest -> alert starts: the record that released it, or when
    // the gate first held its container (TaskOutput); -1: not measured.
    const int64_t ingest = ingest_ms < 0 ? -1 : i < out.alert_ingest_ms.size() ? out.alert_ingest_ms[i] : ingest_ms;
    // Record time: the event time, but never ahead of the clock (Kafka 4
    // brokers refuse timestamps over an hour ahead; max_future_ms may be more).
    if (Status st = Output({.topic = names_.Name(TopicRole::kAlerts),
                                        .key = a.container_number(),
                                        .value = a.SerializeAsString(),
                                        .timestamp_ms = std::min(a.event_time_ms(), now),
                                        .partition = task.partition,
                                        .headers = {{kEmitTimeHeader, std::to_string(now)}}});
        !st.ok()) {
      return st;
    }
    ++stats_.alerts;
    emitted_.push_back({a.priority(), {a.regions().begin(), a.regions().end()}, a.event_time_ms(), ingest, now});
  }
  const TaskCounters& c = task.core->counters();
  stats_.processed += c.processed - task.reported.processed;
  stats_.late += c.late - task.reported.late;
  stats_.feedback += c.feedback - task.reported.feedback;
  if (c.expired != task.reported.expired) probe_->Expired(c.expired - task.reported.expired);
  stats_.expired += c.expired - task.reported.expired;
  if (c.quiet_releases != task.reported.quiet_releases) {
    probe_->Releases("quiet", c.quiet_releases - task.reported.quiet_releases);
  }
  if (c.capacity_releases != task.reported.capacity_releases) {
    probe_->Releases("capacity", c.capacity_releases - task.reported.capacity_releases);
  }
  if (c.clock_capped != task.reported.clock_capped) probe_->ClockCapped(c.clock_capped - task.reported.clock_capped);
  task.reported = c;
  return Status::Ok();
}

// Flushes state to the changelog, commits the transaction, then writes the
// RocksDB batches. Alerts were produced as records released them.
Status Worker::SettleStore() {
  if (!async_store_ || !async_store_->started()) return Status::Ok();
  const auto started = std::chrono::steady_clock::now();
  Status s = async_store_->Wait();
  if (!s.ok() && s.code() == Errc::kNoSpace) {
    // The cycle is committed on Kafka: keep its state writes and wait for space.
    s = WaitForStateSpace(s, [&] {
      for (auto& i : async_store_->items()) {
        if (Status c = i.store->Commit(i.writes, i.changelog_next_offset, i.meta); !c.ok()) return c;
      }
      return Status::Ok();
    });
  }
  async_store_->Forget();
  probe_->CommitPhase("store", std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count());
  return s;
}

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

// The Kafka commit of `c` under exactly-once: its offsets, then EndTxn.
Status Worker::CommitOnKafka(KafkaProducer& producer, Cycle& c, const rd_kafka_consumer_group_metadata_t* group) {
  using Clock = std::chrono::steady_clock;
  const auto start = Clock::now();
  Status s = producer.SendOffsetsToTransaction(c.offsets, group, 60s);
  const auto sent = Clock::now();
  c.offsets_seconds = std::chrono::duration<double>(sent - start).count();
  if (!s.ok()) return s;
  s = producer.CommitTransaction(60s);
  c.committed = Clock::now();
  c.committed_ms = NowMs();
  c.transaction_seconds = std::chrono::duration<double>(c.committed - sent).count();
  return s;
}

// The changelog records of `c` (its state writes, each task's metadata,
// then the feedback horizons it publishes), timed into `c`; on the
// committing thread under exactly-once with the commit overlapping.
Status Worker::ProduceChangelog(KafkaProducer& producer, Cycle& c) {
  const auto start = std::chrono::steady_clock::now();
  const std::string empty;
  for (auto& [p, task_writes] : c.writes) {
    for (const auto& w : task_writes) {
      Cycle::PartWrites& part = c.by_part[IsMovementKey(w.key)      ? 0
                                          : IsDeclarationKey(w.key) ? 1
                                          : IsWindowChunkKey(w.key) ? 3
                                                                    : 2];
      ++part.records;
      part.bytes += w.key.size() + (w.value ? w.value->size() : 0);
      if (Status st = producer.Produce({.topic = c.changelog_topic, .key = w.key,
                                        .value = w.value ? *w.value : empty, .partition = p});
          !st.ok()) {
        return st;
      }
    }
    if (Status st = producer.Produce({.topic = c.changelog_topic, .key = kTaskMetaKey, .value = c.metas[p],
                                      .partition = p});
        !st.ok()) {
      return st;
    }
  }
  for (const auto& [p, h] : c.horizons) {
    const std::string key = std::string(kHorizonKeyPrefix) + std::to_string(p);
    const std::string value = std::to_string(h);
    if (Status st = producer.Produce({.topic = c.reference_topic, .key = key, .value = value, .partition = 0});
        !st.ok()) {
      return st;
    }
  }
  c.produce_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return Status::Ok();
}

Status Worker::TakeDirtyStates(Cycle& c) {
  // Serialising the dirty states is the largest piece of a cycle's work on
  // the processing thread, and each task's cache is its own: with two tasks
  // or more and enough to serialise, another thread takes about half of the
  // states (whole tasks, the largest first to whichever side has less)
  // while this one does the rest. Nothing else touches the caches meanwhile.
  constexpr size_t kParallelFrom = 512;  // dirty states; below, a thread costs more than it saves
  std::vector<std::pair<int32_t, Task*>> here, there;
  std::vector<std::pair<size_t, std::pair<int32_t, Task*>>> by_size;
  size_t total = 0;
  for (auto& [p, task_ptr] : tasks_) {
    const size_t n = task_ptr->states->cache().DirtyCount();
    total += n;
    by_size.push_back({n, {p, task_ptr.get()}});
    c.writes[p];  // every task's entry exists before either thread fills its own
  }
  std::sort(by_size.begin(), by_size.end(), [](const auto& a, const auto& b) { return a.first > b.first; });
  size_t here_n = 0, there_n = 0;
  for (const auto& [n, task] : by_size) {
    if (total >= kParallelFrom && there_n < here_n) {
      there.push_back(task);
      there_n += n;
    } else {
      here.push_back(task);
      here_n += n;
    }
  }
  auto take = [&c](const std::vector<std::pair<int32_t, Task*>>& tasks) -> Status {
    for (const auto& [p, task] : tasks) {
      auto dirty = task->states->cache().TakeDirty();
      if (!dirty.ok()) return dirty.error();
      std::vector<state::PartitionStore::Write>& writes = c.writes.at(p);
      writes = std::move(dirty).value();
      OrderForChangelog(&writes);
    }
    return Status::Ok();
  };
  std::future<Status> other;
  if (!there.empty()) {
    try {
      other = std::async(std::launch::async, take, std::cref(there));
    } catch (const std::system_error&) {  // no thread to be had: all here
      here.insert(here.end(), there.begin(), there.end());
    }
  }
  Status mine = take(here);
  Status theirs = other.valid() ? other.get() : Status::Ok();
  return !mine.ok() ? mine : theirs;
}

Status Worker::CommitCycle(bool overlap) {
  // One Kafka transaction at a time: the cycle committing on its own thread first.
  if (committing_) {
    const auto waiting = std::chrono::steady_clock::now();
    if (Status s = FinishCommit(); !s.ok()) return s;
    probe_->CommitPhase("wait", std::chrono::duration<double>(std::chrono::steady_clock::now() - waiting).count());
  }
  // The last cycle's batches are stored before this one takes its dirty
  // states (and may evict the last cycle's).
  if (Status s = SettleStore(); !s.ok()) return s;
  if (!in_transaction_) return Status::Ok();
  auto cycle = std::make_unique<Cycle>();
  Cycle& c = *cycle;
  c.started = std::chrono::steady_clock::now();
  const std::string changelog = names_.Name(TopicRole::kStateChangelog);
  // Each phase's duration (boxwatch_worker_commit_phase_seconds).
  auto phase_started = c.started;
  auto phase_done = [&](const char* phase) {
    const auto now = std::chrono::steady_clock::now();
    probe_->CommitPhase(phase, std::chrono::duration<double>(now - phase_started).count());
    phase_started = now;
  };
  if (Status s = TakeDirtyStates(c); !s.ok()) return s;
  for (auto& [p, task_ptr] : tasks_) {
    Task& task = *task_ptr;
    c.metas[p] = task.core->EncodeMeta();
    for (int i = 0; i < kInputs; ++i) {
      if (task.next_offset[i] >= 0) c.offsets.push_back({names_.Name(kInputTopicRoles[i]), p, task.next_offset[i]});
    }
  }
  phase_done("serialise");
  // At-least-once: the alerts, dead letters and feedback of this cycle are
  // on the broker before the state that says they were emitted, so a crash
  // between the two repeats outputs and never loses one.
  if (!config_.exactly_once) {
    if (Status s = producer_->Flush(60s); !s.ok()) return s;
  }
  // Each task's feedback horizon, after its feedback of this cycle: in one
  // partition and one transaction, so a reader that sees the horizon has
  // seen every listing before it.
  if (FeedbackGated()) {
    for (auto& [p, task_ptr] : tasks_) {
      const int64_t h = task_ptr->core->feedback_horizon_ms();
      if (h == TaskCore::kUnset || h == task_ptr->published_horizon) continue;
      c.horizons[p] = h;
    }
  }
  c.changelog_topic = changelog;
  c.reference_topic = names_.Name(TopicRole::kReference);
  // The cycle is closed: what is processed from here on is the next one's.
  c.records = records_in_transaction_;
  c.emitted = std::move(emitted_);
  emitted_.clear();
  in_transaction_ = false;
  records_in_transaction_ = 0;
  if (config_.exactly_once) {
    GroupMetadata group = consumer_->GroupMetadataForTransaction();
    if (overlap) {
      committing_ = std::make_unique<CommitInFlight>();
      Cycle* raw = cycle.get();
      committing_->cycle = std::move(cycle);
      KafkaProducer* producer = producer_.get();
      // The changelog is produced on the committing thread too: the next
      // cycle's outputs wait for this commit anyway (Output), and the
      // processing thread goes on meanwhile.
      auto commit = [this, producer, raw, group = std::move(group)] {
        Status s = ProduceChangelog(*producer, *raw);
        if (s.ok()) s = CommitOnKafka(*producer, *raw, group.get());
        commit_done_.store(true, std::memory_order_release);
        return s;
      };
      commit_done_.store(false, std::memory_order_relaxed);
      try {
        committing_->done = std::async(std::launch::async, std::move(commit));
      } catch (const std::system_error&) {  // no thread to be had: committed here
        std::promise<Status> now;
        Status s = ProduceChangelog(*producer, *raw);
        if (s.ok()) s = CommitOnKafka(*producer, *raw, consumer_->GroupMetadataForTransaction().get());
        now.set_value(std::move(s));
        committing_->done = now.get_future();
        commit_done_.store(true, std::memory_order_release);
      }
      ApplyPendingControl();  // the commit boundary: the next cycle's records see it
      return Status::Ok();
    }
    // Failed, the transaction stays open for Recover to abort.
    if (Status s = ProduceChangelog(*producer_, c); !s.ok()) return s;
    if (Status s = CommitOnKafka(*producer_, c, group.get()); !s.ok()) return s;
    kafka_txn_open_ = false;
  } else {
    if (Status s = ProduceChangelog(*producer_, c); !s.ok()) return s;
    const auto start = std::chrono::steady_clock::now();
    if (Status s = producer_->Flush(60s); !s.ok()) return s;
    c.committed = std::chrono::steady_clock::now();
    c.committed_ms = NowMs();
    c.transaction_seconds = std::chrono::duration<double>(c.committed - start).count();
  }
  if (Status s = CommittedCycle(c); !s.ok()) return s;
  ApplyPendingControl();
  return Status::Ok();
}

Status Worker::AwaitCommit() {
  if (!committing_) return Status::Ok();
  Status s = committing_->done.get();
  std::unique_ptr<CommitInFlight> done = std::move(committing_);
  commit_done_.store(false, std::memory_order_relaxed);
  if (!s.ok()) return s;  // the transaction stays open: Recover aborts it
  kafka_txn_open_ = false;
  return CommittedCycle(*done->cycle);
}

Status Worker::FinishCommit() {
  const bool was_committing = committing_ != nullptr;
  if (Status s = AwaitCommit(); !s.ok() || !was_committing) return s;
  // The cycle opened meanwhile gets its transaction, then what it deferred, in order.
  if (!in_transaction_ || !config_.exactly_once) return Status::Ok();
  if (Status b = producer_->BeginTransaction(); !b.ok()) return b;
  kafka_txn_open_ = true;
  for (DeferredRecord& d : deferred_) {
    if (Status p = producer_->Produce({.topic = d.topic, .key = d.key, .value = d.value,
                                       .timestamp_ms = d.timestamp_ms, .partition = d.partition,
                                       .headers = std::move(d.headers)});
        !p.ok()) {
      return p;
    }
  }
  deferred_.clear();
  return Status::Ok();
}

void Worker::ResolveCommit() {
  // The caller abandons the open cycle: a failure is only logged, and the
  // transaction stays open for it to abort.
  if (Status s = AwaitCommit(); !s.ok()) BW_LOG(kWarn, kLog) << "the last cycle's commit: " << s.ToString();
}

Status Worker::Output(const OutRecord& record) {
  if (!committing_) return producer_->Produce(record);
  deferred_.push_back({std::string(record.topic), std::string(record.key), std::string(record.value),
                       record.timestamp_ms, record.partition, record.headers});
  return Status::Ok();
}

Status Worker::BeforeStoreScan() {
  if (Status s = FinishCommit(); !s.ok()) return s;
  return async_store_ ? async_store_->Wait() : Status::Ok();
}

void Worker::ApplyPendingControl() {
  if (pending_profile_) {  // a new profile applies at a commit boundary
    profile_ = std::move(*pending_profile_);
    pending_profile_.reset();
    BW_LOG(kInfo, kLog) << "profile " << profile_.name << " " << profile_.version << " applied";
    probe_->ProfileVersion(profile_.name, profile_.version);
  }
  if (reference_dirty_) {
    reference_ = pending_reference_;
    reference_dirty_ = false;
  }
}

Status Worker::CommittedCycle(Cycle& c) {
  if (c.produce_seconds >= 0) probe_->CommitPhase("produce", c.produce_seconds);
  if (c.offsets_seconds >= 0) probe_->CommitPhase("offsets", c.offsets_seconds);
  if (c.transaction_seconds >= 0) probe_->CommitPhase("transaction", c.transaction_seconds);
  rd_kafka_poll(producer_->handle(), 0);
  for (const auto& [p, h] : c.horizons) {
    if (auto it = tasks_.find(p); it != tasks_.end()) it->second->published_horizon = h;
  }
  probe_->TransactionCommitted(std::chrono::duration<double>(c.committed - c.started).count(), c.records);
  probe_->StateWrites("movement", c.by_part[0].records, c.by_part[0].bytes);
  probe_->StateWrites("declaration", c.by_part[1].records, c.by_part[1].bytes);
  probe_->StateWrites("evaluation", c.by_part[2].records, c.by_part[2].bytes);
  probe_->StateWrites("window", c.by_part[3].records, c.by_part[3].bytes);
  for (const auto& e : c.emitted) {
    probe_->Alert(v1::Priority_Name(e.priority).substr(9), e.regions, (c.committed_ms - e.event_ms) / 1000.0,
                  e.ingest_ms < 0 ? -1.0 : (c.committed_ms - e.ingest_ms) / 1000.0,
                  (c.committed_ms - e.emit_ms) / 1000.0);
  }
  ++stats_.transactions;
  const std::string changelog = names_.Name(TopicRole::kStateChangelog);
  if (config_.exactly_once && async_store_) {
    // Written while the next cycle is processed (AsyncStoreCommit).
    std::vector<AsyncStoreCommit::Item> items;
    for (auto& [p, writes] : c.writes) {
      auto it = tasks_.find(p);
      if (it == tasks_.end()) continue;  // dropped: its changelog holds the cycle
      items.push_back({it->second->store, std::move(writes), producer_->LastDeliveredOffset(changelog, p) + 1,
                       std::move(c.metas[p])});
    }
    async_store_->Start(std::move(items));
  } else {
    const auto started = std::chrono::steady_clock::now();
    for (auto& [p, writes] : c.writes) {
      auto it = tasks_.find(p);
      if (it == tasks_.end()) continue;
      state::PartitionStore* store = it->second->store;
      const int64_t last = producer_->LastDeliveredOffset(changelog, p);
      Status s = store->Commit(writes, last + 1, c.metas[p]);
      if (!s.ok() && s.code() == Errc::kNoSpace) {
        // The cycle is committed on Kafka: keep its state writes and wait for space.
        s = WaitForStateSpace(s, [&] { return store->Commit(writes, last + 1, c.metas[p]); });
      }
      if (!s.ok()) return s;
    }
    probe_->CommitPhase("store", std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count());
  }
  // At-least-once: the consumed offsets last, once outputs and state are
  // stored (none when no task has processed a record since it was assigned).
  if (!config_.exactly_once && !c.offsets.empty()) {
    if (Status s = consumer_->CommitSync(c.offsets); !s.ok()) return s;
  }
  return Status::Ok();
}

Status Worker::WaitForStateSpace(const Status& failure, const std::function<Status()>& retry) {
  BW_LOG(kError, kLog) << "state disk full; processing stops until space is freed: " << failure.message();
  SetNotReady("state disk full (" + config_.state_dir + "): processing stopped until space is freed");
  probe_->StateDiskFull(true);
  Status s = failure;
  while (!s.ok() && s.code() == Errc::kNoSpace) {
    if (stop_ != nullptr && stop_->load()) break;  // stopping: the changelog holds this cycle's state
    std::this_thread::sleep_for(1s);
    (void)store_->Resume();  // fails with kNoSpace too while the disk is still full
    s = retry();
  }
  probe_->StateDiskFull(false);
  if (s.ok()) {
    BW_LOG(kInfo, kLog) << "state disk has space again; processing resumes";
    SetNotReady("");
  }
  return s;
}

int64_t Worker::LowestHorizon() const {
  int64_t lowest = operators::kEndOfTime;
  for (int32_t p = 0; p < partitions_; ++p) {
    auto it = horizons_.find(p);
    lowest = std::min(lowest, it == horizons_.end() ? TaskCore::kUnset : it->second);
  }
  return lowest;
}

int64_t Worker::GateOf(int64_t lowest) const {
  if (!FeedbackGated() || config_.reference_wait_ms == 0 || gate_forced_open_) return operators::kEndOfTime;
  // Listings come L after their task's horizon (task_core.h).
  return lowest == TaskCore::kUnset ? TaskCore::kUnset : lowest + config_.allowed_lateness_ms + 1;
}

Status Worker::UpdateGate(int64_t now) {
  int64_t gate = operators::kEndOfTime;
  if (FeedbackGated() && config_.reference_wait_ms > 0) {
    // The lowest horizon over every input partition; none yet: kUnset.
    const int64_t lowest = LowestHorizon();
    if (lowest != lowest_horizon_ms_ || lowest_moved_ms_ == 0) {
      lowest_horizon_ms_ = lowest;
      lowest_moved_ms_ = now;
      gate_forced_open_ = false;
    }
    bool held = false;
    for (const auto& [p, t] : tasks_) held = held || t->core->gated() > 0;
    if (gate_forced_open_ || (held && now - lowest_moved_ms_ >= config_.reference_wait_ms)) {
      if (!gate_forced_open_) {
        std::string behind;
        for (int32_t p = 0; p < partitions_; ++p) {
          auto it = horizons_.find(p);
          if (it == horizons_.end() || it->second == lowest) behind += (behind.empty() ? "" : ",") + std::to_string(p);
        }
        BW_LOG(kWarn, kLog) << "the feedback horizon of partition(s) " << behind << " has not moved for "
                            << config_.reference_wait_ms
                            << " ms (a worker down or far behind): evaluating without waiting for their seizures";
        probe_->ReferenceWaitExpired();
      }
      gate_forced_open_ = true;
    } else {
      gate = GateOf(lowest);
    }
  }
  if (gate == gate_ms_) return Status::Ok();
  const bool opens = gate > gate_ms_;
  gate_ms_ = gate;
  for (auto& [p, task_ptr] : tasks_) {
    Task& task = *task_ptr;
    if (!task.core) continue;
    if (opens && task.core->gated() > 0) {
      if (Status s = EnsureTransaction(); !s.ok()) return s;
    }
    TaskOutput out;
    if (Status s = task.core->SetGate(gate, now, &out); !s.ok()) return s;
    // Also without alerts: a deferred expiry sweep may have run, whose
    // counters EmitOutput reports.
    if (Status s = EmitOutput(task, out, now, now); !s.ok()) return s;
  }
  return Status::Ok();
}

Status Worker::PollControlTopics(std::chrono::milliseconds wait) {
  for (;;) {
    auto m = control_->Poll(wait);
    wait = std::chrono::milliseconds(0);
    // Rights the principal lacks end the worker; anything else is retried
    // by librdkafka and shows as the topic not advancing.
    if (!m.ok()) return IsKafkaRefusal(m.error().code) ? m.status() : Status::Ok();
    if (!m->has_value()) return Status::Ok();
    const Message& rec = **m;
    if (rec.topic() == names_.Name(TopicRole::kProfiles)) {
      if (rec.value().empty()) continue;
      auto p = operators::ParseProfile(rec.value(), "topic " + std::string(rec.topic()) + " offset " +
                                                        std::to_string(rec.offset()));
      if (!p.ok()) {
        BW_LOG(kError, kLog) << "ignoring invalid profile: " << p.error().message;
        continue;
      }
      pending_profile_ = std::move(p).value();
    } else if (rec.key().substr(0, kHorizonKeyPrefix.size()) == kHorizonKeyPrefix) {
      int32_t partition = -1;
      int64_t horizon = 0;
      const std::string_view p = rec.key().substr(kHorizonKeyPrefix.size());
      const std::string_view v = rec.value();
      const auto pr = std::from_chars(p.data(), p.data() + p.size(), partition);
      const auto vr = std::from_chars(v.data(), v.data() + v.size(), horizon);
      if (pr.ec != std::errc() || pr.ptr != p.data() + p.size() || vr.ec != std::errc() ||
          vr.ptr != v.data() + v.size() || horizon < 0 || horizon > kMaxHorizonMs) {
        BW_LOG(kWarn, kLog) << "ignoring malformed feedback horizon " << ClipText(std::string(rec.key()), 64);
        continue;
      }
      horizons_[partition] = horizon;
    } else if (rec.key().substr(0, 15) == "seized_parties:" || rec.key().substr(0, 13) == "seized_bills:" ||
               rec.key().substr(0, 13) == "consignments:") {
      // Read as of event time: a listing takes effect only for evaluations
      // after its seizure, so it applies at once, not at a commit.
      if (Status st = operators::ApplyReferenceEntry(&reference_, rec.key(), rec.value()); !st.ok()) {
        BW_LOG(kWarn, kLog) << "ignoring reference entry " << ClipText(std::string(rec.key()), 128) << " at offset "
                            << rec.offset() << ": " << st.message();
        continue;
      }
      (void)operators::ApplyReferenceEntry(&pending_reference_, rec.key(), rec.value());
    } else {
      if (Status st = operators::ApplyReferenceEntry(&pending_reference_, rec.key(), rec.value()); !st.ok()) {
        BW_LOG(kWarn, kLog) << "ignoring reference entry " << ClipText(std::string(rec.key()), 128) << " at offset "
                            << rec.offset() << ": " << st.message();
        continue;
      }
      reference_dirty_ = true;
    }
  }
}

Status Worker::Recover(const Error& error) {
  BW_LOG(kWarn, kLog) << "recovering from " << ErrcName(error.code) << ": " << error.message;
  ResolveCommit();
  if (error.code == Errc::kFenced || error.code == Errc::kFatal) {
    ++stats_.rebuilds;
    if (Status s = NewProducer(); !s.ok()) return s;
  } else if (kafka_txn_open_ && config_.exactly_once) {
    if (Status s = producer_->AbortTransaction(60s); !s.ok()) {
      ++stats_.rebuilds;
      if (Status n = NewProducer(); !n.ok()) return n;
    }
  } else if (Status s = DropUnsentOutput(); !s.ok()) {
    return s;
  }
  in_transaction_ = false;
  kafka_txn_open_ = false;
  deferred_.clear();
  emitted_.clear();
  // Start over from what is committed: drop every task and its buffers, and
  // rejoin with a new consumer (the same static member id, so the group
  // hands back the same partitions, read from the committed offsets).
  rebuilding_ = true;
  std::set<int32_t> all;
  for (const auto& [p, t] : tasks_) all.insert(p);
  DropTasks(all);
  if (consumer_) consumer_->Close().PermitUnchecked();  // an assignment it serves is not taken (OnAssigned)
  consumer_.reset();
  rebuilding_ = false;
  pending_error_.reset();
  return NewConsumer();
}

Status Worker::Run(const std::atomic<bool>& stop) {
  stop_ = &stop;
  state::DisableStoreCountersOnThisThread();
  int consecutive_failures = 0;
  // Refused credentials: when the current episode began, and the last one.
  std::chrono::steady_clock::time_point refused_since{}, last_refused{};
  while (!stop.load()) {
    Status step = [&]() -> Status {
      // A recovery that could not make its consumer tries again.
      if (!consumer_) return NewConsumer();
      // A pass that merged nothing waits for records (or a rebalance), up
      // to 5 ms: the passes also time the commits and idle releases.
      if (records_merged_ == merged_at_last_pass_) consumer_->WaitForRecords(5ms);
      merged_at_last_pass_ = records_merged_;
      // Rebalances and consumer errors. Records never come this way: each
      // input partition has its own queue, which Drain takes from.
      auto m = consumer_->Poll(0ms);
      if (pending_error_) {
        Error e = std::move(*pending_error_);
        pending_error_.reset();
        return e;
      }
      if (!m.ok()) return m.error();
      if (m->has_value()) {
        // Never expected: processing it out of its partition's order could
        // change the output, so start again from the committed offsets.
        const Message& r = **m;
        return Error{Errc::kAbortable, "record from " + std::string(r.topic()) + "[" + std::to_string(r.partition()) +
                                           "] came through the consumer's queue, not its partition's"};
      }
      // The last cycle's commit, done on its own thread: this cycle's transaction begins.
      if (commit_done_.load(std::memory_order_acquire)) {
        if (Status c = FinishCommit(); !c.ok()) return c;
      }
      const int64_t now = NowMs();  // one clock read per pass, not per record
      if (now - rate_since_ms_ >= 1000) {
        int64_t known = 0;
        const int64_t high = HighWatermarkSum(&known);
        // Growth of the same watermarks only: one heard for the first time,
        // or a task gained or lost, says nothing of arrivals.
        arrival_rate_ = rate_since_ms_ > 0 && known == watermarks_known_at_rate_since_
                            ? static_cast<double>(std::max<int64_t>(0, high - high_watermarks_at_rate_since_)) *
                                  1000.0 / static_cast<double>(now - rate_since_ms_)
                            : 0;
        rate_since_ms_ = now;
        high_watermarks_at_rate_since_ = high;
        watermarks_known_at_rate_since_ = known;
      }
      if (Status c = PollControlTopics(); !c.ok()) return c;
      // A new profile applies at a commit: an idle worker opens a cycle for it.
      if (pending_profile_ && !in_transaction_) {
        if (Status t = EnsureTransaction(); !t.ok()) return t;
      }
      if (Status g = UpdateGate(now); !g.ok()) return g;
      UpdateGauges();
      Status drained = Drain();
      CountRouted();
      if (!drained.ok()) return drained;
      if (!in_transaction_) return Status::Ok();
      const int64_t age = NowMs() - transaction_started_ms_;
      if (age < config_.commit_interval_ms && records_in_transaction_ < config_.max_records_per_commit) {
        return Status::Ok();
      }
      // Due while the last cycle still commits: the records go on being
      // processed instead of waiting for it, and the cycle commits once it
      // is done (FinishCommit, within a pass or the next), or waits for it
      // once it holds its bound.
      if (committing_ && !commit_done_.load(std::memory_order_acquire) && !stop.load() &&
          records_in_transaction_ < CycleLimit()) {
        return Status::Ok();
      }
      // Due. Behind (at least backlog_threshold_records waiting, in the
      // worker and on the broker, and more than the transaction holds), it
      // holds more: fewer state writes per event. A worker that keeps up
      // never has that much waiting, so its cadence and latency stay as
      // they are.
      if (!stop.load() && age < config_.backlog_commit_interval_ms &&
          records_in_transaction_ < config_.backlog_records_per_commit && Behind()) {
        backlogged_ = true;
        return Status::Ok();
      }
      return CommitCycle(/*overlap=*/true);
      return Status::Ok();
    }();
    if (step.ok()) {
      consecutive_failures = 0;
      continue;
    }
    probe_->TransactionFailed();
    // A bug or misconfiguration, or rights the principal lacks: retrying cannot help.
    if (step.code() == Errc::kInvalidArgument || step.code() == Errc::kAccessDenied) return step;
    // Refused credentials while running: a broker that restarts can refuse
    // them until its credentials are loaded, so they are retried for a
    // while; credentials that stay refused (rotated away) end the worker.
    if (step.code() == Errc::kUnauthenticated) {
      // A refusal after a grace period without one starts a new episode.
      const auto now = std::chrono::steady_clock::now();
      if (now - last_refused >= kRefusedCredentialsGrace) refused_since = now;
      last_refused = now;
      if (now - refused_since >= kRefusedCredentialsGrace) return step;
      std::this_thread::sleep_for(1s);
      consecutive_failures = 0;  // the grace period bounds these
    }
    // A full state volume when asked to stop: the changelog holds the
    // cycle's state, so there is nothing to recover.
    if (step.code() == Errc::kNoSpace && stop.load()) break;
    SetNotReady("recovering: " + step.message());
    if (++consecutive_failures > 20) {
      return Error{step.code(), "giving up after 20 failed recoveries; last: " + step.message()};
    }
    if (Status r = Recover(step.error()); !r.ok()) {
      BW_LOG(kError, kLog) << "recovery failed: " << r.ToString();
      std::this_thread::sleep_for(std::chrono::milliseconds(200 * consecutive_failures));
    }
  }
  // SIGTERM: finish the open transaction and store it, then close.
  Status last = CommitCycle();
  if (last.ok()) last = SettleStore();
  if (!last.ok()) {
    BW_LOG(kError, kLog) << "final commit failed: " << last.ToString();
    return last;
  }
  ReleaseQueues();
  return consumer_->Close();
}

}  // namespace boxwatch::pipeline
