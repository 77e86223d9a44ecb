#include "pipeline/worker_probe.h"

#include <algorithm>

#include <google/protobuf/struct.pb.h>
#include <google/protobuf/util/json_util.h>
#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include <map>
#include <mutex>
#include <set>

#include "monitoring/metrics.h"

namespace boxwatch::pipeline {

using prometheus::BuildCounter;
using prometheus::BuildGauge;
using prometheus::BuildHistogram;
using prometheus::Counter;
using prometheus::Family;
using prometheus::Gauge;
using prometheus::Histogram;

namespace {

// Buckets for event time -> alert: from a second to a day, because event
// times include how late devices and carriers report.
const std::vector<double>& EventLatencyBuckets() {
  static const std::vector<double> kBuckets = {0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600, 21600, 86400};
  return kBuckets;
}

}  // namespace

struct WorkerProbe::Impl {
  explicit Impl(prometheus::Registry& r)
      : records_in(BuildCounter()
                       .Name("boxwatch_worker_records_in_total")
                       .Help("Input records read, per input topic and partition")
                       .Register(r)),
        decode_failures(BuildCounter()
                            .Name("boxwatch_worker_decode_failures_total")
                            .Help("Input records that failed decoding or validation, per input topic")
                            .Register(r)),
        dead_letters(BuildCounter()
                         .Name("boxwatch_worker_dead_letters_total")
                         .Help("Records sent to the dead-letter topic, by reason")
                         .Register(r)),
        lag(BuildGauge()
                .Name("boxwatch_worker_consumer_lag_records")
                .Help("Records on the broker not yet processed, per input topic and partition")
                .Register(r)),
        alerts(BuildCounter()
                   .Name("boxwatch_worker_alerts_total")
                   .Help("Alerts emitted, by priority and region (an alert counts once per region)")
                   .Register(r)),
        event_to_alert(BuildHistogram()
                           .Name("boxwatch_worker_event_to_alert_seconds")
                           .Help("From the event time of the triggering event to the alert's commit")
                           .Register(r)
                           .Add({}, EventLatencyBuckets())),
        ingest_to_alert(BuildHistogram()
                            .Name("boxwatch_worker_ingest_to_alert_seconds")
                            .Help("From reading the container's latest input record to the alert's commit")
                            .Register(r)
                            .Add({}, monitoring::LatencyBuckets())),
        emit_to_commit(BuildHistogram()
                           .Name("boxwatch_worker_emit_to_commit_seconds")
                           .Help("From producing an alert (its emit-time header) to the commit that makes it visible")
                           .Register(r)
                           .Add({}, monitoring::LatencyBuckets())),
        commit_seconds(BuildHistogram()
                           .Name("boxwatch_worker_transaction_commit_seconds")
                           .Help("Evaluating, producing and committing one transaction")
                           .Register(r)
                           .Add({}, monitoring::LatencyBuckets())),
        transactions(BuildCounter()
                         .Name("boxwatch_worker_transactions_total")
                         .Help("Transactions committed")
                         .Register(r)
                         .Add({})),
        transaction_records(BuildCounter()
                                .Name("boxwatch_worker_transaction_records_total")
                                .Help("Input records committed in transactions")
                                .Register(r)
                                .Add({})),
        transaction_failures(BuildCounter()
                                 .Name("boxwatch_worker_transaction_failures_total")
                                 .Help("Processing steps that failed and were recovered (transaction aborted or rebuilt)")
                                 .Register(r)
                                 .Add({})),
        rebalances(BuildCounter()
                       .Name("boxwatch_worker_rebalances_total")
                       .Help("Partition assignment changes, by kind (assigned, revoked, lost)")
                       .Register(r)),
        tasks(BuildGauge().Name("boxwatch_worker_tasks").Help("Tasks (partitions) active").Register(r).Add({})),
        state_disk_full(BuildGauge()
                            .Name("boxwatch_worker_state_disk_full")
                            .Help("1 while processing waits for space on the state volume")
                            .Register(r)
                            .Add({})),
        restore_in_progress(BuildGauge()
                                .Name("boxwatch_worker_restore_in_progress")
                                .Help("1 while a task restores its state from the changelog")
                                .Register(r)
                                .Add({})),
        restore_remaining(BuildGauge()
                              .Name("boxwatch_worker_restore_remaining_records")
                              .Help("Changelog records a restoring task still has to read, per partition")
                              .Register(r)),
        restore_records(BuildCounter()
                            .Name("boxwatch_worker_restore_records_total")
                            .Help("Changelog records applied by restores")
                            .Register(r)
                            .Add({})),
        restore_seconds(BuildHistogram()
                            .Name("boxwatch_worker_restore_seconds")
                            .Help("Duration of one task's restore from the changelog")
                            .Register(r)
                            .Add({}, monitoring::LatencyBuckets())),
        containers(BuildGauge()
                       .Name("boxwatch_worker_containers_tracked")
                       .Help("Container states held, per partition (RocksDB estimate)")
                       .Register(r)),
        store_bytes(BuildGauge()
                        .Name("boxwatch_worker_state_size_bytes")
                        .Help("RocksDB state on disk and in memtables")
                        .Register(r)
                        .Add({})),
        block_cache(BuildGauge()
                        .Name("boxwatch_worker_block_cache_usage_bytes")
                        .Help("RocksDB block cache in use")
                        .Register(r)
                        .Add({})),
        feedback(BuildCounter()
                     .Name("boxwatch_worker_feedback_entries_total")
                     .Help("Reference entries written from inspection outcomes")
                     .Register(r)
                     .Add({})),
        reference_wait_expired(BuildCounter()
                                   .Name("boxwatch_worker_reference_wait_expired_total")
                                   .Help("Times evaluation stopped waiting for the feedback horizons of every task "
                                         "after reference_wait_ms")
                                   .Register(r)
                                   .Add({})),
        gated(BuildGauge()
                  .Name("boxwatch_worker_gated_containers")
                  .Help("Containers whose evaluation waits for the feedback horizons of every task")
                  .Register(r)
                  .Add({})),
        expired(BuildCounter()
                    .Name("boxwatch_worker_expired_containers_total")
                    .Help("Container states deleted after state_ttl_ms")
                    .Register(r)
                    .Add({})),
        releases(BuildCounter()
                     .Name("boxwatch_worker_releases_total")
                     .Help("Containers released for evaluation by the partition clock (quiet) or by too many "
                           "unevaluated items (capacity)")
                     .Register(r)),
        state_writes(BuildCounter()
                         .Name("boxwatch_worker_state_writes_total")
                         .Help("State records written to the changelog and RocksDB, by part (movement, declaration, "
                               "evaluation; deletes included)")
                         .Register(r)),
        record_wait(BuildHistogram()
                        .Name("boxwatch_worker_record_wait_seconds")
                        .Help("From reading an input record to the processing pass that takes it (the merge's waits "
                              "and the worker's own backlog)")
                        .Register(r)
                        .Add({}, monitoring::LatencyBuckets())),
        commit_phase(BuildHistogram()
                         .Name("boxwatch_worker_commit_phase_seconds")
                         .Help("One phase of a commit cycle: serialise (dirty states), produce (changelog and "
                               "horizons), offsets (SendOffsetsToTransaction), transaction (CommitTransaction), "
                               "store (RocksDB batches)")
                         .Register(r)),
        state_write_bytes(BuildCounter()
                              .Name("boxwatch_worker_state_write_bytes_total")
                              .Help("Bytes of the state records written (key and value, before compression), by part")
                              .Register(r)),
        clock_capped(BuildCounter()
                         .Name("boxwatch_worker_clock_capped_events_total")
                         .Help("Events whose container progress was capped at the wall clock or the partition "
                               "clock + allowed lateness (device clocks ahead)")
                         .Register(r)
                         .Add({})),
        clock_behind(BuildGauge()
                         .Name("boxwatch_worker_partition_clock_behind_seconds")
                         .Help("Wall clock minus the task's partition clock (event time), per partition")
                         .Register(r)),
        profile(BuildGauge()
                    .Name("boxwatch_worker_profile_info")
                    .Help("The profile in force (value 1), by name and version")
                    .Register(r)) {}

  Family<Counter>& records_in;
  Family<Counter>& decode_failures;
  Family<Counter>& dead_letters;
  Family<Gauge>& lag;
  Family<Counter>& alerts;
  Histogram& event_to_alert;
  Histogram& ingest_to_alert;
  Histogram& emit_to_commit;
  Histogram& commit_seconds;
  Counter& transactions;
  Counter& transaction_records;
  Counter& transaction_failures;
  Family<Counter>& rebalances;
  Gauge& tasks;
  Gauge& state_disk_full;
  Gauge& restore_in_progress;
  Family<Gauge>& restore_remaining;
  Counter& restore_records;
  Histogram& restore_seconds;
  Family<Gauge>& containers;
  Gauge& store_bytes;
  Gauge& block_cache;
  Counter& feedback;
  Counter& reference_wait_expired;
  Gauge& gated;
  Counter& expired;
  Family<Counter>& releases;
  Family<Counter>& state_writes;
  Histogram& record_wait;
  Family<Histogram>& commit_phase;
  Family<Counter>& state_write_bytes;
  Counter& clock_capped;
  Family<Gauge>& clock_behind;
  Family<Gauge>& profile;
  Gauge* profile_in_force = nullptr;

  std::array<std::string, kInputs> inputs;
  // Resolved label sets, so the per-record path is one atomic add.
  std::array<std::vector<Counter*>, kInputs> records_by_partition;
  std::map<std::pair<int, int32_t>, Gauge*> lag_gauges;
  std::mutex restoring_mu;  // restores run on several threads
  std::set<int32_t> restoring;
};

WorkerProbe::WorkerProbe(prometheus::Registry& registry, std::array<std::string, kInputs> inputs)
    : impl_(std::make_unique<Impl>(registry)) {
  impl_->inputs = std::move(inputs);
  for (const auto& topic : impl_->inputs) impl_->decode_failures.Add({{"topic", topic}});
  for (const char* kind : {"assigned", "revoked", "lost"}) impl_->rebalances.Add({{"kind", kind}});
}

void WorkerProbe::KnownReasons(const std::vector<std::string>& reasons) {
  for (const auto& r : reasons) impl_->dead_letters.Add({{"reason", r}});
  for (const char* kind : {"quiet", "capacity"}) impl_->releases.Add({{"kind", kind}});
}

void WorkerProbe::KnownRegions(const std::vector<std::string>& regions) {
  for (const char* p : {"LOW", "MEDIUM", "HIGH", "CRITICAL"}) {
    impl_->alerts.Add({{"priority", p}, {"region", "none"}});
    for (const auto& r : regions) impl_->alerts.Add({{"priority", p}, {"region", r}});
  }
}
WorkerProbe::~WorkerProbe() = default;

void WorkerProbe::RecordsIn(int input, int32_t partition, int64_t records) {
  auto& v = impl_->records_by_partition[input];
  if (partition >= static_cast<int32_t>(v.size())) v.resize(partition + 1, nullptr);
  Counter*& c = v[partition];
  if (c == nullptr) c = &impl_->records_in.Add({{"topic", impl_->inputs[input]}, {"partition", std::to_string(partition)}});
  c->Increment(static_cast<double>(records));
}

void WorkerProbe::DecodeFailure(int input) { impl_->decode_failures.Add({{"topic", impl_->inputs[input]}}).Increment(); }
void WorkerProbe::DeadLetter(const std::string& reason) { impl_->dead_letters.Add({{"reason", reason}}).Increment(); }

void WorkerProbe::Lag(int input, int32_t partition, int64_t records) {
  Gauge*& g = impl_->lag_gauges[{input, partition}];
  if (g == nullptr) g = &impl_->lag.Add({{"topic", impl_->inputs[input]}, {"partition", std::to_string(partition)}});
  g->Set(static_cast<double>(records));
}

void WorkerProbe::PartitionGone(int32_t partition) {
  // Series of a partition this worker no longer owns would keep their last value.
  const std::string p = std::to_string(partition);
  impl_->containers.Remove(&impl_->containers.Add({{"partition", p}}));
  impl_->restore_remaining.Remove(&impl_->restore_remaining.Add({{"partition", p}}));
  impl_->clock_behind.Remove(&impl_->clock_behind.Add({{"partition", p}}));
  impl_->restoring.erase(partition);
  impl_->restore_in_progress.Set(impl_->restoring.empty() ? 0 : 1);
  for (int i = 0; i < kInputs; ++i) {
    auto it = impl_->lag_gauges.find({i, partition});
    if (it != impl_->lag_gauges.end()) {
      impl_->lag.Remove(it->second);
      impl_->lag_gauges.erase(it);
    }
  }
}

void WorkerProbe::Alert(const std::string& priority, const std::vector<std::string>& regions, double event_to_alert_s,
                        double ingest_to_alert_s, double emit_to_commit_s) {
  if (regions.empty()) impl_->alerts.Add({{"priority", priority}, {"region", "none"}}).Increment();
  for (const auto& r : regions) impl_->alerts.Add({{"priority", priority}, {"region", r}}).Increment();
  impl_->event_to_alert.Observe(std::max(0.0, event_to_alert_s));
  if (ingest_to_alert_s >= 0) impl_->ingest_to_alert.Observe(ingest_to_alert_s);
  impl_->emit_to_commit.Observe(std::max(0.0, emit_to_commit_s));
}

void WorkerProbe::TransactionCommitted(double seconds, int64_t records) {
  impl_->commit_seconds.Observe(seconds);
  impl_->transactions.Increment();
  impl_->transaction_records.Increment(static_cast<double>(records));
}
WorkerProbe::RecordWaits::RecordWaits(WorkerProbe& probe)
    : probe_(probe), counts_(monitoring::LatencyBuckets().size() + 1, 0.0) {}
WorkerProbe::RecordWaits::~RecordWaits() {
  if (any_) probe_.impl_->record_wait.ObserveMultiple(counts_, sum_);
}
void WorkerProbe::RecordWaits::Add(double seconds) {
  // The bucket Histogram::Observe would pick: the first bound at or above.
  const auto& bounds = monitoring::LatencyBuckets();
  counts_[static_cast<size_t>(std::lower_bound(bounds.begin(), bounds.end(), seconds) - bounds.begin())] += 1;
  sum_ += seconds;
  any_ = true;
}
void WorkerProbe::CommitPhase(const char* phase, double seconds) {
  impl_->commit_phase.Add({{"phase", phase}}, monitoring::LatencyBuckets()).Observe(seconds);
}
void WorkerProbe::TransactionFailed() { impl_->transaction_failures.Increment(); }
void WorkerProbe::Rebalance(const char* kind) { impl_->rebalances.Add({{"kind", kind}}).Increment(); }
void WorkerProbe::Tasks(size_t n) { impl_->tasks.Set(static_cast<double>(n)); }
void WorkerProbe::StateDiskFull(bool full) { impl_->state_disk_full.Set(full ? 1 : 0); }

void WorkerProbe::RestoreStarted(int32_t partition, int64_t records) {
  std::lock_guard lock(impl_->restoring_mu);
  impl_->restoring.insert(partition);
  impl_->restore_in_progress.Set(1);
  impl_->restore_remaining.Add({{"partition", std::to_string(partition)}}).Set(static_cast<double>(records));
}
void WorkerProbe::RestoreProgress(int32_t partition, int64_t remaining) {
  impl_->restore_remaining.Add({{"partition", std::to_string(partition)}}).Set(static_cast<double>(remaining));
}
void WorkerProbe::RestoreFinished(int32_t partition, double seconds, int64_t records) {
  std::lock_guard lock(impl_->restoring_mu);
  impl_->restoring.erase(partition);
  impl_->restore_in_progress.Set(impl_->restoring.empty() ? 0 : 1);
  impl_->restore_remaining.Add({{"partition", std::to_string(partition)}}).Set(0);
  impl_->restore_records.Increment(static_cast<double>(records));
  impl_->restore_seconds.Observe(seconds);
}
void WorkerProbe::State(int32_t partition, uint64_t containers) {
  impl_->containers.Add({{"partition", std::to_string(partition)}}).Set(static_cast<double>(containers));
}
void WorkerProbe::Store(uint64_t size_bytes, uint64_t block_cache_bytes) {
  impl_->store_bytes.Set(static_cast<double>(size_bytes));
  impl_->block_cache.Set(static_cast<double>(block_cache_bytes));
}
void WorkerProbe::Feedback(uint64_t entries) { impl_->feedback.Increment(static_cast<double>(entries)); }
void WorkerProbe::ReferenceWaitExpired() { impl_->reference_wait_expired.Increment(); }
void WorkerProbe::Gated(size_t containers) { impl_->gated.Set(static_cast<double>(containers)); }
void WorkerProbe::Expired(uint64_t containers) { impl_->expired.Increment(static_cast<double>(containers)); }
void WorkerProbe::Releases(const char* kind, uint64_t containers) {
  impl_->releases.Add({{"kind", kind}}).Increment(static_cast<double>(containers));
}
void WorkerProbe::StateWrites(const char* part, uint64_t records, uint64_t bytes) {
  if (records == 0) return;
  impl_->state_writes.Add({{"part", part}}).Increment(static_cast<double>(records));
  impl_->state_write_bytes.Add({{"part", part}}).Increment(static_cast<double>(bytes));
}
void WorkerProbe::ClockCapped(uint64_t events) { impl_->clock_capped.Increment(static_cast<double>(events)); }
void WorkerProbe::PartitionClockBehind(int32_t partition, double seconds) {
  impl_->clock_behind.Add({{"partition", std::to_string(partition)}}).Set(seconds);
}
void WorkerProbe::ProfileVersion(const std::string& name, const std::string& version) {
  if (impl_->profile_in_force) impl_->profile.Remove(impl_->profile_in_force);
  impl_->profile_in_force = &impl_->profile.Add({{"name", name}, {"version", version}});
  impl_->profile_in_force->Set(1);
}

// ------------------------------------------------------------ librdkafka statistics

struct KafkaStatsProbe::Impl {
  Impl(prometheus::Registry& r, std::string client_role)
      : client(std::move(client_role)),
        replyq(BuildGauge()
                   .Name("boxwatch_kafka_replyq")
                   .Help("librdkafka: operations waiting in the reply queue")
                   .Register(r)
                   .Add({{"client", client}})),
        queued(BuildGauge()
                   .Name("boxwatch_kafka_queued_messages")
                   .Help("librdkafka: messages in the producer queue (msg_cnt)")
                   .Register(r)
                   .Add({{"client", client}})),
        tx_bytes(BuildCounter()
                     .Name("boxwatch_kafka_tx_bytes_total")
                     .Help("librdkafka: bytes sent to brokers")
                     .Register(r)
                     .Add({{"client", client}})),
        rx_bytes(BuildCounter()
                     .Name("boxwatch_kafka_rx_bytes_total")
                     .Help("librdkafka: bytes received from brokers")
                     .Register(r)
                     .Add({{"client", client}})),
        errors(BuildCounter()
                   .Name("boxwatch_kafka_broker_errors_total")
                   .Help("librdkafka: transmit and receive errors over all brokers")
                   .Register(r)
                   .Add({{"client", client}})),
        timeouts(BuildCounter()
                     .Name("boxwatch_kafka_request_timeouts_total")
                     .Help("librdkafka: requests that timed out")
                     .Register(r)
                     .Add({{"client", client}})),
        rtt(BuildGauge()
                .Name("boxwatch_kafka_broker_rtt_seconds")
                .Help("librdkafka: average broker round-trip time over the last statistics window")
                .Register(r)),
        parse_failures(BuildCounter()
                           .Name("boxwatch_kafka_stats_parse_failures_total")
                           .Help("librdkafka statistics documents that did not parse")
                           .Register(r)
                           .Add({{"client", client}})) {}

  // librdkafka's figures are cumulative per client: add the growth.
  void Advance(Counter& c, double& last, double now) {
    c.Increment(now >= last ? now - last : now);
    last = now;
  }

  std::string client;
  Gauge& replyq;
  Gauge& queued;
  Counter& tx_bytes;
  Counter& rx_bytes;
  Counter& errors;
  Counter& timeouts;
  Family<Gauge>& rtt;
  Counter& parse_failures;
  std::mutex mu;
  double last_tx = 0, last_rx = 0, last_errors = 0, last_timeouts = 0;
};

KafkaStatsProbe::KafkaStatsProbe(prometheus::Registry& registry, std::string client)
    : impl_(std::make_unique<Impl>(registry, std::move(client))) {}
KafkaStatsProbe::~KafkaStatsProbe() = default;

void KafkaStatsProbe::Update(std::string_view json) {
  google::protobuf::Struct doc;
  if (!google::protobuf::util::JsonStringToMessage(std::string(json), &doc).ok()) {
    impl_->parse_failures.Increment();
    return;
  }
  auto number = [](const google::protobuf::Struct& s, const char* key) {
    auto it = s.fields().find(key);
    return it == s.fields().end() ? 0.0 : it->second.number_value();
  };
  std::lock_guard lock(impl_->mu);
  impl_->replyq.Set(number(doc, "replyq"));
  impl_->queued.Set(number(doc, "msg_cnt"));
  impl_->Advance(impl_->tx_bytes, impl_->last_tx, number(doc, "tx_bytes"));
  impl_->Advance(impl_->rx_bytes, impl_->last_rx, number(doc, "rx_bytes"));
  double errors = 0, timeouts = 0;
  auto brokers = doc.fields().find("brokers");
  if (brokers != doc.fields().end()) {
    for (const auto& [name, b] : brokers->second.struct_value().fields()) {
      const auto& fields = b.struct_value();
      errors += number(fields, "txerrs") + number(fields, "rxerrs");
      timeouts += number(fields, "req_timeouts");
      auto rtt = fields.fields().find("rtt");
      const double avg_us = rtt == fields.fields().end() ? 0 : number(rtt->second.struct_value(), "avg");
      // Bootstrap and coordinator pseudo-brokers have no traffic of their own.
      if (number(fields, "nodeid") >= 0 && avg_us > 0)
        impl_->rtt.Add({{"client", impl_->client}, {"broker", std::to_string(static_cast<int>(number(fields, "nodeid")))}})
            .Set(avg_us / 1e6);
    }
  }
  impl_->Advance(impl_->errors, impl_->last_errors, errors);
  impl_->Advance(impl_->timeouts, impl_->last_timeouts, timeouts);
}

}  // namespace boxwatch::pipeline
