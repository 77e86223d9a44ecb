#pragma once
// A hub's durable store (RocksDB): the alerts it received, an index by
// priority and time for the control room, and the resume token. One synced
// write batch stores a group of alerts together with the token of the newest
// one, so after a crash the token never points past what is stored, and an
// alert received again after a reconnect is recognised by its id and ignored:
// exactly once at the hub. Thread-safe.

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "boxwatch/v1/alert.pb.h"
#include "core/result.h"

namespace boxwatch::delivery {

class HubStore {
 public:
  static Result<std::unique_ptr<HubStore>> Open(const std::string& dir);
  ~HubStore();

  struct StoreResult {
    std::vector<size_t> stored;  // indexes of the new ones in the input
    size_t duplicates = 0;
  };
  // Stores the alerts not already present and `token`, in one synced batch.
  Result<StoreResult> Store(const std::vector<v1::Alert>& alerts, const std::string& token);
  // The token of the newest stored alert ("" when none).
  Result<std::string> Token() const;
  Result<std::optional<v1::Alert>> Get(const std::string& alert_id) const;

  struct Query {
    v1::Priority min_priority = v1::PRIORITY_UNSPECIFIED;
    std::string container;  // only this container when set
    size_t limit = 100;
    size_t offset = 0;      // skip this many matches first (paging)
  };
  // Matching alerts, highest priority first, newest event first within one.
  Result<std::vector<v1::Alert>> List(const Query& query, size_t* total_matching = nullptr) const;
  uint64_t count() const;
  // Calls `visit` with every stored alert, in id order.
  Status ForEach(const std::function<void(const v1::Alert&)>& visit) const;

  // The control room's records beside the alerts: a small value per name
  // (e.g. an alert's workflow), written synced.
  Status PutRecord(const std::string& name, const std::string& value);
  Result<std::optional<std::string>> GetRecord(const std::string& name) const;
  // Every record whose name starts with `prefix`.
  Status ForEachRecord(const std::string& prefix,
                       const std::function<void(const std::string& name, const std::string& value)>& visit) const;

  // The audit trail: append-only, numbered from 1, synced before returning.
  Result<uint64_t> AppendAudit(const std::string& entry);
  // Entries numbered below `before` (0: from the newest), newest first, that
  // `keep` accepts, at most `limit`.
  Result<std::vector<std::pair<uint64_t, std::string>>> Audit(
      uint64_t before, size_t limit, const std::function<bool(const std::string&)>& keep) const;

 private:
  struct Impl;
  explicit HubStore(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace boxwatch::delivery
