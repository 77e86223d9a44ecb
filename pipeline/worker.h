#pragma once
// `boxwatch worker`: the stateful stage. One consumer group over the input
// topics; a task per partition p owns partition p of every input topic, of
// the changelog, and the state of the containers hashed to p. Each commit
// interval one Kafka transaction carries the alerts, changelog records and
// dead letters of the interval with the consumed input offsets; after it
// commits, one RocksDB batch stores the flushed state with the changelog
// offset it reflects (DESIGN.md "Processing semantics").
//
// Lifecycle: Create() validates the topic set and opens the state store;
// Run() processes until `stop` becomes true, then commits the open
// transaction and closes. Not thread-safe: one thread runs the worker.

#include <array>
#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "core/result.h"
#include "operators/engine.h"
#include "pipeline/kafka_client.h"
#include "pipeline/task_core.h"
#include "pipeline/topics.h"
#include "pipeline/worker_config.h"
#include "pipeline/worker_probe.h"
#include "state/state_store.h"

namespace boxwatch::pipeline {

struct WorkerStats {
  uint64_t processed = 0;      // input records joined
  uint64_t alerts = 0;         // alerts produced
  uint64_t dead_letters = 0;   // records sent to the dead-letter topic
  uint64_t late = 0;           // of which late
  uint64_t transactions = 0;   // committed transactions
  uint64_t restored_records = 0;  // changelog records applied during restores
  uint64_t rebuilds = 0;       // producer rebuilds after fencing or fatal errors
  uint64_t expired = 0;        // container states deleted after state_ttl_ms
  uint64_t feedback = 0;       // reference entries written from inspection outcomes
  std::map<std::string, uint64_t> dead_by_reason;
};

// What a restore into an empty store has seen of every container's movement
// part (one per key, its last write), so that opening the task need not scan
// the store.
struct RestoredSummary {
  std::string key;
  ContainerStates::Summary summary;
  bool deleted = false;
};
using RestoredSummaries = std::vector<RestoredSummary>;

class Worker : public RebalanceListener {
 public:
  // Receives one JSON object per notable event (e.g. tasks assigned and
  // restored), for operators and tests. Called on the worker's thread.
  using EventSink = std::function<void(const std::string& json)>;
  // `registry` receives the worker's metrics (pipeline/worker_probe.h);
  // null keeps them private.
  static Result<std::unique_ptr<Worker>> Create(const WorkerConfig& config, EventSink sink = {},
                                                std::shared_ptr<prometheus::Registry> registry = nullptr);
  ~Worker() override;

  // Processes until `stop` is set (SIGTERM) or a non-recoverable error.
  Status Run(const std::atomic<bool>& stop);

  const WorkerStats& stats() const { return stats_; }
  // True when Run ended because a task's state belongs to another consumer
  // group or topic prefix (state_owner: refuse); the command exits with 3.
  bool refused_foreign_state() const { return refused_foreign_state_; }
  // Partitions whose tasks are restored and processing.
  std::vector<int32_t> ActiveTasks() const;
  // Empty once the worker has its assignment and every task is restored;
  // else why it is not ready. Thread-safe (read by /readyz).
  std::string NotReady() const;
  // A warning /readyz shows while the worker stays ready (empty: none):
  // more than kLateWarningShare of the input of the last kLateWindowMs was
  // dead-lettered as late, which silently removes evidence from targeting.
  std::string ReadinessNote() const;
  static constexpr int64_t kLateWindowMs = 30000;  // ms
  static constexpr double kLateWarningShare = 0.01;

  void OnAssigned(const std::vector<TopicPartition>& partitions) override;
  void OnRevoked(const std::vector<TopicPartition>& partitions) override;
  void OnLost(const std::vector<TopicPartition>& partitions) override;

 public:
  class AsyncStoreCommit;

 private:
  struct Task;
  struct Buffered;
  explicit Worker(const WorkerConfig& config);

  Status Init();
  Status NewProducer();
  Status NewConsumer();
  // Fills the tasks' stores from their changelog partitions beyond the
  // local checkpoints and opens each task (OpenTask), restore_threads
  // partitions at a time; returns how each went, in the order of `tasks`.
  std::vector<Status> RestoreStores(const std::vector<std::unique_ptr<Task>>& tasks);
  // One task's restore; safe to run beside others. Counts into `restored`;
  // returns the task metadata. When the store held nothing of the partition
  // (no checkpoint), `summaries` gets the restored containers' summaries and
  // `*whole` is set.
  Result<std::string> RestoreStore(Task& task, uint64_t* restored, RestoredSummaries* summaries, bool* whole);
  // Closes a restore's consumer on a thread of its own: tearing a client
  // down took up to a second, which the partition's start need not wait
  // for. JoinRetired waits for those still closing.
  void RetireConsumer(std::unique_ptr<KafkaConsumer> consumer) noexcept;
  void JoinRetired();
  // Opens the task's state cache and core from its metadata (a scan of its
  // stored states, or the summaries a whole restore saw); safe to run beside
  // others.
  Status OpenTask(Task& task, const std::string& meta, RestoredSummaries* summaries = nullptr);
  // Sets an opened task's gate, producing what that releases.
  Status StartTask(Task& task);
  // Takes what the input's partition queue holds into its buffer, up to
  // kTakeBatch records buffered (worker_process.cc).
  Status Refill(Task& task, int input);
  // Destroys the tasks' partition queues: before the consumer closes.
  void ReleaseQueues();
  // Processes buffered records in merged timestamp order while allowed.
  Status Drain();
  // Runs a merged record through its task's core and produces what comes out.
  // `index`: the record's input (kInputTopicRoles).
  Status ProcessRecord(Task& task, int index, const Buffered& b);
  // Adds the records Refill took since the last call to the probe's counts.
  void CountRouted();
  // Produces a core's alerts and feedback into the open cycle; `ingest_ms`
  // is when the record that released them was read (-1: no ingest -> alert
  // latency; otherwise each alert's own start in `out` comes first),
  // `clock_ms` the clock of this pass (-1: the wall clock).
  Status EmitOutput(Task& task, const TaskOutput& out, int64_t ingest_ms, int64_t clock_ms = -1);
  Status EnsureTransaction();
  // The records the open cycle may hold before it is due.
  int64_t CycleLimit() const;
  // Commits the open cycle. Under exactly-once with `overlap`, the Kafka
  // commit (the offsets and EndTxn: round trips to the broker) runs on a
  // thread of its own while the next cycle is processed; that cycle's
  // outputs wait in deferred_ until the commit is done and the cycle's own
  // transaction begins (FinishCommit). A revocation and a stop commit
  // without overlap. One Kafka transaction at a time: a cycle due while the
  // last one still commits waits for it.
  Status CommitCycle(bool overlap = false);
  struct Cycle;           // a cycle's state writes, offsets and figures, from serialising to stored
  struct CommitInFlight;  // a cycle committing on its own thread
  // The cycle committing on its own thread, if any: waits for it, then on
  // success stores it (CommittedCycle), begins the open cycle's
  // transaction and produces what that cycle deferred. On failure, the
  // error; the transaction is left for Recover to abort.
  Status FinishCommit();
  // What FinishCommit and ResolveCommit share: waits for the cycle
  // committing, if any, and on success stores it (CommittedCycle).
  Status AwaitCommit();
  // As FinishCommit, for paths that abandon the open cycle (recovery, a
  // lost assignment, the destructor, dropping tasks): a failure is logged,
  // and no transaction is begun.
  void ResolveCommit();
  // After the cycle's Kafka commit: metrics, the RocksDB batches, and
  // under at-least-once the input offsets.
  Status CommittedCycle(Cycle& cycle);
  // A cycle's Kafka commit under exactly-once (offsets, then EndTxn), timed
  // into `cycle`; runs on the committing thread.
  static Status CommitOnKafka(KafkaProducer& producer, Cycle& cycle, const rd_kafka_consumer_group_metadata_t* group);
  // Takes every task's dirty states into `cycle`'s writes, ordered for the
  // changelog; two threads share the work when there is enough of it.
  Status TakeDirtyStates(Cycle& cycle);
  // A cycle's changelog records and published horizons, timed into `cycle`;
  // on the committing thread when the commit overlaps the next cycle.
  static Status ProduceChangelog(KafkaProducer& producer, Cycle& cycle);
  // A profile or reference update waiting for a commit boundary takes effect.
  void ApplyPendingControl();
  // Produces `record` into the open cycle's transaction, or keeps a copy
  // while the last cycle still commits (see CommitCycle).
  Status Output(const OutRecord& record);
  // Before a task scans its store: the cycle committing and its batches
  // land first, so no stored value read is older than the cache's.
  Status BeforeStoreScan();
  // Waits for the last cycle's RocksDB batches (written on their own thread
  // under exactly-once; AsyncStoreCommit in worker_internal.h).
  Status SettleStore();
  Status Recover(const Error& error);
  void DropTasks(const std::set<int32_t>& partitions);
  // Records of `input` the task has yet to process, buffered or on the
  // broker (from the last fetch's high watermark); -1 before any fetch.
  int64_t InputLag(const Task& task, int input) const;
  int64_t RecordsWaiting() const;  // over every task and input
  // Whether the worker is behind: at least backlog_threshold_records wait,
  // and at least backlog_threshold_ms of input at its recent arrival rate,
  // and more than the open transaction holds (WorkerConfig).
  bool Behind() const;
  Status DropUnsentOutput();                  // at-least-once: purge and replace the producer
  // Sends `m` to the dead-letter topic with `reason`; a value over
  // max_value_bytes is cut to that size (headers boxwatch-truncated and
  // boxwatch-original-bytes; the source headers locate the original).
  Status ProduceDeadLetter(Task& task, const Message& m, const char* reason, const std::string& detail,
                           bool future_timestamp = false);
  // Applies what the control topics hold, waiting up to `wait` for the
  // first record; an error only when Kafka refuses this principal access.
  Status PollControlTopics(std::chrono::milliseconds wait = std::chrono::milliseconds(0));
  // True while the broker holds records of topic[partition] at or after `fetched`.
  bool UnreadOnBroker(const std::string& topic, int32_t partition, int64_t fetched) const;
  void SetNotReady(std::string why);
  // Lag, state size and RocksDB figures, every couple of seconds.
  void UpdateGauges();
  // A state write failed with kNoSpace: not ready, retries `retry` every
  // second (after asking the store to resume) until it succeeds, fails
  // otherwise, or the worker is told to stop.
  Status WaitForStateSpace(const Status& failure, const std::function<Status()>& retry);
  // Every kLateWindowMs: the late share of the window just ended, as the
  // readiness note.
  void UpdateLateShare(int64_t now);
  // Feedback as of event time (task_core.h): sets every task's gate from
  // the lowest published horizon, or opens it when the profile feeds
  // nothing back or the horizons stood still for reference_wait_ms.
  Status UpdateGate(int64_t now);
  // The lowest published horizon over every input partition (kUnset while
  // one has none), and the gate it gives.
  int64_t LowestHorizon() const;
  int64_t GateOf(int64_t lowest) const;
  bool FeedbackGated() const { return engine_ != nullptr && engine_->FeedsBack(); }

  WorkerConfig config_;
  EventSink sink_;
  TopicNames names_;
  int32_t partitions_ = 0;
  std::unique_ptr<state::StateStore> store_;
  std::unique_ptr<AsyncStoreCommit> async_store_;
  std::unique_ptr<KafkaConsumer> consumer_;
  std::vector<Message> taken_;  // reused by Refill
  // Records merged, and as many at the start of the last pass: a pass that
  // merged nothing waits for records before the next.
  uint64_t records_merged_ = 0;
  uint64_t merged_at_last_pass_ = 0;
  // Input records arriving per second over the last second or so (the
  // growth of the inputs' high watermarks, by the pass clock), and where
  // the current measurement began.
  double arrival_rate_ = 0;
  int64_t rate_since_ms_ = 0;
  int64_t high_watermarks_at_rate_since_ = 0;
  int64_t watermarks_known_at_rate_since_ = -1;
  // The high watermarks of every task's inputs as the client last heard
  // them, summed, and how many of them it has heard (one not yet fetched is
  // unknown: its first value is the whole partition, not arrivals).
  int64_t HighWatermarkSum(int64_t* known) const;
  std::unique_ptr<KafkaProducer> producer_;
  std::unique_ptr<KafkaConsumer> control_;  // profiles + reference, read whole
  std::map<int32_t, std::unique_ptr<Task>> tasks_;
  int32_t drain_next_ = 0;  // the task Drain starts with (tasks take turns)

  operators::Profile profile_;
  std::optional<operators::Profile> pending_profile_;
  operators::ReferenceData reference_;
  operators::ReferenceData pending_reference_;
  bool reference_dirty_ = false;
  std::unique_ptr<operators::RiskEngine> engine_;
  // Each input partition's feedback horizon as its task last published it
  // on the reference topic; the lowest of them, when it last moved, and
  // the gate the tasks have.
  std::map<int32_t, int64_t> horizons_;
  int64_t lowest_horizon_ms_ = 0;
  int64_t lowest_moved_ms_ = 0;
  int64_t gate_ms_ = operators::kEndOfTime;
  bool gate_forced_open_ = false;

  bool in_transaction_ = false;
  bool rebuilding_ = false;  // Recover is tearing down: callbacks must not commit
  bool closing_ = false;
  std::mutex retired_mu_;
  std::vector<std::thread> retired_;  // restore consumers being closed
  bool refused_foreign_state_ = false;     // the destructor is closing the clients: callbacks must not commit
  int64_t records_in_transaction_ = 0;
  // The open transaction stays open past the usual cadence: the worker is
  // behind (see WorkerConfig::backlog_commit_interval_ms).
  bool backlogged_ = false;
  int64_t transaction_started_ms_ = 0;
  std::optional<Error> pending_error_;
  TaskOutput output_;  // reused per record
  struct Emitted {     // an alert of the open cycle, for the latency metrics at commit
    v1::Priority priority;
    std::vector<std::string> regions;
    int64_t event_ms;
    int64_t ingest_ms;
    int64_t emit_ms;  // the emit-time header
  };
  std::vector<Emitted> emitted_;
  // The Kafka transaction begun and not yet committed or aborted: the open
  // cycle's, or the one committing on its own thread.
  bool kafka_txn_open_ = false;
  std::unique_ptr<CommitInFlight> committing_;
  std::atomic<bool> commit_done_{false};  // set by the committing thread when it is done
  struct DeferredRecord {                 // an output of the open cycle while the last one commits
    std::string topic, key, value;
    int64_t timestamp_ms;
    int32_t partition;
    std::vector<Header> headers;
  };
  std::vector<DeferredRecord> deferred_;
  WorkerStats stats_;
  std::shared_ptr<prometheus::Registry> registry_;
  std::unique_ptr<WorkerProbe> probe_;
  std::unique_ptr<KafkaStatsProbe> consumer_stats_;
  std::unique_ptr<KafkaStatsProbe> producer_stats_;
  int64_t gauges_updated_ms_ = 0;
  // The current late-share window: its start and the counts then.
  int64_t late_window_start_ms_ = 0;
  uint64_t late_window_in_ = 0;
  uint64_t late_window_late_ = 0;
  const std::atomic<bool>* stop_ = nullptr;  // Run's stop flag, for waits inside a step
  mutable std::mutex ready_mu_;
  std::string not_ready_ = "starting";
  std::string readiness_note_;  // guarded by ready_mu_
};

}  // namespace boxwatch::pipeline
