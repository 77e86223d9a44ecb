#include "ingest/ingestor.h"

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/registry.h>

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <sstream>
#include <thread>

#include "core/log.h"
#include "ingest/ingest_probe.h"
#include "core/types.h"
#include "pipeline/topic_reader.h"

namespace boxwatch::ingest {

using namespace std::chrono_literals;
namespace fs = std::filesystem;

namespace {
constexpr const char* kLog = "ingest";

uint64_t Fnv64(std::string_view s) {
  uint64_t h = 1469598103934665603ULL;
  for (unsigned char c : s) h = (h ^ c) * 1099511628211ULL;
  return h;
}

std::string Hex(uint64_t v) {
  char b[20];
  std::snprintf(b, sizeof b, "%016llx", static_cast<unsigned long long>(v));
  return b;
}
}  // namespace

// Partitions taken away while a batch is being collected: their records are
// dropped from the batch (the new owner reads them from the committed offset).
class Ingestor::Listener final : public pipeline::RebalanceListener {
 public:
  void OnAssigned(const std::vector<pipeline::TopicPartition>& p) override {
    std::lock_guard lock(mu_);
    for (const auto& tp : p) owned_.insert(tp);
  }
  void OnRevoked(const std::vector<pipeline::TopicPartition>& p) override {
    std::lock_guard lock(mu_);
    for (const auto& tp : p) {
      owned_.erase(tp);
      revoked_.insert(tp);
    }
  }
  // A batch starts: forget earlier revocations.
  void BatchStarts() {
    std::lock_guard lock(mu_);
    revoked_.clear();
  }
  // Owned now and not revoked since the batch started (a partition revoked
  // and assigned again restarts from its committed offset: what the batch
  // holds of it would be read twice).
  bool OwnsThroughout(const pipeline::TopicPartition& tp) const {
    std::lock_guard lock(mu_);
    return owned_.count(tp) > 0 && revoked_.count(tp) == 0;
  }
  bool Any() const {
    std::lock_guard lock(mu_);
    return !owned_.empty();
  }

 private:
  mutable std::mutex mu_;
  std::set<pipeline::TopicPartition> owned_;
  std::set<pipeline::TopicPartition> revoked_;
};

Ingestor::Ingestor(const IngestOptions& options) : options_(options), names_(options.topic_prefix) {}
Ingestor::~Ingestor() = default;

Result<std::unique_ptr<Ingestor>> Ingestor::Create(const IngestOptions& options, prometheus::Registry& registry) {
  std::unique_ptr<Ingestor> in(new Ingestor(options));
  in->probe_ = std::make_unique<IngestProbe>(registry);
  in->listener_ = std::make_unique<Listener>();
  InitXml();
  return in;
}

std::string Ingestor::NotReady() const { return ready_ ? "" : "starting: transactions or the file ledger not ready"; }

Ingestor::Stats Ingestor::stats() const {
  return {raw_records_.load(), files_.load(), canonical_.load(), dead_letters_.load(), transactions_.load()};
}

Status Ingestor::Start() {
  auto producer = pipeline::KafkaProducer::Create(
      {.bootstrap = options_.bootstrap,
       .transactional_id = options_.topic_prefix + "boxwatch-ingest-" + options_.instance_id,
       .extra = options_.kafka});
  if (!producer.ok()) return producer.error();
  producer_ = std::move(producer).value();
  if (Status s = producer_->InitTransactions(60s); !s.ok()) return s;
  if (!options_.watch_dir.empty()) {
    for (const char* sub : {"done", "failed"}) {
      std::error_code ec;
      fs::create_directories(fs::path(options_.watch_dir) / sub, ec);
      if (ec) return Error{Errc::kIo, "cannot create " + (fs::path(options_.watch_dir) / sub).string() + ": " + ec.message()};
    }
    const std::string ledger = names_.Name(pipeline::TopicRole::kIngestFiles);
    auto records = pipeline::ReadToEnd(options_.bootstrap, ledger, 1, 60s, options_.group_id + "-ledger", options_.kafka);
    if (!records.ok()) return Error{records.error().code, "reading " + ledger + ": " + records.error().message};
    for (const auto& r : *records) {
      ledger_[r.key] = r.value.find("\"result\":\"failed\"") != std::string::npos ? "failed" : "done";
    }
  }
  if (options_.kafka_input) {
    auto consumer = pipeline::KafkaConsumer::Create({.bootstrap = options_.bootstrap,
                                                     .group_id = options_.topic_prefix + options_.group_id,
                                                     .group_instance_id = options_.instance_id,
                                                     .read_committed = true,
                                                     .extra = options_.kafka,
                                                     .listener = listener_.get()});
    if (!consumer.ok()) return consumer.error();
    consumer_ = std::move(consumer).value();
    if (Status s = consumer_->Subscribe({names_.Name(pipeline::TopicRole::kRawCuscar),
                                         names_.Name(pipeline::TopicRole::kRawN42)});
        !s.ok()) {
      return s;
    }
  }
  ready_ = true;
  return Status::Ok();
}

// Canonical records Kafka would refuse (over the producer's size limit, or
// an event time brokers reject: unset, or more than an hour ahead) become
// problems of their raw message, so no batch fails the same way forever.
void Screen(Conversion* c) {
  constexpr size_t kMaxRecord = 900 << 10;
  const int64_t latest = NowMs() + 3600 * 1000;
  std::erase_if(c->records, [&](const CanonicalRecord& r) {
    std::string why;
    if (r.value.size() > kMaxRecord) {
      why = "the " + std::string(r.topic == CanonicalRecord::kManifests ? "manifest" : "scan") + " of " +
            r.key.substr(0, 32) + " is " + std::to_string(r.value.size()) + " bytes, over " +
            std::to_string(kMaxRecord);
    } else if (r.timestamp_ms <= 0 || r.timestamp_ms > latest) {
      why = "the event time of " + r.key.substr(0, 32) + " (" + std::to_string(r.timestamp_ms) +
            " ms) is unset or more than an hour ahead of the clock";
    }
    if (why.empty()) return false;
    c->rejected.push_back({why.find("bytes") != std::string::npos ? "ingest_too_large" : "ingest_time", "", why});
    return true;
  });
}

Status Ingestor::ProduceConversion(const Conversion& c, const char* format, std::string_view raw, std::string_view raw_key,
                                   const std::vector<pipeline::Header>& source) {
  const std::string manifests = names_.Name(pipeline::TopicRole::kManifests);
  const std::string scans = names_.Name(pipeline::TopicRole::kScans);
  for (const auto& r : c.records) {
    const bool manifest = r.topic == CanonicalRecord::kManifests;
    if (Status s = producer_->Produce({.topic = manifest ? manifests : scans,
                                       .key = r.key,
                                       .value = r.value,
                                       .timestamp_ms = r.timestamp_ms});
        !s.ok()) {
      return s;
    }
    probe_->Out(manifest ? "manifests" : "scans", 1);
    ++canonical_;
  }
  if (c.rejected.empty()) return Status::Ok();
  // One dead letter per raw message, however many of its parts were refused:
  // the first problem in the reason headers, every problem (up to 100) in
  // boxwatch-problems, one per line.
  const std::string dead = names_.Name(pipeline::TopicRole::kDeadLetter);
  constexpr size_t kMaxDeadValue = 900 << 10;  // under the producer's message.max.bytes
  constexpr size_t kMaxListed = 100;
  const Rejected& first = c.rejected.front();
  std::string all;
  for (size_t i = 0; i < c.rejected.size() && i < kMaxListed; ++i) {
    const auto& r = c.rejected[i];
    all += r.reason + " at " + (r.position.empty() ? "the document" : r.position.substr(0, 200)) + ": " +
           r.detail.substr(0, 200) + "\n";
  }
  std::vector<pipeline::Header> headers = {{"boxwatch-reason", first.reason},
                                           {"boxwatch-detail", first.detail.substr(0, 1024)},
                                           {"boxwatch-position", first.position.substr(0, 512)},
                                           {"boxwatch-problem-count", std::to_string(c.rejected.size())},
                                           {"boxwatch-problems", all},
                                           {"boxwatch-format", format}};
  headers.insert(headers.end(), source.begin(), source.end());
  if (raw.size() > kMaxDeadValue) {
    headers.push_back({"boxwatch-truncated", "true"});
    headers.push_back({"boxwatch-original-bytes", std::to_string(raw.size())});
  }
  if (Status s = producer_->Produce({.topic = dead,
                                     .key = raw_key.substr(0, 1024),
                                     .value = raw.substr(0, kMaxDeadValue),
                                     .headers = std::move(headers)});
      !s.ok()) {
    return s;
  }
  for (const auto& r : c.rejected) probe_->Dead(r.reason);
  ++dead_letters_;
  return Status::Ok();
}

Status Ingestor::Rewind() {
  if (!consumer_) return Status::Ok();
  std::vector<pipeline::TopicPartition> parts = consumer_->Assignment();
  auto committed = consumer_->Committed(parts, 30s);
  if (!committed.ok()) return committed.error();
  for (const auto& c : *committed) {
    const int64_t to = c.offset >= 0 ? c.offset : RD_KAFKA_OFFSET_BEGINNING;
    if (Status s = consumer_->Seek({c.topic, c.partition, to}, 10s); !s.ok()) return s;
  }
  return Status::Ok();
}

Status Ingestor::KafkaBatch() {
  std::vector<pipeline::OwnedRecord> batch;
  listener_->BatchStarts();
  size_t bytes = 0;
  auto deadline = std::chrono::steady_clock::now() + 200ms;
  while (batch.size() < options_.batch_records && bytes < options_.batch_bytes &&
         std::chrono::steady_clock::now() < deadline) {
    auto m = consumer_->Poll(batch.empty() ? 100ms : 10ms);
    if (!m.ok()) return m.error();
    if (!m->has_value()) {
      if (!batch.empty()) break;
      continue;
    }
    batch.push_back((**m).ToOwned());
    bytes += batch.back().value.size();
  }
  // Records of partitions revoked meanwhile belong to their new owner.
  std::erase_if(batch, [&](const auto& r) { return !listener_->OwnsThroughout({r.topic, r.partition}); });
  if (batch.empty()) return Status::Ok();
  if (Status s = producer_->BeginTransaction(); !s.ok()) return s;
  std::map<pipeline::TopicPartition, int64_t> next;
  Status st = Status::Ok();
  for (const auto& r : batch) {
    const RawFormat format =
        r.topic == names_.Name(pipeline::TopicRole::kRawCuscar) ? RawFormat::kCuscar : RawFormat::kN42;
    probe_->Raw(RawFormatName(format), "kafka");
    ++raw_records_;
    Conversion c = Convert(format, r.value, options_.n42);
    Screen(&c);
    st = ProduceConversion(c, RawFormatName(format), r.value, r.key,
                           {{"boxwatch-source-topic", r.topic},
                            {"boxwatch-source-partition", std::to_string(r.partition)},
                            {"boxwatch-source-offset", std::to_string(r.offset)}});
    if (!st.ok()) break;
    next[{r.topic, r.partition}] = r.offset + 1;
  }
  if (st.ok()) {
    std::vector<pipeline::TopicPartitionOffset> offsets;
    for (const auto& [tp, off] : next) offsets.push_back({tp.topic, tp.partition, off});
    pipeline::GroupMetadata gm = consumer_->GroupMetadataForTransaction();
    st = producer_->SendOffsetsToTransaction(offsets, gm.get(), 60s);
  }
  if (st.ok()) st = producer_->CommitTransaction(60s);
  if (st.ok()) {
    probe_->Txn(true);
    ++transactions_;
    return Status::Ok();
  }
  BW_LOG(kWarn, kLog) << "transaction failed (" << ErrcName(st.code()) << "): " << st.message();
  probe_->Txn(false);
  if (st.code() == Errc::kFenced || st.code() == Errc::kFatal) return st;
  if (Status a = producer_->AbortTransaction(60s); !a.ok()) return a;
  return Rewind();
}

Status Ingestor::IngestFile(const std::string& name) {
  const fs::path dir(options_.watch_dir);
  const fs::path path = dir / name;
  std::error_code ec;
  const uintmax_t size = fs::file_size(path, ec);
  if (ec) return Status::Ok();  // gone meanwhile
  auto move_to = [&](const char* sub) {
    fs::rename(path, dir / sub / name, ec);
    if (ec) BW_LOG(kError, kLog) << "cannot move " << path.string() << " to " << sub << "/: " << ec.message();
  };
  std::string bytes;
  if (size <= options_.max_file_bytes) {
    // O_NOFOLLOW: a file swapped for a symlink since the listing is not read.
    const int fd = ::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) return Status::Ok();  // gone or a symlink now; the next scan sees what is there
    char buf[1 << 16];
    for (ssize_t n; (n = ::read(fd, buf, sizeof buf)) > 0 && bytes.size() <= options_.max_file_bytes;) {
      bytes.append(buf, static_cast<size_t>(n));
    }
    ::close(fd);
  }
  const std::string ledger_key = name + "#" + Hex(Fnv64(bytes)) + "-" + std::to_string(size);
  if (auto known = ledger_.find(ledger_key); known != ledger_.end()) {
    // Committed before a restart that came before the move.
    probe_->File("already_ingested");
    move_to(known->second.c_str());
    return Status::Ok();
  }
  RawFormat format = RawFormat::kCuscar;
  Conversion c;
  const bool known = size <= options_.max_file_bytes && SniffFormat(bytes, &format);
  probe_->Raw(known ? RawFormatName(format) : "unknown", "file");
  if (size > options_.max_file_bytes) {
    c.rejected.push_back({"ingest_too_large", "", std::to_string(size) + " bytes, over the limit of " +
                                                      std::to_string(options_.max_file_bytes)});
  } else if (!known) {
    c.rejected.push_back({"ingest_format", "", "neither UN/EDIFACT (UNA/UNB) nor XML"});
  } else {
    c = Convert(format, bytes, options_.n42);
    Screen(&c);
  }
  ++files_;
  if (Status s = producer_->BeginTransaction(); !s.ok()) return s;
  Status st = ProduceConversion(c, known ? RawFormatName(format) : "unknown", bytes, name,
                                {{"boxwatch-source-file", name}});
  const std::string result = c.records.empty() && !c.rejected.empty() ? "failed" : "done";
  const std::string value = "{\"file\":\"" + name + "\",\"records\":" + std::to_string(c.records.size()) +
                            ",\"dead_letters\":" + std::to_string(c.rejected.size()) + ",\"result\":\"" + result +
                            "\",\"at_ms\":" + std::to_string(NowMs()) + "}";
  if (st.ok()) {
    st = producer_->Produce(
        {.topic = names_.Name(pipeline::TopicRole::kIngestFiles), .key = ledger_key, .value = value, .partition = 0});
  }
  if (st.ok()) st = producer_->CommitTransaction(60s);
  if (!st.ok()) {
    probe_->Txn(false);
    if (st.code() == Errc::kFenced || st.code() == Errc::kFatal) return st;
    if (Status a = producer_->AbortTransaction(60s); !a.ok()) return a;
    return Status::Ok();  // the file stays; the next scan tries again
  }
  probe_->Txn(true);
  ++transactions_;
  ledger_[ledger_key] = result;
  probe_->File(result.c_str());
  move_to(result.c_str());
  BW_LOG(kInfo, kLog) << "file " << name << ": " << c.records.size() << " records, " << c.rejected.size()
                      << " dead letters, moved to " << result << "/";
  return Status::Ok();
}

Status Ingestor::ScanDirectory() {
  std::vector<std::string> names;
  std::error_code ec;
  fs::directory_iterator it(options_.watch_dir, ec);
  for (; !ec && it != fs::directory_iterator(); it.increment(ec)) {
    const std::string n = it->path().filename().string();
    std::error_code sec;
    // Regular files only, never through a symlink (it could point anywhere);
    // hidden ones are still being written.
    const fs::file_status st = it->symlink_status(sec);
    if (sec || !fs::is_regular_file(st) || n.empty() || n[0] == '.') continue;
    names.push_back(n);
  }
  if (ec) return Error{Errc::kIo, "cannot list " + options_.watch_dir + ": " + ec.message()};
  std::sort(names.begin(), names.end());
  // A bounded pass, so a backlog of files does not keep the raw topics unpolled.
  const auto until = std::chrono::steady_clock::now() + 1s;
  size_t handled = 0;
  for (const auto& n : names) {
    if (handled++ >= 100 || std::chrono::steady_clock::now() > until) break;
    if (Status s = IngestFile(n); !s.ok()) return s;
  }
  return Status::Ok();
}

Status Ingestor::Run(const std::atomic<bool>& stop) {
  if (Status s = Start(); !s.ok()) return s;
  while (!stop) {
    if (consumer_) {
      if (Status s = KafkaBatch(); !s.ok()) return s;
    } else {
      std::this_thread::sleep_for(50ms);  // idle between directory scans
    }
    if (!options_.watch_dir.empty() && NowMs() - last_scan_ms_ >= options_.watch_interval_ms) {
      last_scan_ms_ = NowMs();
      if (Status s = ScanDirectory(); !s.ok()) return s;
    }
  }
  if (consumer_) (void)consumer_->Close();
  return Status::Ok();
}

}  // namespace boxwatch::ingest
