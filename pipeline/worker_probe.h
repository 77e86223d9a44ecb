#pragma once
// Metrics of `boxwatch worker` (CONVENTIONS.md "Logging and metrics"): the
// worker calls these methods, never the Prometheus API. Labels are bounded:
// topic is the input role (manifests, scans, gps, outcomes), partition is
// below the topic set's partition count, reason and priority are enums, and
// region comes from the profile's region map. Counters are atomic, so
// scrapes from the endpoint's threads are safe while the worker runs.

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace prometheus {
class Registry;
}

namespace boxwatch::pipeline {

class WorkerProbe {
 public:
  static constexpr int kInputs = 4;  // manifests, scans, gps, outcomes
  // `inputs` names the four input roles for labels.
  WorkerProbe(prometheus::Registry& registry, std::array<std::string, kInputs> inputs);
  ~WorkerProbe();

  // Records read from an input partition (counted per poll pass).
  void RecordsIn(int input, int32_t partition, int64_t records);
  void DecodeFailure(int input);
  void DeadLetter(const std::string& reason);
  void Lag(int input, int32_t partition, int64_t records);
  void PartitionGone(int32_t partition);
  // One emitted alert: its priority name, regions, and latencies (seconds)
  // from its event time, from ingest and from its emit-time header,
  // observed once its transaction commits.
  void Alert(const std::string& priority, const std::vector<std::string>& regions, double event_to_alert_s,
             double ingest_to_alert_s, double emit_to_commit_s);
  void TransactionCommitted(double seconds, int64_t records);
  // How long input records waited in the worker before a pass took them:
  // counted per pass (RecordWaits::Add per record, no atomics), handed over
  // once when it goes out of scope.
  class RecordWaits {
   public:
    explicit RecordWaits(WorkerProbe& probe);
    ~RecordWaits();
    void Add(double seconds);

   private:
    WorkerProbe& probe_;
    std::vector<double> counts_;  // per bucket of monitoring::LatencyBuckets, then +Inf
    double sum_ = 0;
    bool any_ = false;
  };
  // How long one phase of a commit cycle took (worker_commit.cc CommitCycle).
  void CommitPhase(const char* phase, double seconds);
  void TransactionFailed();
  void Rebalance(const char* kind);  // assigned, revoked, lost
  void Tasks(size_t n);
  void StateDiskFull(bool full);
  // The restore calls may come from several threads at once.
  void RestoreStarted(int32_t partition, int64_t records);
  void RestoreProgress(int32_t partition, int64_t remaining);
  void RestoreFinished(int32_t partition, double seconds, int64_t records);
  void State(int32_t partition, uint64_t containers);
  void Store(uint64_t size_bytes, uint64_t block_cache_bytes);
  void Feedback(uint64_t entries);
  // Evaluation stopped waiting for the feedback horizons (reference_wait_ms).
  void ReferenceWaitExpired();
  // Containers whose evaluation waits for the feedback horizons.
  void Gated(size_t containers);
  void Expired(uint64_t containers);
  // Event time (docs/worker.md "Event time"): containers released by the
  // partition clock ("quiet") or by their count of unevaluated items
  // ("capacity"); events whose container progress was capped (a clock ahead
  // of the wall clock or of the partition clock + lateness); and how far a
  // partition's clock is behind the wall clock.
  void Releases(const char* kind, uint64_t containers);
  // State records of one commit for one part ("movement", "declaration",
  // "evaluation"): how many, and their keys' and values' bytes.
  void StateWrites(const char* part, uint64_t records, uint64_t bytes);
  void ClockCapped(uint64_t events);
  void PartitionClockBehind(int32_t partition, double seconds);
  void ProfileVersion(const std::string& name, const std::string& version);
  // Series start at zero for every known label value, so rates and alerts
  // work before the first event: the dead-letter reasons, and the regions of
  // the profile in force.
  void KnownReasons(const std::vector<std::string>& reasons);
  void KnownRegions(const std::vector<std::string>& regions);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Key figures of librdkafka's statistics (statistics.interval.ms) as
// boxwatch_kafka_* gauges labelled by client role. Feed it each JSON
// document the client's stats callback delivers. Thread-safe.
class KafkaStatsProbe {
 public:
  KafkaStatsProbe(prometheus::Registry& registry, std::string client);
  ~KafkaStatsProbe();
  // Parses one statistics document; a document that does not parse is
  // counted and otherwise ignored.
  void Update(std::string_view json);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace boxwatch::pipeline
