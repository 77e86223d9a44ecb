// The worker's commit cycle (worker_internal.h): the dirty states go to the
// changelog, the Kafka transaction commits with the input offsets, then the
// RocksDB batches are written. Alerts were produced as records released them.

#include <algorithm>
#include <chrono>
#include <future>
#include <system_error>
#include <thread>

#include "core/log.h"
#include "pipeline/worker_internal.h"

namespace boxwatch::pipeline {
using namespace worker_internal;
using namespace std::chrono_literals;

static_assert(ContainerStates::kMovement == kMovementPart && ContainerStates::kDeclaration == kDeclarationPart &&
                  ContainerStates::kEvaluation == kEvaluationPart && ContainerStates::kAll == ContainerStateCodec::kAllParts,
              "the task's change bits are the state codec's part bits");

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
}  // namespace boxwatch::pipeline
