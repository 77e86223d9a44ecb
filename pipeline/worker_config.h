#pragma once
// Configuration of `boxwatch worker`: one YAML file plus environment
// overrides (BOXWATCH_<KEY in upper case>, e.g. BOXWATCH_INSTANCE_ID for
// instance_id). Load validates everything and reports every problem at once;
// docs/configuration.md lists each option. Every option below states its
// default and unit.

#include <cstdint>
#include <map>
#include <string>

#include "core/result.h"
#include "pipeline/kafka_config.h"

namespace boxwatch::pipeline {

struct WorkerConfig {
  std::string bootstrap = "127.0.0.1:9092";  // Kafka bootstrap servers
  std::string group_id = "boxwatch-workers";  // consumer group of all workers
  std::string instance_id;                    // static member id (pod name); required
  std::string topic_prefix;                   // prepended to every topic name
  std::string state_dir = "/var/lib/boxwatch/state";  // RocksDB directory
  std::string profile_file;  // profile YAML; empty: the built-in default profile
  std::string metrics_listen = "0.0.0.0:9464";  // /metrics, /healthz, /readyz (host:port); empty: off
  int64_t commit_interval_ms = 100;       // ms between transactions
  int64_t max_records_per_commit = 5000;  // records; a transaction commits early when reached
  // Under backlog (when a transaction is due, at least
  // backlog_threshold_records input records wait, in the worker and on the
  // broker, as many as arrive in backlog_threshold_ms at the input's
  // recent rate, and more than the transaction holds), the transaction stays
  // open up to these instead, as long as that holds: fewer state writes per
  // event while catching up, the usual cadence once caught up
  // (docs/worker.md "Commit cadence"). 0: 5000 ms and 250,000 records, or
  // commit_interval_ms and max_records_per_commit when those are larger (the
  // interval at most half of transaction_timeout_ms); Parse fills them in.
  int64_t backlog_threshold_records = 50000;
  int64_t backlog_threshold_ms = 1000;  // ms of input at its recent arrival rate; 0: records alone
  int64_t backlog_commit_interval_ms = 0;
  int64_t backlog_records_per_commit = 0;
  int64_t allowed_lateness_ms = 300000;   // ms; older events are dead-lettered as late (5 min)
  int64_t idle_wait_ms = 2000;   // ms a task waits for a partition known to hold unread records
  // ms evaluation waits for the feedback horizons of every task to move
  // before it goes on without them (a task down or far behind)
  int64_t reference_wait_ms = 30000;
  int64_t max_future_ms = 600000;         // ms an event time may lead the clock (10 min)
  // ms a caught-up task waits, with containers holding unevaluated items,
  // before it moves its partition clock to the wall clock, which releases
  // every quiet container up to its latest event (nothing becomes late).
  // Keeps alerts flowing when input stops; 0 disables it (output then depends
  // only on the input, never on pauses). Default: 5 min.
  int64_t idle_flush_ms = 300000;
  // bytes; larger records are dead-lettered as `oversized`, with the first
  // max_value_bytes of the value. Must leave kRecordOverheadBytes of room
  // under the producer's message.max.bytes (so a dead letter always fits).
  // Default: 900 KiB, under librdkafka's and Kafka's 1 MB defaults.
  int64_t max_value_bytes = 900 << 10;
  // bytes; a manifest, scan or outcome that would make its container's
  // stored state larger than this less the GPS reserve is dead-lettered as
  // `state_too_large` and the state stays as it was. 0 (the default): the producer's message.max.bytes minus
  // kRecordOverheadBytes, so every changelog record fits. At least
  // kMinStateBytes.
  int64_t max_state_bytes = 0;
  int64_t state_ttl_ms = 30LL * 24 * 3600 * 1000;  // ms of event time after the last event before state expires
  // ms of partition clock (event time, docs/worker.md "Event time") between
  // expiry sweeps of a task's state. A sweep reads every stored state, so
  // it is kept rare: expiry needs no finer grain than a day when state lives
  // state_ttl_ms (30 days). Default: 24 h.
  int64_t expiry_sweep_interval_ms = 24LL * 3600 * 1000;
  int64_t cache_max_entries = 100000;     // container states kept decoded in memory per task
  // Records librdkafka fetches ahead per input partition, each in a queue
  // of its own (librdkafka's queued.min.messages, unless the Kafka
  // properties set it); bounds the memory for input fetched ahead.
  int64_t max_buffered_records = 100000;
  int64_t block_cache_bytes = 64LL << 20;  // RocksDB block cache, bytes
  int64_t write_buffer_bytes = 16LL << 20;  // RocksDB memtable per partition, bytes
  // Commits gathered in memory per partition before they go to RocksDB
  // (state::StoreOptions::commit_overlay_bytes), bytes; 0 writes through.
  int64_t commit_overlay_bytes = 8LL << 20;
  int64_t commit_overlay_commits = 64;  // and at most this many commits
  int64_t transaction_timeout_ms = 60000;   // Kafka transaction timeout, ms
  // Partitions restored from the changelog side by side (a reader thread
  // each) when several are assigned at once.
  int64_t restore_threads = 4;
  // processing_guarantee: exactly_once (default; each commit is one Kafka
  // transaction) or at_least_once (no transactions: outputs are flushed,
  // then state, then the consumed offsets are committed; a crash can repeat
  // outputs but never loses one).
  bool exactly_once = true;
  // state_owner: refuse (default) or adopt. Task state (local or restored
  // from the changelog) names the consumer group and topic prefix that wrote
  // it; a worker of another group refuses to start on it (exit code 3),
  // because that state says what another pipeline has already seen and
  // would make this group's input late or its alert ids repeat. adopt takes
  // it over: the state then belongs to this group.
  bool adopt_foreign_state = false;
  // compaction_cpu_priority: normal (default) or low. low runs RocksDB's
  // compactions at nice 19, so that rewriting a partition's bottom level
  // (seconds of ZSTD) takes only the CPU the processing thread leaves
  // (state::StoreOptions::low_priority_compactions).
  bool low_priority_compactions = false;
  // The producer's compression of the state changelog (librdkafka's
  // compression.type for that topic alone; alerts and dead letters keep the
  // client's, lz4): none, lz4, zstd, snappy or gzip. Default none: a
  // changelog record is one container part of a few hundred bytes, which
  // lz4 shrinks by about 38 % for 5-8 % of the worker's CPU
  // (docs/worker.md "Compression").
  std::string changelog_compression = "none";
  // librdkafka properties file (kafka_config.h); empty: none. Its entries
  // come first, then the `kafka:` mapping, then BOXWATCH_RDKAFKA_* variables.
  std::string kafka_config;
  // The resolved librdkafka properties every Kafka client of the worker
  // gets (consumer, producer, control, restore, admin), ${file:}/${env:}
  // references replaced. Holds secrets: never log it.
  KafkaProperties kafka;

  // Bytes kept free under the producer's message.max.bytes for a record's
  // key, headers and framing.
  static constexpr int64_t kRecordOverheadBytes = 64 << 10;
  // The least max_state_bytes: 320 KiB of it is kept for the GPS window
  // (fixes join unchecked; their text fields are bounded at decoding), the
  // rest holds declarations, which are checked as they join.
  static constexpr int64_t kMinStateBytes = 512 << 10;
  // Room kept in max_state_bytes for what GPS fixes add to a state (the
  // engine's window of bounded text fields and GPS indicators): fixes join
  // without a size check, declarations are checked against max_state_bytes
  // minus this.
  static constexpr int64_t kGpsGrowthReserveBytes = 320 << 10;
  // The largest record the worker's producer sends: `kafka: message.max.bytes`
  // when set, else librdkafka's default (1,000,000 bytes).
  int64_t OutputRecordLimit() const;
  // max_state_bytes, or its default.
  int64_t StateLimit() const;

  // Parses YAML text (source names the file in messages), applies the
  // environment `env` (name -> value), validates.
  static Result<WorkerConfig> Parse(const std::string& yaml_text, const std::string& source,
                                    const std::map<std::string, std::string>& env);
  static Result<WorkerConfig> Load(const std::string& path);  // + the process environment
};

}  // namespace boxwatch::pipeline
