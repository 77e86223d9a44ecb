#pragma once
// `boxwatch ingest`: the adapter between outside formats and the pipeline.
// It reads raw messages from boxwatch.raw.cuscar and boxwatch.raw.n42 (a
// consumer group, read_committed) and, optionally, files dropped into a
// directory, converts them (convert.h) and produces the canonical records
// to boxwatch.manifests / boxwatch.scans (keyed by container number,
// timestamped with the event time) and what cannot be converted to
// boxwatch.deadletter, with the original bytes, a stable reason and the
// position.
//
// Exactly once: each batch of raw records is one Kafka transaction holding
// its outputs and the raw offsets; each file is one transaction holding its
// outputs and a record on boxwatch.ingest-files (key: file name and content
// hash), read back at start, so a file is never ingested twice, even when
// the process dies between the commit and moving the file to done/.
// A file whose every part was rejected goes to failed/.
//
// One thread: Run() until *stop. Errors that the next transaction can
// repair (an abortable transaction) rewind to the committed offsets; a
// fenced or fatal producer ends Run() with the error.

#include <atomic>
#include <cstdint>
#include <memory>
#include <map>
#include <set>
#include <string>

#include "core/result.h"
#include "ingest/convert.h"
#include "pipeline/kafka_client.h"
#include "pipeline/topics.h"

namespace prometheus {
class Registry;
}

namespace boxwatch::ingest {

struct IngestOptions {
  std::string bootstrap;
  std::string topic_prefix;
  std::string instance_id = "ingest-0";  // transactional id and static group member
  std::string group_id = "boxwatch-ingest";
  bool kafka_input = true;     // read the raw topics
  std::string watch_dir;       // "": no drop directory
  int64_t watch_interval_ms = 1000;  // ms between directory scans
  size_t max_file_bytes = 16 << 20;  // bytes; larger files go to failed/
  size_t batch_records = 500;  // raw records per transaction at most
  size_t batch_bytes = 32 << 20;  // bytes of raw records per transaction at most (one record may exceed it)
  N42Options n42;
  pipeline::KafkaProperties kafka;  // extra librdkafka properties for every client
};

class IngestProbe;

class Ingestor {
 public:
  static Result<std::unique_ptr<Ingestor>> Create(const IngestOptions& options, prometheus::Registry& registry);
  ~Ingestor();
  [[nodiscard]] Status Run(const std::atomic<bool>& stop);
  // Empty when ready (producer initialised, ledger read), else why not.
  std::string NotReady() const;

  struct Stats {
    uint64_t raw_records = 0, files = 0, canonical = 0, dead_letters = 0, transactions = 0;
  };
  Stats stats() const;

 private:
  explicit Ingestor(const IngestOptions& options);
  Status Start();
  Status KafkaBatch();
  Status ScanDirectory();
  Status IngestFile(const std::string& name);
  // Produces a conversion's records and dead letters into the open transaction.
  Status ProduceConversion(const Conversion& c, const char* format, std::string_view raw, std::string_view raw_key,
                           const std::vector<pipeline::Header>& source);
  Status Rewind();

  IngestOptions options_;
  pipeline::TopicNames names_;
  std::unique_ptr<pipeline::KafkaProducer> producer_;
  std::unique_ptr<pipeline::KafkaConsumer> consumer_;
  std::unique_ptr<IngestProbe> probe_;
  std::map<std::string, std::string> ledger_;  // files already ingested: "<name>#<hash>" -> done/failed
  std::atomic<bool> ready_{false};
  mutable std::atomic<uint64_t> raw_records_{0}, files_{0}, canonical_{0}, dead_letters_{0}, transactions_{0};
  int64_t last_scan_ms_ = 0;
  class Listener;
  std::unique_ptr<Listener> listener_;
};

}  // namespace boxwatch::ingest
