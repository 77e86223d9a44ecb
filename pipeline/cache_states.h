#pragma once
// CacheStates: a task's container states in the worker's write-behind
// cache (state/write_behind_cache.h) over a partition store, kept in parts
// by the state codec (pipeline/state_parts.h): what TaskCore reads and
// marks goes through here. The worker adds how the stored containers are
// listed (ForEach); tests list them their own way. One per task, used from
// the task's thread.

#include <string>

#include "pipeline/state_parts.h"
#include "pipeline/task_core.h"
#include "state/write_behind_cache.h"

namespace boxwatch::pipeline {

class CacheStates : public ContainerStates {
 public:
  // `store` must outlive this.
  CacheStates(state::PartitionStore* store, size_t max_entries) : store_(store), cache_(store, max_entries) {}
  Result<v1::ContainerState*> Get(const std::string& key) override { return cache_.Get(key); }
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
  state::PartitionStore* store_;
  state::WriteBehindCache<v1::ContainerState, ContainerStateCodec> cache_;
};

}  // namespace boxwatch::pipeline
