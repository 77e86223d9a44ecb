// StateStore on RocksDB: one instance per process, one column family "p<N>"
// per partition, a shared LRU block cache. The changelog checkpoint and task
// metadata live under reserved keys in the partition's own column family, so
// one WriteBatch to one column family commits them atomically with the data
// (no cross-column-family atomic flush needed).

#include <rocksdb/cache.h>
#include <rocksdb/convenience.h>
#include <rocksdb/db.h>
#include <rocksdb/filter_policy.h>
#include <rocksdb/iterator.h>
#include <rocksdb/options.h>
#include <rocksdb/perf_level.h>
#include <rocksdb/sst_file_writer.h>
#include <rocksdb/table.h>
#include <rocksdb/write_batch.h>
#include <rocksdb/write_buffer_manager.h>

#include <algorithm>
#include <atomic>
#include <charconv>
#include <condition_variable>
#include <deque>
#include <filesystem>
#include <functional>
#include <map>
#include <mutex>
#include <string_view>
#include <system_error>
#include <thread>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "core/log.h"
#include "state/state_store.h"

namespace boxwatch::state {
namespace {

using namespace std::string_view_literals;

constexpr std::string_view kComponent = "state";

// Reserved keys start with 0x00; user keys may not. All of them sort before
// kFirstUserKey, which is where ForEach starts.
constexpr std::string_view kCheckpointKey = "\0boxwatch.changelog_next_offset"sv;
constexpr std::string_view kTaskMetaKey = "\0boxwatch.task_meta"sv;
constexpr std::string_view kFirstUserKey = "\x01"sv;
constexpr uint64_t kReservedKeyCount = 2;

rocksdb::Slice ToSlice(std::string_view s) { return rocksdb::Slice(s.data(), s.size()); }
std::string_view ToView(const rocksdb::Slice& s) { return std::string_view(s.data(), s.size()); }

// The checkpoint is stored as 8 bytes, little-endian, so the format does not
// depend on the host.
std::string EncodeOffset(int64_t offset) {
  std::string out(8, '\0');
  auto v = static_cast<uint64_t>(offset);
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>((v >> (8 * i)) & 0xff);
  return out;
}

bool Supported(rocksdb::CompressionType type) {
  const auto supported = rocksdb::GetSupportedCompressions();
  return std::find(supported.begin(), supported.end(), type) != supported.end();
}

// A restore's files: the column family's options without compression
// (SstFileWriter compresses as the bottom level does). Restore is on the
// path to processing, and its records are read once more by the compaction
// that rewrites them with ZSTD and a trained dictionary; LZ4 here took a
// sixth of a restoring worker's CPU for bytes that compaction rewrites.
rocksdb::Options RestoreWriterOptions(rocksdb::Options options) {
  options.bottommost_compression = rocksdb::kNoCompression;
  options.bottommost_compression_opts = rocksdb::CompressionOptions();
  options.compression = rocksdb::kNoCompression;
  return options;
}

std::optional<int64_t> DecodeOffset(std::string_view bytes) {
  if (bytes.size() != 8) return std::nullopt;
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v |= uint64_t{static_cast<unsigned char>(bytes[i])} << (8 * i);
  return static_cast<int64_t>(v);
}

// Converts a RocksDB status at the boundary. `context` names the store, the
// partition and the operation, e.g. `state store "/data" partition 3: commit`.
Error ToError(const rocksdb::Status& s, const std::string& context) {
  Errc code = Errc::kIo;
  std::string hint;
  if (s.IsCorruption()) {
    code = Errc::kFatal;
    hint = "; the state on disk is corrupt: drop the partition and restore it from the changelog";
  } else if (s.IsBusy() || s.IsTryAgain()) {
    code = Errc::kRetriable;
  } else if (s.IsTimedOut()) {
    code = Errc::kTimeout;
  } else if (s.IsInvalidArgument() || s.IsNotSupported()) {
    code = Errc::kInvalidArgument;
  } else if (s.IsNotFound()) {
    code = Errc::kNotFound;
  } else if (s.IsNoSpace() || s.ToString().find("No space left") != std::string::npos) {
    code = Errc::kNoSpace;
    hint = "; free disk space on the state volume";
  } else if (s.IsIOError() && s.ToString().find("lock") != std::string::npos) {
    hint = "; is another worker process using this state directory?";
  }
  return Error{code, context + " failed: " + s.ToString() + hint};
}

std::string Describe(const std::string& path, int32_t partition) {
  return "state store \"" + path + "\" partition " + std::to_string(partition);
}

Status ValidateKey(std::string_view key, const std::string& context) {
  if (key.empty()) return InvalidArgument(context + ": empty key");
  if (key.front() == '\0') {
    return InvalidArgument(context + ": key starts with byte 0x00, which is reserved for the "
                                     "store's own metadata");
  }
  return Status::Ok();
}

// Writes the partitions' gathered commits to RocksDB on a thread of its own,
// one at a time, in the order handed over: a commit that fills its
// partition's overlay gives the write to this thread instead of holding the
// committer (the worker's store thread, which the next commit cycle waits
// for) through a batch of 64 commits' worth of containers.
class BackgroundFlusher {
 public:
  BackgroundFlusher() = default;
  BackgroundFlusher(const BackgroundFlusher&) = delete;
  BackgroundFlusher& operator=(const BackgroundFlusher&) = delete;
  ~BackgroundFlusher() { Stop(); }

  // Queues `flush`; false when there is no thread to run it (the caller
  // then writes itself).
  bool Schedule(std::function<void()> flush) {
    std::lock_guard lock(mutex_);
    if (stopping_) return false;
    if (!thread_.joinable()) {
      try {
        thread_ = std::thread([this] { Run(); });
      } catch (const std::system_error&) {
        return false;
      }
    }
    queue_.push_back(std::move(flush));
    wake_.notify_one();
    return true;
  }

  // Runs what is queued, then ends the thread; later Schedules return false.
  void Stop() {
    {
      std::lock_guard lock(mutex_);
      stopping_ = true;
      wake_.notify_one();
    }
    if (thread_.joinable()) thread_.join();
  }

 private:
  void Run() {
    DisableStoreCountersOnThisThread();
    std::unique_lock lock(mutex_);
    for (;;) {
      wake_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) return;  // stopping, and nothing left
      std::function<void()> flush = std::move(queue_.front());
      queue_.pop_front();
      lock.unlock();
      flush();
      lock.lock();
    }
  }

  std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<std::function<void()>> queue_;
  bool stopping_ = false;
  std::thread thread_;
};

class RocksPartitionStore final : public PartitionStore {
 public:
  RocksPartitionStore(rocksdb::DB* db, rocksdb::ColumnFamilyHandle* cf, int32_t partition,
                      std::string describe, const rocksdb::WriteOptions& write_options, size_t overlay_bytes,
                      int overlay_commits, BackgroundFlusher* flusher)
      : db_(db),
        cf_(cf),
        partition_(partition),
        describe_(std::move(describe)),
        write_options_(write_options),
        overlay_limit_(write_options.disableWAL && overlay_commits > 1 ? overlay_bytes : 0),
        overlay_max_commits_(overlay_commits),
        flusher_(flusher) {}

  // A write of the gathered commits handed to the flusher finishes first.
  ~RocksPartitionStore() override {
    std::unique_lock lock(overlay_mutex_);
    flush_done_.wait(lock, [&] { return !flush_scheduled_; });
  }

  // Reads the checkpoint and task metadata into memory.
  Status Load() {
    rocksdb::PinnableSlice value;
    rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), cf_, ToSlice(kCheckpointKey), &value);
    if (s.ok()) {
      std::optional<int64_t> offset = DecodeOffset(ToView(value));
      if (!offset || *offset < 0) {
        return Error{Errc::kFatal, describe_ + ": the stored changelog checkpoint is malformed (" +
                                       std::to_string(value.size()) +
                                       " bytes); drop the partition and restore it from the "
                                       "changelog"};
      }
      checkpoint_.store(*offset);
    } else if (!s.IsNotFound()) {
      return ToError(s, describe_ + ": reading the changelog checkpoint");
    }
    value.Reset();
    s = db_->Get(rocksdb::ReadOptions(), cf_, ToSlice(kTaskMetaKey), &value);
    if (s.ok()) {
      task_meta_ = value.ToString();
    } else if (!s.IsNotFound()) {
      return ToError(s, describe_ + ": reading the task metadata");
    }
    return Status::Ok();
  }

  int32_t PartitionId() const override { return partition_; }

  Result<std::optional<std::string>> Get(std::string_view key) const override {
    if (Status v = ValidateKey(key, describe_ + ": get"); !v.ok()) return v.error();
    if (std::optional<std::optional<std::string>> gathered = Gathered(key)) return *std::move(gathered);
    std::string value;
    rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), cf_, ToSlice(key), &value);
    if (s.IsNotFound()) return std::optional<std::string>();
    if (!s.ok()) return ToError(s, describe_ + ": get of key \"" + std::string(key) + "\"");
    return std::optional<std::string>(std::move(value));
  }

  // One batched MultiGet: neighbouring keys share their index and filter
  // look-ups and usually their data block.
  Result<std::vector<std::optional<std::string>>> GetMany(std::span<const std::string> keys) const override {
    std::vector<std::optional<std::string>> out(keys.size());
    // Keys gathered in memory are answered from there; the rest in one
    // MultiGet.
    std::vector<size_t> stored;
    stored.reserve(keys.size());
    std::vector<rocksdb::Slice> slices;
    slices.reserve(keys.size());
    for (size_t i = 0; i < keys.size(); ++i) {
      if (Status v = ValidateKey(keys[i], describe_ + ": get"); !v.ok()) return v.error();
      if (std::optional<std::optional<std::string>> gathered = Gathered(keys[i])) {
        out[i] = *std::move(gathered);
        continue;
      }
      stored.push_back(i);
      slices.push_back(ToSlice(keys[i]));
    }
    if (slices.empty()) return out;
    std::vector<rocksdb::PinnableSlice> values(slices.size());
    std::vector<rocksdb::Status> statuses(slices.size());
    // RocksDB orders the keys itself (sorted_input false): a caller's order
    // is a hint, not a promise.
    db_->MultiGet(rocksdb::ReadOptions(), cf_, slices.size(), slices.data(), values.data(), statuses.data(),
                  /*sorted_input=*/false);
    for (size_t j = 0; j < stored.size(); ++j) {
      if (statuses[j].IsNotFound()) continue;
      const size_t i = stored[j];
      if (!statuses[j].ok()) return ToError(statuses[j], describe_ + ": get of key \"" + keys[i] + "\"");
      out[i] = values[j].ToString();
    }
    return out;
  }

  Status CommitViews(std::span<const WriteView> writes, int64_t changelog_next_offset,
                     std::string_view task_meta) override {
    const std::string context =
        describe_ + ": commit of " + std::to_string(writes.size()) + " writes";
    if (changelog_next_offset < 0) {
      return InvalidArgument(context + ": changelog offset " +
                             std::to_string(changelog_next_offset) + " is negative");
    }
    for (const WriteView& w : writes) {
      if (Status v = ValidateKey(w.key, context); !v.ok()) return v;
    }
    // A write through waits for a flush under way: its older batch must not
    // land after this one.
    std::unique_lock flush_lock(flush_mutex_, std::defer_lock);
    if (overlay_limit_ > 0) {
      if (!FillsOverlay(writes)) return Gather(writes, changelog_next_offset, task_meta);
      // A commit that alone fills the overlay (a backlog's large
      // transactions): gathering it would only copy it. What is gathered
      // is older: written first (after a write of it under way), then this
      // commit through. When that write fails, the commit is gathered on
      // top, and Gather writes again and returns the error.
      flush_lock.lock();
      if (Status f = FlushOverlayHeld(); !f.ok()) {
        flush_lock.unlock();
        return Gather(writes, changelog_next_offset, task_meta);
      }
    }
    if (Status w = WriteThrough(writes, changelog_next_offset, task_meta, context); !w.ok()) return w;
    std::lock_guard meta_lock(overlay_mutex_);
    checkpoint_.store(changelog_next_offset);
    task_meta_.assign(task_meta);
    return Status::Ok();
  }

  Status WriteGathered() override { return FlushOverlay(); }

  // Writes what is gathered to RocksDB, in key order, with the checkpoint
  // and metadata of the last commit gathered. On failure it stays gathered
  // (under anything gathered since) and the error is returned; the next
  // commit or flush tries again.
  Status FlushOverlay() const {
    std::lock_guard flush_lock(flush_mutex_);
    return FlushOverlayHeld();
  }

 private:
  // FlushOverlay with flush_mutex_ held.
  Status FlushOverlayHeld() const {
    std::vector<WriteView> views;
    int64_t offset = 0;
    std::string meta;
    {
      std::lock_guard lock(overlay_mutex_);
      if (overlay_.empty() && overlay_commits_ == 0) return Status::Ok();
      flushing_.swap(overlay_);
      overlay_bytes_ = 0;
      overlay_commits_ = 0;
      offset = checkpoint_.load();
      meta = task_meta_;
    }
    views.reserve(flushing_.size());
    for (const auto& [key, value] : flushing_) {
      views.push_back({key, value ? std::optional<std::string_view>(*value) : std::nullopt});
    }
    std::sort(views.begin(), views.end(), [](const WriteView& a, const WriteView& b) { return a.key < b.key; });
    Status s = const_cast<RocksPartitionStore*>(this)->WriteThrough(
        views, offset, meta, describe_ + ": writing " + std::to_string(views.size()) + " gathered writes");
    std::lock_guard lock(overlay_mutex_);
    if (!s.ok()) {
      for (auto& [key, value] : flushing_) {
        auto [it, inserted] = overlay_.try_emplace(key, std::move(value));
        if (inserted) overlay_bytes_ += key.size() + (it->second ? it->second->size() : 0);
      }
      ++overlay_commits_;
    }
    // After a failure the next commit writes again itself, at once, and
    // returns the error while it persists: a full disk must stop the
    // worker, not wait for 64 more commits or a write in the background.
    flush_failed_ = !s.ok();
    flushing_.clear();
    return s;
  }

  // The flusher's task: the gathered commits to RocksDB. A failure is
  // kept (flush_failed_) for the next commit to meet.
  void BackgroundFlush() const {
    (void)FlushOverlay();
    std::lock_guard lock(overlay_mutex_);
    flush_scheduled_ = false;
    flush_done_.notify_all();
  }

  // The value gathered for `key` (nullopt inside: deleted), or nullopt when
  // nothing is gathered for it.
  std::optional<std::optional<std::string>> Gathered(std::string_view key) const {
    if (overlay_limit_ == 0) return std::nullopt;
    std::lock_guard lock(overlay_mutex_);
    for (const auto* map : {&overlay_, &flushing_}) {
      if (auto it = map->find(key); it != map->end()) return it->second;
    }
    return std::nullopt;
  }

  // Whether a commit alone holds the overlay's worth of bytes.
  bool FillsOverlay(std::span<const WriteView> writes) const {
    size_t bytes = 0;
    for (const WriteView& w : writes) bytes += w.key.size() + (w.value ? w.value->size() : 0);
    return bytes >= overlay_limit_;
  }

  // Applies a commit to the overlay. One that fills it hands the write of
  // the whole to the flusher (none: writes it here); after a failed write
  // the commit writes again itself and returns that write's status.
  Status Gather(std::span<const WriteView> writes, int64_t changelog_next_offset, std::string_view task_meta) {
    bool schedule = false;
    {
      std::lock_guard lock(overlay_mutex_);
      for (const WriteView& w : writes) {
        auto [it, inserted] = overlay_.try_emplace(std::string(w.key));
        if (inserted) {
          overlay_bytes_ += w.key.size();
        } else if (it->second) {
          overlay_bytes_ -= it->second->size();
        }
        if (w.value) {
          it->second.emplace(*w.value);
          overlay_bytes_ += w.value->size();
        } else {
          it->second.reset();
        }
      }
      ++overlay_commits_;
      checkpoint_.store(changelog_next_offset);
      task_meta_.assign(task_meta);
      if (!flush_failed_) {
        if (overlay_bytes_ < overlay_limit_ && overlay_commits_ < overlay_max_commits_) return Status::Ok();
        if (flush_scheduled_) {
          // The flusher has not caught up: it takes what is gathered when
          // it starts, or the next commit hands it over again. Only twice
          // the limit waits for it (and then writes here).
          if (overlay_bytes_ < 2 * overlay_limit_ && overlay_commits_ < 2 * overlay_max_commits_) {
            return Status::Ok();
          }
          schedule = false;
        } else {
          flush_scheduled_ = schedule = flusher_ != nullptr;
        }
      }
    }
    if (schedule) {
      if (flusher_->Schedule([this] { BackgroundFlush(); })) return Status::Ok();
      std::lock_guard lock(overlay_mutex_);
      flush_scheduled_ = false;
      flush_done_.notify_all();
    }
    return FlushOverlay();
  }

  Status WriteThrough(std::span<const WriteView> writes, int64_t changelog_next_offset, std::string_view task_meta,
                      const std::string& context) {
    // Sized once: a batch grown write by write copies itself at every doubling.
    size_t bytes = 64;
    for (const WriteView& w : writes) bytes += 16 + w.key.size() + (w.value ? w.value->size() : 0);
    rocksdb::WriteBatch batch(bytes);
    for (const WriteView& w : writes) {
      rocksdb::Status s = w.value ? batch.Put(cf_, ToSlice(w.key), ToSlice(*w.value))
                                  : batch.Delete(cf_, ToSlice(w.key));
      if (!s.ok()) return ToError(s, context + ": batching key \"" + std::string(w.key) + "\"");
    }
    const std::string encoded = EncodeOffset(changelog_next_offset);
    rocksdb::Status s = batch.Put(cf_, ToSlice(kCheckpointKey), ToSlice(encoded));
    if (s.ok()) s = batch.Put(cf_, ToSlice(kTaskMetaKey), ToSlice(task_meta));
    if (!s.ok()) return ToError(s, context + ": batching the checkpoint");

    std::lock_guard lock(commit_mutex_);
    s = db_->Write(write_options_, &batch);
    if (!s.ok()) {
      return ToError(s, context + " (changelog offset " + std::to_string(changelog_next_offset) +
                            ")");
    }
    return Status::Ok();
  }

 public:

  // A run this long goes through a table file; shorter ones through a batch.
  static constexpr size_t kBulkMinWrites = 4096;

  Status BulkCommit(std::span<const WriteView> writes, int64_t changelog_next_offset,
                    std::string_view task_meta) override {
    if (writes.size() < kBulkMinWrites) return CommitViews(writes, changelog_next_offset, task_meta);
    // The file's keys are newer than anything gathered: that goes first,
    // and no flush may land after the file.
    std::lock_guard flush_lock(flush_mutex_);
    if (Status f = FlushOverlayHeld(); !f.ok()) return f;
    const std::string context = describe_ + ": bulk commit of " + std::to_string(writes.size()) + " writes";
    if (changelog_next_offset < 0) {
      return InvalidArgument(context + ": changelog offset " + std::to_string(changelog_next_offset) +
                             " is negative");
    }
    // The file is written with this column family's options but for the
    // bottom level's compression (RestoreWriterOptions; a file ingested into
    // an empty range lands there) and moved into the store by RocksDB, which gives its keys one new
    // sequence number: later than everything stored, as the changelog is.
    const std::string file = db_->GetName() + "/restore-p" + std::to_string(partition_) + "-" +
                             std::to_string(changelog_next_offset) + ".sst";
    rocksdb::SstFileWriter writer(rocksdb::EnvOptions(), RestoreWriterOptions(db_->GetOptions(cf_)), cf_);
    rocksdb::Status s = writer.Open(file);
    if (!s.ok()) return ToError(s, context + ": creating " + file);
    auto abandon = [&](const Status& failure) {
      std::error_code ec;
      std::filesystem::remove(file, ec);
      return failure;
    };
    // The checkpoint and metadata go in the same file (reserved keys sort
    // first): the run and the checkpoint it reflects arrive together.
    const std::string encoded = EncodeOffset(changelog_next_offset);
    s = writer.Put(ToSlice(kCheckpointKey), ToSlice(encoded));
    if (s.ok()) s = writer.Put(ToSlice(kTaskMetaKey), ToSlice(task_meta));
    if (!s.ok()) return abandon(ToError(s, context + ": writing the checkpoint"));
    for (const WriteView& w : writes) {
      if (Status v = ValidateKey(w.key, context); !v.ok()) return abandon(v);
      s = w.value ? writer.Put(ToSlice(w.key), ToSlice(*w.value)) : writer.Delete(ToSlice(w.key));
      if (!s.ok()) return abandon(ToError(s, context + ": key \"" + std::string(w.key) + "\" (keys must be sorted, once each)"));
    }
    s = writer.Finish();
    if (!s.ok()) return abandon(ToError(s, context + ": finishing " + file));
    rocksdb::IngestExternalFileOptions ingest;
    ingest.move_files = true;
    std::lock_guard lock(commit_mutex_);
    s = db_->IngestExternalFile(cf_, {file}, ingest);
    if (!s.ok()) return abandon(ToError(s, context + ": adding " + file + " to the store"));
    std::error_code ec;
    std::filesystem::remove(file, ec);  // moved: RocksDB holds its own link
    std::lock_guard meta_lock(overlay_mutex_);
    checkpoint_.store(changelog_next_offset);
    task_meta_.assign(task_meta);
    return Status::Ok();
  }

  int64_t ChangelogCheckpoint() const override { return checkpoint_.load(); }

  std::string TaskMeta() const override {
    std::lock_guard lock(overlay_mutex_);
    return task_meta_;
  }

  Status ForEach(
      const std::function<bool(std::string_view, std::string_view)>& fn) const override {
    // A scan reads RocksDB alone: what is gathered goes there first.
    if (Status f = FlushOverlay(); !f.ok()) return f;
    rocksdb::ReadOptions options;
    options.fill_cache = false;  // a full scan must not evict the working set
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(options, cf_));
    for (it->Seek(ToSlice(kFirstUserKey)); it->Valid(); it->Next()) {
      if (!fn(ToView(it->key()), ToView(it->value()))) break;
    }
    if (!it->status().ok()) return ToError(it->status(), describe_ + ": iterating keys");
    return Status::Ok();
  }

  uint64_t ApproximateKeys() const override {
    uint64_t keys = 0;
    if (!db_->GetIntProperty(cf_, rocksdb::DB::Properties::kEstimateNumKeys, &keys)) return 0;
    const uint64_t reserved = checkpoint_.load() >= 0 ? kReservedKeyCount : 0;
    return keys > reserved ? keys - reserved : 0;
  }

 private:
  rocksdb::DB* db_;
  rocksdb::ColumnFamilyHandle* cf_;
  const int32_t partition_;
  const std::string describe_;
  const rocksdb::WriteOptions write_options_;

  mutable std::mutex commit_mutex_;  // one RocksDB write at a time
  // The checkpoint and metadata of the last commit, written through or
  // gathered (the persisted ones may be older: see commit_overlay_bytes).
  std::atomic<int64_t> checkpoint_{-1};
  std::string task_meta_;  // guarded by overlay_mutex_

  // Gathered commits (StoreOptions::commit_overlay_bytes): the latest value
  // per key (nullopt: deleted) since the last flush, and the ones a flush is
  // writing, which reads still see until RocksDB has them.
  const size_t overlay_limit_;  // 0: every commit written through
  const int overlay_max_commits_;
  mutable std::mutex overlay_mutex_;
  mutable std::mutex flush_mutex_;  // one flush at a time
  // A flat map: a gathered commit inserts tens of thousands of keys, one
  // allocation each in a node map (the value, when longer than a short
  // string, is its only other one).
  using Overlay = absl::flat_hash_map<std::string, std::optional<std::string>, StringViewHash, StringViewEq>;
  mutable Overlay overlay_;
  mutable Overlay flushing_;
  mutable size_t overlay_bytes_ = 0;
  mutable int overlay_commits_ = 0;
  // Writing the overlay on the flusher's thread (null: always here).
  BackgroundFlusher* const flusher_;
  // Guarded by overlay_mutex_: a write handed to the flusher and not
  // finished (the destructor waits on flush_done_ for it), and whether the
  // last write failed.
  mutable bool flush_scheduled_ = false;
  mutable bool flush_failed_ = false;
  mutable std::condition_variable flush_done_;
};

class RocksStateStore final : public StateStore {
 public:
  RocksStateStore(std::string path, std::shared_ptr<rocksdb::Cache> cache,
                  rocksdb::ColumnFamilyOptions cf_options, rocksdb::WriteOptions write_options,
                  size_t overlay_bytes, int overlay_commits)
      : path_(std::move(path)),
        cache_(std::move(cache)),
        cf_options_(std::move(cf_options)),
        write_options_(write_options),
        overlay_bytes_(overlay_bytes),
        overlay_commits_(overlay_commits) {}

  ~RocksStateStore() override {
    if (db_ == nullptr) return;
    // Without a write-ahead log the gathered commits and the memtables are
    // the only copy of the latest batches on this machine: persist them, so
    // a clean restart restores nothing from the changelog.
    if (write_options_.disableWAL) {
      for (const auto& [p, store] : stores_) {
        if (Status g = store->FlushOverlay(); !g.ok()) {
          BW_LOG(kWarn, kComponent) << "state store \"" << path_ << "\": writing partition " << p
                                    << "'s gathered commits at close failed: " << g.message()
                                    << " (the next start restores them from the changelog)";
        }
      }
      rocksdb::FlushOptions flush;
      flush.wait = true;
      rocksdb::Status f = db_->Flush(flush, AllHandles());
      if (!f.ok()) {
        BW_LOG(kWarn, kComponent) << "state store \"" << path_ << "\": flush at close failed: " << f.ToString()
                                  << " (the next start restores the lost batches from the changelog)";
      }
    }
    stores_.clear();  // each waits for its write on the flusher
    flusher_.Stop();
    for (rocksdb::ColumnFamilyHandle* h : AllHandles()) {
      db_->DestroyColumnFamilyHandle(h).PermitUncheckedError();
    }
    rocksdb::Status s = db_->Close();
    if (!s.ok()) {
      BW_LOG(kWarn, kComponent) << "state store \"" << path_ << "\": close failed: "
                                << s.ToString() << " (the next open replays the write-ahead log)";
    }
  }

  // Opens the instance with every column family found on disk.
  Status OpenDb(const rocksdb::DBOptions& db_options) {
    std::vector<std::string> names;
    std::error_code ec;
    // A bulk commit cut short (a crash) leaves its table file, which RocksDB
    // does not know: the restore writes it again.
    for (const auto& entry : std::filesystem::directory_iterator(path_, ec)) {
      const std::string name = entry.path().filename().string();
      if (name.starts_with("restore-p") && name.ends_with(".sst")) std::filesystem::remove(entry.path(), ec);
    }
    ec.clear();
    if (std::filesystem::exists(std::filesystem::path(path_) / "CURRENT", ec)) {
      rocksdb::Status s = rocksdb::DB::ListColumnFamilies(db_options, path_, &names);
      if (!s.ok()) return ToError(s, "state store \"" + path_ + "\": listing column families");
    } else {
      names.push_back(rocksdb::kDefaultColumnFamilyName);
    }
    std::vector<rocksdb::ColumnFamilyDescriptor> descriptors;
    descriptors.reserve(names.size());
    for (const std::string& name : names) descriptors.emplace_back(name, cf_options_);

    std::vector<rocksdb::ColumnFamilyHandle*> handles;
    rocksdb::DB* db = nullptr;
    rocksdb::Status s = rocksdb::DB::Open(db_options, path_, descriptors, &handles, &db);
    if (!s.ok()) return ToError(s, "state store \"" + path_ + "\": open");
    db_.reset(db);

    for (rocksdb::ColumnFamilyHandle* h : handles) {
      if (std::optional<int32_t> p = ParsePartitionColumnFamilyName(h->GetName())) {
        partitions_.emplace(*p, h);
      } else {
        if (h->GetName() != rocksdb::kDefaultColumnFamilyName) {
          BW_LOG(kWarn, kComponent) << "state store \"" << path_ << "\": ignoring column family \""
                                    << h->GetName() << "\" (not a partition)";
        }
        other_handles_.push_back(h);
      }
    }
    return Status::Ok();
  }

  Result<PartitionStore*> Partition(int32_t partition) override {
    if (partition < 0) {
      return InvalidArgument("state store \"" + path_ + "\": partition " +
                             std::to_string(partition) + " is negative");
    }
    std::lock_guard lock(mutex_);
    if (auto it = stores_.find(partition); it != stores_.end()) return it->second.get();

    const std::string describe = Describe(path_, partition);
    rocksdb::ColumnFamilyHandle* handle = nullptr;
    if (auto it = partitions_.find(partition); it != partitions_.end()) {
      handle = it->second;
    } else {
      rocksdb::Status s =
          db_->CreateColumnFamily(cf_options_, PartitionColumnFamilyName(partition), &handle);
      if (!s.ok()) return ToError(s, describe + ": creating column family");
      partitions_.emplace(partition, handle);
    }
    auto store = std::make_unique<RocksPartitionStore>(db_.get(), handle, partition, describe,
                                                       write_options_, overlay_bytes_, overlay_commits_, &flusher_);
    if (Status s = store->Load(); !s.ok()) return s.error();
    PartitionStore* raw = store.get();
    stores_.emplace(partition, std::move(store));
    return raw;
  }

  Status DropPartition(int32_t partition) override {
    std::lock_guard lock(mutex_);
    auto it = partitions_.find(partition);
    if (it == partitions_.end()) return Status::Ok();
    stores_.erase(partition);  // after its write on the flusher, if one is under way
    rocksdb::Status s = db_->DropColumnFamily(it->second);
    if (!s.ok()) return ToError(s, Describe(path_, partition) + ": dropping column family");
    db_->DestroyColumnFamilyHandle(it->second).PermitUncheckedError();
    partitions_.erase(it);
    return Status::Ok();
  }

  std::vector<int32_t> Partitions() const override {
    std::lock_guard lock(mutex_);
    std::vector<int32_t> out;
    out.reserve(partitions_.size());
    for (const auto& [p, h] : partitions_) out.push_back(p);
    return out;
  }

  Status Flush() override {
    std::lock_guard lock(mutex_);
    for (const auto& [p, store] : stores_) {
      if (Status f = store->FlushOverlay(); !f.ok()) return f;
    }
    rocksdb::FlushOptions options;
    options.wait = true;
    rocksdb::Status s = db_->Flush(options, AllHandles());
    if (!s.ok()) return ToError(s, "state store \"" + path_ + "\": flush");
    return Status::Ok();
  }

  Status Resume() override {
    rocksdb::Status s = db_->Resume();
    if (!s.ok()) return ToError(s, "state store \"" + path_ + "\": resume after a write error");
    return Status::Ok();
  }

  uint64_t ApproximateSizeBytes() const override {
    uint64_t sst = 0;
    uint64_t mem = 0;
    db_->GetAggregatedIntProperty(rocksdb::DB::Properties::kTotalSstFilesSize, &sst);
    db_->GetAggregatedIntProperty(rocksdb::DB::Properties::kSizeAllMemTables, &mem);
    return sst + mem;
  }

  uint64_t BlockCacheUsageBytes() const override { return cache_->GetUsage(); }

 private:
  std::vector<rocksdb::ColumnFamilyHandle*> AllHandles() const {
    std::vector<rocksdb::ColumnFamilyHandle*> out(other_handles_);
    for (const auto& [p, h] : partitions_) out.push_back(h);
    return out;
  }

  const std::string path_;
  const std::shared_ptr<rocksdb::Cache> cache_;
  const rocksdb::ColumnFamilyOptions cf_options_;
  const rocksdb::WriteOptions write_options_;
  std::unique_ptr<rocksdb::DB> db_;

  mutable std::mutex mutex_;  // guards the maps below
  std::map<int32_t, rocksdb::ColumnFamilyHandle*> partitions_;
  std::vector<rocksdb::ColumnFamilyHandle*> other_handles_;  // "default" and foreign ones
  std::map<int32_t, std::unique_ptr<RocksPartitionStore>> stores_;
  const size_t overlay_bytes_;  // StoreOptions::commit_overlay_bytes
  const int overlay_commits_;   // StoreOptions::commit_overlay_commits
  BackgroundFlusher flusher_;   // the partitions' gathered commits, written in the background
};

// Every problem with the options at once, so one restart fixes them all.
Status ValidateOptions(const StoreOptions& o) {
  std::vector<std::string> problems;
  if (o.path.empty()) problems.push_back("path is empty: set the state directory");
  if (o.block_cache_bytes == 0) problems.push_back("block_cache_bytes is 0: it must be > 0");
  if (o.write_buffer_bytes == 0) problems.push_back("write_buffer_bytes is 0: it must be > 0");
  if (o.commit_overlay_commits < 0) {
    problems.push_back("commit_overlay_commits is " + std::to_string(o.commit_overlay_commits) +
                       ": it must be >= 0 (0 or 1 writes every commit through)");
  }
  if (o.max_write_buffers < 1) {
    problems.push_back("max_write_buffers is " + std::to_string(o.max_write_buffers) +
                       ": it must be >= 1");
  }
  if (o.sync_writes && !o.write_ahead_log) {
    problems.push_back("sync_writes needs write_ahead_log: without a log there is nothing to fsync");
  }
  if (problems.empty()) return Status::Ok();
  std::string message = "state store options are invalid:";
  for (const std::string& p : problems) message += " " + p + ";";
  message.pop_back();
  return InvalidArgument(std::move(message));
}

}  // namespace

std::vector<uint32_t> LastOfEachKeyInOrder(std::span<const std::string_view> keys) {
  // A key's first 16 bytes, big-endian and zero-padded: comparing the two
  // words as integers orders as comparing those bytes. Where they agree, the
  // keys are equal or one is a prefix of the other (padding zeros) when both
  // fit in 16 bytes: the shorter comes first, as in a bytewise comparison.
  struct Entry {
    uint64_t hi;
    uint64_t lo;
    uint32_t size;
    uint32_t index;
  };
  auto word = [](std::string_view k, size_t from) {
    uint64_t v = 0;
    for (size_t i = from; i < from + 8; ++i) v = v << 8 | (i < k.size() ? static_cast<uint8_t>(k[i]) : 0);
    return v;
  };
  std::vector<Entry> e(keys.size());
  for (size_t i = 0; i < keys.size(); ++i) {
    e[i] = {word(keys[i], 0), word(keys[i], 8), static_cast<uint32_t>(std::min<size_t>(keys[i].size(), UINT32_MAX)),
            static_cast<uint32_t>(i)};
  }
  // <0, 0, >0 as the keys compare.
  auto compare = [&](const Entry& a, const Entry& b) -> int {
    if (a.hi != b.hi) return a.hi < b.hi ? -1 : 1;
    if (a.lo != b.lo) return a.lo < b.lo ? -1 : 1;
    if (a.size <= 16 && b.size <= 16) return a.size == b.size ? 0 : a.size < b.size ? -1 : 1;
    return keys[a.index].compare(keys[b.index]);
  };
  std::sort(e.begin(), e.end(), [&](const Entry& a, const Entry& b) {
    const int c = compare(a, b);
    return c != 0 ? c < 0 : a.index < b.index;  // equal keys in the order given
  });
  std::vector<uint32_t> out;
  out.reserve(e.size());
  for (size_t i = 0; i < e.size(); ++i) {
    if (i + 1 < e.size() && compare(e[i], e[i + 1]) == 0) continue;  // a later item of the key wins
    out.push_back(e[i].index);
  }
  return out;
}

void KeepLastWritePerKey(std::vector<PartitionStore::WriteView>* writes) {
  KeepLastPerKey(writes, [](const PartitionStore::WriteView& w) { return w.key; });
}

void DisableStoreCountersOnThisThread() { rocksdb::SetPerfLevel(rocksdb::PerfLevel::kDisable); }

Status PartitionStore::Commit(const std::vector<Write>& writes, int64_t changelog_next_offset,
                              std::string_view task_meta) {
  std::vector<WriteView> views;
  views.reserve(writes.size());
  for (const Write& w : writes) {
    views.push_back({w.key, w.value ? std::optional<std::string_view>(*w.value) : std::nullopt});
  }
  return CommitViews(views, changelog_next_offset, task_meta);
}

std::string PartitionColumnFamilyName(int32_t partition) {
  return "p" + std::to_string(partition);
}

std::optional<int32_t> ParsePartitionColumnFamilyName(std::string_view name) {
  if (name.size() < 2 || name[0] != 'p') return std::nullopt;
  std::string_view digits = name.substr(1);
  if (digits.size() > 1 && digits[0] == '0') return std::nullopt;
  int32_t value = 0;
  auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), value);
  if (ec != std::errc() || end != digits.data() + digits.size() || value < 0) return std::nullopt;
  return value;
}

Result<std::unique_ptr<StateStore>> StateStore::Open(const StoreOptions& options) {
  if (Status v = ValidateOptions(options); !v.ok()) return v.error();

  std::error_code ec;
  std::filesystem::create_directories(options.path, ec);
  if (ec) {
    return Error{Errc::kIo, "state store \"" + options.path +
                                "\": cannot create the directory: " + ec.message()};
  }

  std::shared_ptr<rocksdb::Cache> cache = rocksdb::NewLRUCache(options.block_cache_bytes);
  rocksdb::BlockBasedTableOptions table;
  table.block_cache = cache;
  // Index and filter blocks go through the cache too, so block_cache_bytes
  // bounds all read-side memory rather than only data blocks.
  table.cache_index_and_filter_blocks = true;
  table.cache_index_and_filter_blocks_with_high_priority = true;
  // Lookups are point reads by container number; most new containers miss.
  table.filter_policy.reset(rocksdb::NewBloomFilterPolicy(10));
  // Index and filter in partitions of metadata_block_size (4 KiB), with only
  // their small top-level blocks pinned: with millions of containers a whole
  // file's index and filter (hundreds of KiB and a few MiB for a 100 MB
  // file) outgrow the cache's share for them, and every look-up read them
  // again whole (2.3 MB filter, checksummed, per look-up: two thirds of a
  // worker drawing 5 M new containers). Partitioned, a look-up reads one
  // partition of each. Index blocks stay uncompressed: one read again would
  // be decompressed again (ZSTD with its dictionary was 28 % of that worker).
  table.index_type = rocksdb::BlockBasedTableOptions::kTwoLevelIndexSearch;
  table.partition_filters = true;
  table.pin_top_level_index_and_filter = true;
  table.enable_index_compression = false;

  rocksdb::ColumnFamilyOptions cf;
  cf.table_factory.reset(rocksdb::NewBlockBasedTableFactory(table));
  cf.write_buffer_size = options.write_buffer_bytes;
  cf.max_write_buffer_number = options.max_write_buffers;
  cf.level_compaction_dynamic_level_bytes = true;
  // While a partition is small its L0 files compact straight into the
  // bottom level, rewriting all of it (with ZSTD) each time: 8 files per
  // compaction instead of 4 halves that rewriting; a look-up then checks
  // the filters of up to 8 L0 files instead of 4 (cached, and small).
  cf.level0_file_num_compaction_trigger = 8;
  // One compression, where it pays: the upper levels are rewritten by every
  // compaction and hold little, the bottom level holds most bytes and is
  // rewritten least. ZSTD there, at its fastest level, with a dictionary
  // trained per output file: states are many small records that repeat each
  // other's field layout, seal numbers and place names, which a 4 KiB block
  // alone cannot exploit (on a drain's states: LZ4 0.80 of the raw bytes,
  // ZSTD 0.71, ZSTD with a 16 KiB dictionary 0.58). Without ZSTD, LZ4, then
  // snappy. Restore writes its files uncompressed (RestoreWriterOptions).
  cf.compression = rocksdb::kNoCompression;
  {
    if (Supported(rocksdb::kZSTD)) {
      cf.bottommost_compression = rocksdb::kZSTD;
      rocksdb::CompressionOptions& z = cf.bottommost_compression_opts;
      z.enabled = true;
      z.level = 1;
      z.max_dict_bytes = 16 << 10;
      // Samples for the trainer: 20 times the dictionary (its rule of thumb
      // is 100). Each output file trains its own dictionary, and in live
      // traffic small compactions come often: trained on 1.6 MB, the
      // trainer was 4 % of a worker at 50 % of the max rate; on 320 KB it
      // costs a fifth, for 1 % more bytes after a full compaction (0.925 →
      // 0.934 KiB per container on the 48,000-container drain).
      z.zstd_max_train_bytes = 20 * z.max_dict_bytes;
      z.max_dict_buffer_bytes = 8 << 20;                // bounds what a compaction buffers to sample from
    } else {
      cf.bottommost_compression =
          Supported(rocksdb::kLZ4Compression) ? rocksdb::kLZ4Compression : rocksdb::kSnappyCompression;
    }
  }

  rocksdb::DBOptions db;
  db.create_if_missing = true;
  db.create_missing_column_families = true;
  db.keep_log_file_num = 5;  // RocksDB's own info LOG files in the directory
  if (options.total_write_buffer_bytes > 0) {
    db.write_buffer_manager =
        std::make_shared<rocksdb::WriteBufferManager>(options.total_write_buffer_bytes);
  }

  if (options.low_priority_compactions) {
    rocksdb::Status lowered = db.env->LowerThreadPoolCPUPriority(rocksdb::Env::LOW, rocksdb::CpuPriority::kLow);
    if (!lowered.ok()) {
      BW_LOG(kWarn, kComponent) << "state store \"" << options.path
                                << "\": compactions keep their CPU priority: " << lowered.ToString();
    }
  }

  rocksdb::WriteOptions write;
  write.sync = options.sync_writes;
  write.disableWAL = !options.write_ahead_log;

  auto store = std::make_unique<RocksStateStore>(options.path, std::move(cache), std::move(cf),
                                                 write, options.commit_overlay_bytes, options.commit_overlay_commits);
  if (Status s = store->OpenDb(db); !s.ok()) return s.error();
  return std::unique_ptr<StateStore>(std::move(store));
}

}  // namespace boxwatch::state
