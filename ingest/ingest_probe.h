#pragma once
// Metrics of `boxwatch ingest` (CONVENTIONS.md: one probe per component).
// Labels are bounded: formats, sources, topics, results and the stable
// dead-letter reasons of docs/formats.md. Thread-safe.

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/registry.h>

#include <string>
#include <vector>

namespace boxwatch::ingest {

class IngestProbe {
 public:
  explicit IngestProbe(prometheus::Registry& r)
      : raw_(prometheus::BuildCounter()
                 .Name("boxwatch_ingest_raw_messages_total")
                 .Help("Raw messages read (Kafka records and files), by format and source")
                 .Register(r)),
        out_(prometheus::BuildCounter()
                 .Name("boxwatch_ingest_records_total")
                 .Help("Canonical records produced, by topic")
                 .Register(r)),
        dead_(prometheus::BuildCounter()
                  .Name("boxwatch_ingest_dead_letters_total")
                  .Help("Parts of raw messages sent to the dead-letter topic, by reason")
                  .Register(r)),
        files_(prometheus::BuildCounter()
                   .Name("boxwatch_ingest_files_total")
                   .Help("Drop-directory files handled, by result (done, failed, already_ingested)")
                   .Register(r)),
        txn_(prometheus::BuildCounter()
                 .Name("boxwatch_ingest_transactions_total")
                 .Help("Transactions, by result (committed, aborted)")
                 .Register(r)) {
    for (const char* f : {"cuscar", "n42", "unknown"}) {
      for (const char* s : {"kafka", "file"}) raw_.Add({{"format", f}, {"source", s}});
    }
    for (const char* t : {"manifests", "scans"}) out_.Add({{"topic", t}});
    for (const char* f : {"done", "failed", "already_ingested"}) files_.Add({{"result", f}});
    for (const char* t : {"committed", "aborted"}) txn_.Add({{"result", t}});
    // Every stable dead-letter reason (docs/formats.md) from zero.
    KnownReasons({"edifact_truncated", "edifact_syntax", "edifact_envelope", "edifact_count", "edifact_charset",
                  "cuscar_type", "cuscar_date", "cuscar_measure", "cuscar_function", "cuscar_version", "cuscar_link",
                  "cuscar_container", "cuscar_qualifier", "n42_size", "n42_doctype", "n42_xml", "n42_root", "n42_time",
                  "n42_container", "n42_site", "n42_counts", "n42_empty", "ingest_format", "ingest_too_large", "ingest_time"});
  }
  void Raw(const char* format, const char* source) { raw_.Add({{"format", format}, {"source", source}}).Increment(); }
  void Out(const char* topic, double n) { out_.Add({{"topic", topic}}).Increment(n); }
  void Dead(const std::string& reason) { dead_.Add({{"reason", reason}}).Increment(); }
  // Starts these reasons' series at zero.
  void KnownReasons(const std::vector<std::string>& reasons) {
    for (const auto& r : reasons) dead_.Add({{"reason", r}});
  }
  void File(const char* result) { files_.Add({{"result", result}}).Increment(); }
  void Txn(bool committed) { txn_.Add({{"result", committed ? "committed" : "aborted"}}).Increment(); }

 private:
  prometheus::Family<prometheus::Counter>& raw_;
  prometheus::Family<prometheus::Counter>& out_;
  prometheus::Family<prometheus::Counter>& dead_;
  prometheus::Family<prometheus::Counter>& files_;
  prometheus::Family<prometheus::Counter>& txn_;
};

}  // namespace boxwatch::ingest
