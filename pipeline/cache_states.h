#pragma once
// CacheStates: a task's container states in the worker's write-behind
// cache (state/write_behind_cache.h) over a partition store, kept in parts
// by the state codec (pipeline/state_parts.h): what TaskCore reads and
// marks goes through here. The worker adds how the stored containers are
// listed (ForEach); tests list them their own way. One per task, used from
// the task's thread.

#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "pipeline/state_parts.h"
#include "pipeline/task_core.h"
#include "state/write_behind_cache.h"

namespace boxwatch::pipeline {

class CacheStates : public ContainerStates {
 public:
  // `store` must outlive this.
  CacheStates(state::PartitionStore* store, size_t max_entries) : store_(store), cache_(store, max_entries) {}
  Result<v1::ContainerState*> Get(const std::string& key) override { return cache_.Get(key); }
  void Prefetch(std::string_view key) override { cache_.Prefetch(key); }
  void PrefetchEntry(std::string_view key) override { cache_.PrefetchEntry(key); }
  const v1::ContainerState* Peek(std::string_view key) override { return cache_.Peek(key); }
  v1::ContainerState* Put(const std::string& key, v1::ContainerState state) override {
    return cache_.Put(key, std::move(state));
  }
  Status MarkDirty(const std::string& key, uint32_t parts) override { return cache_.MarkDirty(key, parts); }
  // Loaded first: deleting a container deletes the window chunks its
  // movement part lists.
  Status Erase(const std::string& key) override {
    if (auto loaded = cache_.Get(key); !loaded.ok()) return loaded.error();
    cache_.Erase(key);
    return Status::Ok();
  }
  state::WriteBehindCache<v1::ContainerState, ContainerStateCodec>& cache() { return cache_; }

 protected:
  // ForEach the slow and simple way, for tests and benchmarks: every stored
  // container loaded (the worker reads the stored fields off the wire
  // instead), then those only the cache holds.
  Status ForEachLoading(const std::function<void(const std::string&, const Summary&)>& fn) {
    std::vector<std::string> keys;
    Status listed = store_->ForEach([&](std::string_view key, std::string_view) {
      if (IsMovementKey(key) && !cache_.IsDirty(key)) keys.emplace_back(key);
      return true;
    });
    if (!listed.ok()) return listed;
    auto list = [&](const std::string& key, const v1::ContainerState& s) {
      fn(key, {s.last_event_ms(), s.due_ms(), !s.pending_items().empty(), OwnProgress(s)});
    };
    for (const auto& key : keys) {
      auto s = cache_.Get(key);
      if (!s.ok()) return s.error();
      if (*s != nullptr) list(key, **s);
    }
    cache_.ForEachDirty([&](const std::string& key, const v1::ContainerState* v) {
      if (v != nullptr) list(key, *v);
    });
    return Status::Ok();
  }

  state::PartitionStore* store_;
  state::WriteBehindCache<v1::ContainerState, ContainerStateCodec> cache_;
};

}  // namespace boxwatch::pipeline
