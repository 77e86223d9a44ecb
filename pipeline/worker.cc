#include "pipeline/worker.h"

#include <prometheus/registry.h>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <set>
#include <thread>

#include "core/log.h"
#include "operators/decode.h"
#include "operators/default_profile.h"
#include "pipeline/kafka_error.h"
#include "pipeline/worker_internal.h"

namespace boxwatch::pipeline {
using namespace worker_internal;
using namespace std::chrono_literals;
namespace {

constexpr int64_t kMaxHorizonMs = 253402300799999;  // 9999-12-31: a horizon + L never overflows
// How long refused credentials are retried before the worker ends (exit 4).
constexpr auto kRefusedCredentialsGrace = std::chrono::seconds(120);
// ms an input partition's consumer waits to fetch again once its queue
// holds max_buffered_records (librdkafka's fetch.queue.backoff.ms, 1000 by
// default): a small limit must not leave the merge waiting for most of a second.
constexpr int kInputFetchQueueBackoffMs = 20;
// KiB librdkafka fetches ahead per input partition at most (its
// queued.max.messages.kbytes, unless the Kafka properties set it): seconds
// of input at the drain's rate, and 16 of them are 128 MiB.
constexpr int kInputQueueKiB = 8192;

}  // namespace

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
