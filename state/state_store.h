#pragma once
// The worker's local state: one key-value store per process, split into one
// independent store per Kafka partition. This header is the interface; the
// implementation (rocksdb_state_store.cc) is one RocksDB instance with one
// column family "p<N>" per partition, and no RocksDB type leaks out of it.
//
// Contract
//  - Lifecycle. StateStore::Open creates the directory if needed and opens
//    every partition already on disk. Partition(p) returns that partition's
//    store, creating it if missing; the store owns it and it stays valid until
//    DropPartition(p) or the StateStore is destroyed. Destroying the
//    StateStore closes RocksDB; every PartitionStore* then dangles.
//  - Durability. PartitionStore::Commit writes one atomic batch: the values,
//    the deletes, the changelog checkpoint and the task metadata all become
//    visible together and survive a crash together, or not at all. By default
//    there is no write-ahead log: the Kafka changelog already holds every
//    committed change, so a log would store it twice (it was ~90 % of the
//    directory). A partition's batches then reach disk when its memtable is
//    flushed, whole and in order, so after any crash a partition holds
//    exactly its batches up to some checkpoint c, and restoring the changelog
//    from ChangelogCheckpoint() rebuilds what was lost. Destroying the store
//    (a clean stop) and Flush() persist everything, so a clean restart
//    restores nothing. With write_ahead_log=true a process crash loses
//    nothing (the log is in the OS page cache) and sync_writes fsyncs it per
//    Commit.
//  - Thread-safety. Every method of StateStore and PartitionStore may be called
//    from any thread. Commits to one partition are applied in the order they
//    are made; the worker makes them from the partition's task only.
//    DropPartition(p) must not race with use of p's PartitionStore*.
//  - Keys. Any non-empty byte string whose first byte is not 0x00 (container
//    numbers are ASCII); keys starting with 0x00 are reserved for the
//    checkpoint and task metadata, and are rejected with kInvalidArgument.
//  - Errors. kInvalidArgument: a bad argument (reserved or empty key, negative
//    partition or offset, unusable options); retrying cannot help. kIo: the
//    disk or RocksDB failed (full disk, permissions, the directory is locked by
//    another process); the message names the path, the partition and what was
//    being done. kFatal: the data on disk is corrupt; drop the partition and
//    restore it from the changelog. kRetriable / kTimeout: RocksDB reported a
//    transient condition (busy, try again); the same call may succeed later.

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"

namespace boxwatch::state {

struct StoreOptions {
  // Directory of the RocksDB instance; created (with parents) if missing.
  // Required. One worker process per directory: RocksDB locks it.
  std::string path;
  // Shared LRU block cache for all partitions, bytes. Data, index and filter
  // blocks are all charged to it, so reads stay within this budget.
  size_t block_cache_bytes = 64 << 20;
  // Memtable size per partition (column family), bytes.
  size_t write_buffer_bytes = 16 << 20;
  // Memtables per partition (one active, the rest being flushed), count.
  // A partition holds at most write_buffer_bytes * max_write_buffers in memory.
  int max_write_buffers = 2;
  // Memtables of all partitions together, bytes; 0 = no limit beyond the
  // per-partition one. Reaching it flushes the largest memtable early.
  size_t total_write_buffer_bytes = 0;
  // Commits gathered in memory per partition, one value per key, before
  // they go to RocksDB as one batch: bytes of keys and values, and at most
  // commit_overlay_commits commits. Without a write-ahead log RocksDB's memtable
  // is as volatile, but inserts a container's new version into a skip list
  // at every commit (a fifth of a task's instructions at the live commit
  // cadence); here a version replaces the last one in a hash map and only
  // the latest reaches RocksDB, written on a thread of the store's own so
  // that the commit that fills the overlay does not wait for it. Reads,
  // scans, Flush and a clean close see and keep what is gathered; a crash
  // loses it as it loses the memtable, and the changelog tail beyond the
  // stored checkpoint restores it.
  // 0 (either) writes every commit through (always so with write_ahead_log).
  size_t commit_overlay_bytes = 8 << 20;
  int commit_overlay_commits = 64;  // count (6.4 s at the default 100 ms commit interval)
  // Run RocksDB's compactions at the lowest CPU priority (nice 19; the
  // process's compaction threads, shared by every store in it). A
  // compaction that rewrites a partition's bottom level takes seconds of a
  // core (ZSTD); at nice 19 it takes what the processing thread and the
  // Kafka clients leave. If that is too little, L0 files pile up until
  // RocksDB slows the writes down. Memtable flushes keep normal priority.
  bool low_priority_compactions = false;
  // Keep RocksDB's write-ahead log. Off by default (see "Durability"
  // above); on, for comparison in benchmarks.
  bool write_ahead_log = false;
  // fsync the write-ahead log on every Commit (needs write_ahead_log). Off by
  // default: the Kafka changelog is the durable copy, and restore replays
  // what a machine crash lost.
  bool sync_writes = false;
};

// Hash and equality for string-keyed maps that look up by string_view
// without copying the key (transparent). Debian's Abseil has its own
// string_view type, which its default string hash takes: these take
// std::string_view for std and absl maps alike.
// A key of up to 16 bytes (a container number has 11) hashes in a few
// instructions, from two overlapping 8-byte loads and one 64-bit mix, seeded
// per process (the address of a static, which ASLR moves) so that keys
// chosen to collide here do not collide in another run; a longer one takes
// the standard library's hash. The state cache hashes a key several times
// per record (it fetches ahead): std::hash's loop and call were 3 % of a
// task's instructions.
struct StringViewHash {
  using is_transparent = void;
  size_t operator()(std::string_view key) const {
    const size_t n = key.size();
    if (n > 16) return std::hash<std::string_view>{}(key);
    const char* p = key.data();
    uint64_t a = 0, b = 0;
    if (n >= 8) {
      std::memcpy(&a, p, 8);
      std::memcpy(&b, p + n - 8, 8);
    } else if (n >= 4) {
      uint32_t x, y;
      std::memcpy(&x, p, 4);
      std::memcpy(&y, p + n - 4, 4);
      a = x;
      b = y;
    } else if (n > 0) {
      a = static_cast<unsigned char>(p[0]) | static_cast<unsigned char>(p[n / 2]) << 8 |
          static_cast<uint64_t>(static_cast<unsigned char>(p[n - 1])) << 16;
    }
    static const uint64_t seed = reinterpret_cast<uintptr_t>(&seed) * 0x9E3779B97F4A7C15ull;
    uint64_t h = (a ^ seed) * 0xff51afd7ed558ccdull + ((b ^ (seed >> 17)) * 0xc4ceb9fe1a85ec53ull ^ n);
    h ^= h >> 32;
    h *= 0x9E3779B97F4A7C15ull;
    return static_cast<size_t>(h ^ (h >> 29));
  }
};
struct StringViewEq {
  using is_transparent = void;
  bool operator()(std::string_view a, std::string_view b) const {
    const size_t n = a.size();
    if (n != b.size()) return false;
    if (n < 8 || n > 16) return a == b;
    // Two overlapping 8-byte loads a side instead of a call to memcmp.
    uint64_t a0, a1, b0, b1;
    std::memcpy(&a0, a.data(), 8);
    std::memcpy(&a1, a.data() + n - 8, 8);
    std::memcpy(&b0, b.data(), 8);
    std::memcpy(&b1, b.data() + n - 8, 8);
    return ((a0 ^ b0) | (a1 ^ b1)) == 0;
  }
};

// The state of one partition: its keys and values, its changelog checkpoint
// and its task metadata.
class PartitionStore {
 public:
  // One put (value set) or delete (value nullopt).
  struct Write {
    std::string key;
    std::optional<std::string> value;
  };

  virtual ~PartitionStore() = default;

  // The Kafka partition this store holds.
  virtual int32_t PartitionId() const = 0;

  // The value stored under `key`, or nullopt when there is none.
  [[nodiscard]] virtual Result<std::optional<std::string>> Get(std::string_view key) const = 0;

  // The values of `keys`, as Get gives them one by one; a store may read
  // neighbouring keys together (give them in key order where possible).
  [[nodiscard]] virtual Result<std::vector<std::optional<std::string>>> GetMany(
      std::span<const std::string> keys) const {
    std::vector<std::optional<std::string>> values;
    values.reserve(keys.size());
    for (const std::string& k : keys) {
      auto v = Get(k);
      if (!v.ok()) return v.error();
      values.push_back(std::move(*v));
    }
    return values;
  }

  // Applies `writes` in order (a later write to the same key wins) together
  // with the changelog checkpoint (the next changelog offset these writes
  // reflect, >= 0) and an opaque task-metadata blob, as one atomic batch.
  // Nothing is written when a key is invalid. The checkpoint is stored as
  // given; the caller keeps it moving forward. With gathered commits
  // (StoreOptions::commit_overlay_bytes) a commit that fills the overlay
  // hands the write of the gathered batch to the store's flusher thread and
  // returns; reads see the batch all along. When that write fails, the
  // batch stays gathered and the next commit writes it again itself and
  // returns that write's error, yet is applied in memory (reads, the
  // checkpoint and the metadata show it); repeating the failed commit is
  // harmless.
  [[nodiscard]] Status Commit(const std::vector<Write>& writes, int64_t changelog_next_offset,
                              std::string_view task_meta);

  // Commit of writes whose bytes the caller keeps alive for the call (a
  // restore passes the changelog records it holds, uncopied).
  struct WriteView {
    std::string_view key;
    std::optional<std::string_view> value;  // nullopt: delete
  };
  [[nodiscard]] virtual Status CommitViews(std::span<const WriteView> writes, int64_t changelog_next_offset,
                                           std::string_view task_meta) = 0;

  // CommitViews for a restore's large runs of writes, sorted by key with one
  // write per key (as KeepLastWritePerKey leaves them): a store may write
  // them into a table file of its own format and add that file whole, which
  // skips the memtable, its flush and the compactions that would rewrite
  // them. Atomic as CommitViews: the run, the checkpoint and the metadata
  // become visible together, or nothing of them does.
  [[nodiscard]] virtual Status BulkCommit(std::span<const WriteView> sorted_writes, int64_t changelog_next_offset,
                                          std::string_view task_meta) {
    return CommitViews(sorted_writes, changelog_next_offset, task_meta);
  }

  // Writes the commits gathered in memory (StoreOptions::
  // commit_overlay_bytes) to RocksDB now; Flush, a clean close and scans do
  // it too. The error of the write; what failed stays gathered.
  [[nodiscard]] virtual Status WriteGathered() { return Status::Ok(); }

  // The changelog offset stored by the last Commit; -1 when none was ever
  // committed (a new or dropped partition: restore from the beginning).
  virtual int64_t ChangelogCheckpoint() const = 0;

  // The task metadata stored by the last Commit; "" when none.
  virtual std::string TaskMeta() const = 0;

  // Calls fn(key, value) for every stored key except the reserved ones, in
  // key order (bytewise), on a consistent snapshot; stops early when fn
  // returns false. The views are valid only during the call. A full scan
  // does not evict the working set from the block cache.
  [[nodiscard]] virtual Status ForEach(
      const std::function<bool(std::string_view key, std::string_view value)>& fn) const = 0;

  // RocksDB's estimate of the number of keys (deletes not yet compacted away
  // make it inexact).
  virtual uint64_t ApproximateKeys() const = 0;
};

// All partitions of one worker process.
class StateStore {
 public:
  // Opens (creating if needed) the RocksDB instance at options.path and every
  // partition in it. kInvalidArgument for an empty path or zero sizes; kIo
  // when the directory cannot be created or opened (including when another
  // process holds it).
  [[nodiscard]] static Result<std::unique_ptr<StateStore>> Open(const StoreOptions& options);

  virtual ~StateStore() = default;

  // The store of `partition` (>= 0), creating its column family if missing.
  // Owned by this StateStore; the pointer is stable until DropPartition.
  [[nodiscard]] virtual Result<PartitionStore*> Partition(int32_t partition) = 0;

  // Deletes the partition's column family and all its data (a lost volume;
  // tests). Invalidates the partition's PartitionStore*; a later Partition(p)
  // starts empty with checkpoint -1. Dropping a partition that does not
  // exist is not an error.
  [[nodiscard]] virtual Status DropPartition(int32_t partition) = 0;

  // The partitions present (on disk or created since Open), ascending.
  virtual std::vector<int32_t> Partitions() const = 0;

  // Writes every partition's memtables to SST files and waits for it. Not
  // needed for durability (the write-ahead log covers it); makes the next
  // Open replay nothing, and lets tests exercise the on-disk read path.
  [[nodiscard]] virtual Status Flush() = 0;

  // After a background write error (a full disk), tries to make the store
  // writable again: kNoSpace while space is still short.
  [[nodiscard]] virtual Status Resume() = 0;

  // Live SST files plus memtables of all partitions, bytes (approximate).
  virtual uint64_t ApproximateSizeBytes() const = 0;

  // Bytes currently charged to the shared block cache (data, index and
  // filter blocks); at most StoreOptions::block_cache_bytes once no read is
  // in progress.
  virtual uint64_t BlockCacheUsageBytes() const = 0;
};

// "p<N>", the column family name of partition N.
std::string PartitionColumnFamilyName(int32_t partition);

// The partition of a column family named "p<N>" (canonical decimal, no sign,
// no leading zeros), or nullopt for any other name.
std::optional<int32_t> ParsePartitionColumnFamilyName(std::string_view name);

// The positions of the last item of each distinct key among `keys`, in key
// order (bytewise, as RocksDB's default comparator orders keys). Keys are
// compared by their first 16 bytes as integers, and in full only where those
// agree and a key is longer: a restore's run of a few million container keys
// sorts without a string comparison per step.
std::vector<uint32_t> LastOfEachKeyInOrder(std::span<const std::string_view> keys);

// Orders `items` by key and keeps only the last item of each key (the one
// applying them in the given order would leave).
template <typename T, typename KeyOf>
void KeepLastPerKey(std::vector<T>* items, KeyOf key_of) {
  std::vector<std::string_view> keys;
  keys.reserve(items->size());
  for (const T& item : *items) keys.push_back(key_of(item));
  const std::vector<uint32_t> order = LastOfEachKeyInOrder(keys);
  std::vector<T> kept;
  kept.reserve(order.size());
  for (uint32_t i : order) kept.push_back(std::move((*items)[i]));
  items->swap(kept);
}

// KeepLastPerKey for a commit's writes: a commit of the result stores the
// same and the memtable inserts each key beside the previous one.
void KeepLastWritePerKey(std::vector<PartitionStore::WriteView>* writes);

// Turns off the store's per-operation performance counters on the calling
// thread (they cost a thread-local look-up per write and nothing reads them).
void DisableStoreCountersOnThisThread();

}  // namespace boxwatch::state
