#pragma once
// MapPartition: a state::PartitionStore in a std::map, holding what the
// state codecs read and write and nothing else (no checkpoint, no task
// metadata). For unit tests and fuzz targets of the codecs; not thread-safe.

#include <functional>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "state/state_store.h"

namespace boxwatch::testing {

class MapPartition final : public state::PartitionStore {
 public:
  int32_t PartitionId() const override { return 0; }
  Result<std::optional<std::string>> Get(std::string_view key) const override {
    auto it = values.find(std::string(key));
    if (it == values.end()) return std::optional<std::string>();
    return std::optional<std::string>(it->second);
  }
  Status CommitViews(std::span<const WriteView> writes, int64_t, std::string_view) override {
    for (const auto& w : writes) {
      if (w.value) {
        values[std::string(w.key)] = std::string(*w.value);
      } else {
        values.erase(std::string(w.key));
      }
    }
    return Status::Ok();
  }
  int64_t ChangelogCheckpoint() const override { return -1; }
  std::string TaskMeta() const override { return ""; }
  Status ForEach(const std::function<bool(std::string_view, std::string_view)>& fn) const override {
    for (const auto& [k, v] : values)
      if (!fn(k, v)) break;
    return Status::Ok();
  }
  uint64_t ApproximateKeys() const override { return values.size(); }
  std::map<std::string, std::string> values;
};

}  // namespace boxwatch::testing
