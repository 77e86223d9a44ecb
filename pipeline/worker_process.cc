// The worker's tasks' input buffers, the merge and each record
// (worker_internal.h).

#include <algorithm>
#include <chrono>

#include "core/log.h"
#include "operators/decode.h"
#include "pipeline/worker_internal.h"

namespace boxwatch::pipeline {
using namespace worker_internal;
using namespace std::chrono_literals;
namespace {

// An input's buffer is refilled from its partition's queue when it holds
// this few records (more than the merge's fetching ahead looks at), with
// up to kTakeBatch: enough to make a take's own cost (a lock and two clock
// reads in librdkafka) small per record, few enough to stay in the caches.
constexpr size_t kRefillAt = 8;
constexpr size_t kTakeBatch = 128;

}  // namespace

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

}  // namespace boxwatch::pipeline
