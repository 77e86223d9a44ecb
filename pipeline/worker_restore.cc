// The worker's assignment, revocation and restore (worker_internal.h).

#include <algorithm>
#include <atomic>
#include <chrono>
#include <thread>

#include "core/log.h"
#include "pipeline/worker_internal.h"

namespace boxwatch::pipeline {
using namespace worker_internal;
using namespace std::chrono_literals;
namespace {

// ms the restore reader's consumer waits to fetch again once its queue is full
// (librdkafka's fetch.queue.backoff.ms, 1000 by default).
constexpr int kRestoreFetchQueueBackoffMs = 10;

}  // namespace

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
}  // namespace boxwatch::pipeline
