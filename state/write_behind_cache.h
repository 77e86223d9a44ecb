#pragma once
// WriteBehindCache<T, Codec>: the decoded working set of one partition, over
// its PartitionStore. The worker uses it with T = boxwatch::v1::ContainerState
// (and a codec that keeps each container in parts, pipeline/state_parts.h) so
// that a container receiving 50 GPS points in one commit interval is decoded
// once, mutated in place, and costs one write per changed part, in RocksDB and
// on the changelog.
//
// A codec says how a value is kept under one or more store keys. It has a
// per-entry `Meta` (what it remembers of the stored form), `kAllParts`, and
//   Result<bool> Load(const PartitionStore&, std::string_view key, T*, Meta*)
//     false when there is no value; kFatal (message without the key) when the
//     stored bytes do not decode;
//   bool Save(std::string_view key, T&, uint32_t dirty_parts, Meta*,
//             std::vector<PartitionStore::Write>*)
//     appends the writes of the parts that changed (the codec may add parts to
//     `dirty_parts`, never drop one); false when a value does not serialise;
//     `T&` because a codec may move fields aside and back while it encodes;
//   void Delete(std::string_view key, Meta*, std::vector<PartitionStore::Write>*)
//     appends a delete of every part;
//   optionally void Replace(std::string_view key, Meta*, std::vector<PartitionStore::Write>*)
//     for a value erased and put again before its writes were taken (called
//     before Save): appends deletes of what the erased value stored that the
//     new one's Save will not overwrite.
// WholeValueCodec, the default, keeps the whole serialised value under the key.
//
// Use, once per commit interval:
//   T* s = cache.Get(key) (nullptr: no state yet) → mutate → cache.MarkDirty(key)
//   or cache.Put(key, value) / cache.Erase(key) (a tombstone)
//   writes = cache.TakeDirty()    // serialised, in key order
//   → produce writes to the changelog inside the Kafka transaction, commit it
//   → store.Commit(writes, changelog next offset, task meta)
// If the transaction aborts, or the store Commit fails, call Clear(): the
// cache then agrees with the store again, and the worker reprocesses input (or
// restores the changelog tail) from the last checkpoint.
//
// Contract
//  - Get loads through the store on a miss and keeps the value clean; a key
//    that is dirty or tombstoned is never reloaded, so the cache always shows
//    the caller's latest writes.
//  - Eviction happens only inside TakeDirty: entries that were already clean
//    when it was called are evicted least-recently-used until at most
//    `max_entries` remain. Recency counts commit intervals (the calls between
//    two TakeDirty): an entry moves to the front at its first use in an
//    interval, not at every use (a container with 50 fixes in a backlog
//    transaction moves once). Dirty entries are never evicted, and neither are the
//    ones just taken, so a Get between TakeDirty and the store Commit cannot
//    read a stale value from the store. Between two TakeDirty calls the cache
//    holds at most max_entries plus the keys touched in the interval.
//  - A T* returned by Get or Put stays valid until the next TakeDirty, Clear,
//    or Erase of that key.
//  - TakeDirty must be followed by the store Commit of its writes (or by
//    Clear) before TakeDirty is called again.
//  - Not thread-safe: one cache per task, used from the task's thread.
//  - Errors: Get returns the store's error (kIo, …), or kFatal when the stored
//    bytes do not decode as T (restore the partition from the changelog).
//    TakeDirty returns kFatal when a value does not serialise, and then takes
//    nothing. MarkDirty returns kNotFound for a key with no cached value (a bug
//    in the caller: Get or Put it first).

#include <algorithm>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <list>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "core/result.h"
#include "state/state_store.h"

namespace boxwatch::state {

// What the cache needs from a value type; protobuf messages have it.
template <typename T>
concept SerializableValue =
    std::default_initializable<T> &&
    requires(T& value, const T& const_value, const std::string& bytes, std::string* out) {
      { value.ParseFromString(bytes) } -> std::convertible_to<bool>;
      { const_value.SerializeToString(out) } -> std::convertible_to<bool>;
    };

template <SerializableValue T>
struct WholeValueCodec {
  struct Meta {};
  static constexpr uint32_t kAllParts = 1;
  static Result<bool> Load(const PartitionStore& store, std::string_view key, T* value, Meta*) {
    Result<std::optional<std::string>> bytes = store.Get(key);
    if (!bytes.ok()) return bytes.error();
    if (!bytes->has_value()) return false;
    if (!value->ParseFromString(**bytes)) {
      return Error{Errc::kFatal, "the stored value (" + std::to_string((*bytes)->size()) + " bytes) does not decode"};
    }
    return true;
  }
  static bool Save(std::string_view key, T& value, uint32_t, Meta*, std::vector<PartitionStore::Write>* out) {
    std::string bytes;
    if (!value.SerializeToString(&bytes)) return false;
    out->push_back({std::string(key), std::move(bytes)});
    return true;
  }
  static void Delete(std::string_view key, Meta*, std::vector<PartitionStore::Write>* out) {
    out->push_back({std::string(key), std::nullopt});
  }
};

template <SerializableValue T, typename Codec = WholeValueCodec<T>>
class WriteBehindCache {
 public:
  // Entries kept after TakeDirty, count (per partition).
  static constexpr size_t kDefaultMaxEntries = 10'000;

  struct Stats {
    uint64_t hits = 0;       // Get answered from the cache (including "no value")
    uint64_t loads = 0;      // Get that read the store
    uint64_t evictions = 0;  // clean entries dropped by TakeDirty
  };

  // `store` must outlive the cache.
  explicit WriteBehindCache(PartitionStore* store, size_t max_entries = kDefaultMaxEntries)
      : store_(store), max_entries_(max_entries) {}

  WriteBehindCache(const WriteBehindCache&) = delete;
  WriteBehindCache& operator=(const WriteBehindCache&) = delete;

  // The value under `key`, or nullptr when there is none (never written, or
  // erased). The pointer may be used to mutate the value; call MarkDirty after.
  [[nodiscard]] Result<T*> Get(std::string_view key) {
    if (auto it = entries_.find(key); it != entries_.end()) {
      ++stats_.hits;
      Entry& e = *it->second;
      Touch(e);
      Remember(e);
      return e.value ? &*e.value : nullptr;
    }
    ++stats_.loads;
    T value;
    typename Codec::Meta meta{};
    Result<bool> found = Codec::Load(*store_, key, &value, &meta);
    if (!found.ok()) {
      if (found.error().code != Errc::kFatal) return found.error();
      return Error{Errc::kFatal,
                   Describe(key) + ": " + found.error().message + "; restore the partition from the changelog"};
    }
    if (!*found) return static_cast<T*>(nullptr);
    Entry& e = Insert(key);
    e.value.emplace(std::move(value));
    e.meta = std::move(meta);
    return &*e.value;
  }

  // Sets `key` to `value` and marks it dirty.
  T* Put(std::string_view key, T value) {
    Entry& e = FindOrInsert(key);
    e.value = std::move(value);
    SetDirty(e, Codec::kAllParts);
    return &*e.value;
  }

  // Records that the value of `key` (obtained from Get or Put) was changed,
  // in `parts` (the codec's part bits; all by default).
  [[nodiscard]] Status MarkDirty(std::string_view key, uint32_t parts = Codec::kAllParts) {
    // The key just got or put, usually: no second look-up.
    Entry* e = last_entry_ != nullptr && last_entry_->key == key ? last_entry_ : nullptr;
    if (e == nullptr) {
      auto it = entries_.find(key);
      if (it != entries_.end()) e = it->second.get();
    }
    if (e == nullptr || !e->value) {
      return Error{Errc::kNotFound, Describe(key) + ": MarkDirty of a key with no cached value; "
                                                    "Get or Put it first"};
    }
    SetDirty(*e, parts);
    return Status::Ok();
  }

  // Deletes `key`: Get returns nullptr from now on, and the next TakeDirty
  // yields a delete (a changelog tombstone).
  void Erase(std::string_view key) {
    Entry& e = FindOrInsert(key);
    e.value.reset();
    e.erased = true;
    SetDirty(e, Codec::kAllParts);
  }

  // Returns every dirty entry as a store write, in key order (values
  // serialised; nullopt for deletes), marks them clean, and evicts clean
  // entries beyond max_entries (see the contract above).
  [[nodiscard]] Result<std::vector<PartitionStore::Write>> TakeDirty() {
    std::vector<PartitionStore::Write> writes;
    writes.reserve(dirty_.size());
    // Metas change only once every value has serialised: a failure takes nothing.
    std::vector<std::pair<Entry*, typename Codec::Meta>> metas;
    metas.reserve(dirty_.size());
    const size_t n = dirty_.size();
    for (size_t i = 0; i < n; ++i) {
      if constexpr (requires { Codec::PrefetchForSave(std::declval<const T&>(), 0); }) {
        // A commit's dirty entries were last touched long ago (as caches
        // go): each is fetched ahead, an entry kPrefetchSteps + 1 places
        // ahead, then what its value points to, a step per place.
        constexpr size_t kSteps = Codec::kPrefetchSteps;
        if (i + kSteps + 1 < n) {
          const char* at = reinterpret_cast<const char*>(dirty_[i + kSteps + 1]);
          for (size_t line = 0; line < sizeof(Entry); line += 64) __builtin_prefetch(at + line);
        }
        for (size_t step = 0; step < kSteps; ++step) {
          const size_t j = i + kSteps - step;
          if (j < n && dirty_[j]->value) Codec::PrefetchForSave(*dirty_[j]->value, static_cast<int>(step));
        }
      }
      Entry& e = *dirty_[i];
      typename Codec::Meta meta = e.meta;
      if (e.value) {
        if constexpr (requires { Codec::Replace(std::string_view(), &meta, &writes); }) {
          if (e.erased) Codec::Replace(e.key, &meta, &writes);
        }
        if (!Codec::Save(e.key, *e.value, e.dirty, &meta, &writes)) {
          return Error{Errc::kFatal, Describe(e.key) + ": the value does not serialise"};
        }
      } else {
        Codec::Delete(e.key, &meta, &writes);
      }
      metas.emplace_back(&e, std::move(meta));
    }
    for (auto& [e, meta] : metas) e->meta = std::move(meta);
    std::sort(writes.begin(), writes.end(),
              [](const auto& a, const auto& b) { return a.key < b.key; });

    // Evict before marking the taken entries clean, so they are protected.
    Forget();
    for (auto it = lru_.end(); it != lru_.begin() && entries_.size() > max_entries_;) {
      --it;
      if ((*it)->dirty) continue;
      const std::string key = std::move((*it)->key);  // the entry goes with the map's slot
      it = lru_.erase(it);
      entries_.erase(key);
      ++stats_.evictions;
    }
    for (Entry* entry : dirty_) {
      entry->dirty = 0;
      entry->erased = false;
    }
    dirty_.clear();
    ++interval_;
    return writes;
  }

  // Drops every entry, dirty ones included: after a transaction abort or a
  // failed store Commit, or when the partition is revoked.
  void Clear() {
    Forget();
    entries_.clear();
    lru_.clear();
    dirty_.clear();
  }

  // Calls fn(key, value or nullptr for a delete) for every dirty entry: with
  // a scan of the store (skipping the keys dirty here) it lists the latest
  // value of every key. `fn` must not change the cache.
  template <typename Fn>
  void ForEachDirty(Fn&& fn) const {
    for (const Entry* entry : dirty_) fn(entry->key, entry->value ? &*entry->value : static_cast<const T*>(nullptr));
  }

  // Hints that `key` is about to be looked up, in three steps a few look-ups
  // apart, so that what each waits for arrives while other keys are worked
  // on (TaskCore fetches ahead this way over the records, and over the
  // containers a release visits):
  //  - Prefetch asks the memory system for where the key is listed;
  //  - PrefetchEntry, once that has arrived, for the entry itself;
  //  - Peek, once the entry has arrived, returns its value (nullptr: none,
  //    or not cached), for the caller to fetch what the value points to.
  // None of them loads from the store, counts or changes recency.
  void Prefetch(std::string_view key) const { entries_.prefetch(key); }
  void PrefetchEntry(std::string_view key) const {
    if (auto it = entries_.find(key); it != entries_.end()) {
      const char* at = reinterpret_cast<const char*>(it->second.get());
      for (size_t line = 0; line < sizeof(Entry); line += 64) __builtin_prefetch(at + line);
    }
  }
  const T* Peek(std::string_view key) const {
    auto it = entries_.find(key);
    return it != entries_.end() && it->second->value ? &*it->second->value : nullptr;
  }
  size_t Size() const { return entries_.size(); }
  size_t DirtyCount() const { return dirty_.size(); }
  // Whether `key` is cached (with a value, or as a tombstone); for tests.
  bool Contains(std::string_view key) const { return entries_.find(key) != entries_.end(); }
  bool IsDirty(std::string_view key) const {
    auto it = entries_.find(key);
    return it != entries_.end() && it->second->dirty != 0;
  }
  const Stats& GetStats() const { return stats_; }
  size_t MaxEntries() const { return max_entries_; }

 private:
  struct Entry;
  using LruList = std::list<Entry*>;  // front = most recently used

  // Entries are allocated one by one and never move (a rehash moves only the
  // map's slots); the LRU list, the dirty list and the remembered entry point
  // at them. The key is kept in the slot too, where a look-up compares it
  // without reading the entry.
  struct Entry {
    std::string key;
    std::optional<T> value;  // nullopt: deleted (a tombstone)
    uint32_t dirty = 0;      // the codec's parts changed since the last TakeDirty; 0: clean
    bool erased = false;     // erased since the last TakeDirty (and maybe put again: Codec::Replace)
    typename Codec::Meta meta{};
    typename LruList::iterator lru;
    uint64_t used_in = 0;  // the interval in which it last moved to the front
  };

  void Touch(Entry& e) {
    if (e.used_in == interval_) return;
    e.used_in = interval_;
    lru_.splice(lru_.begin(), lru_, e.lru);
  }

  void SetDirty(Entry& e, uint32_t parts) {
    if (e.dirty == 0) dirty_.push_back(&e);
    e.dirty |= parts == 0 ? Codec::kAllParts : parts;
  }

  Entry& Insert(std::string_view key) {
    auto [it, inserted] = entries_.try_emplace(std::string(key), std::make_unique<Entry>());
    Entry& e = *it->second;
    e.key = key;
    lru_.push_front(&e);
    e.lru = lru_.begin();
    e.used_in = interval_;
    Remember(e);
    return e;
  }

  Entry& FindOrInsert(std::string_view key) {
    if (auto it = entries_.find(key); it != entries_.end()) {
      Entry& e = *it->second;
      Touch(e);
      Remember(e);
      return e;
    }
    return Insert(key);
  }

  // The entry last got, put or inserted, for the MarkDirty that follows;
  // forgotten before entries are dropped.
  void Remember(Entry& e) { last_entry_ = &e; }
  void Forget() { last_entry_ = nullptr; }

  std::string Describe(std::string_view key) const {
    return "state cache partition " + std::to_string(store_->PartitionId()) + " key \"" +
           std::string(key) + "\"";
  }

  PartitionStore* store_;
  size_t max_entries_;

  // absl's flat map: a look-up probes the control bytes (whose 7-bit hash
  // fragments spare key comparisons), compares the key in its slot (a short
  // key is held inline) and takes the entry's address from there, so the
  // entry is read only once found, and can be fetched ahead (PrefetchEntry).
  // std::unordered_map would cost a cache miss for the bucket, the node
  // before and the node once the working set outgrows the CPU caches. String
  // keys look up by string_view without a copy.
  absl::flat_hash_map<std::string, std::unique_ptr<Entry>, StringViewHash, StringViewEq> entries_;
  LruList lru_;
  std::vector<Entry*> dirty_;  // in the order they became dirty
  Entry* last_entry_ = nullptr;
  Stats stats_;
  uint64_t interval_ = 1;  // TakeDirty calls + 1: the current commit interval
};

}  // namespace boxwatch::state
