#pragma once
// A container's unevaluated items (ContainerState.pending_items): 16-byte
// records laid end to end in (time, kind) order, each a little-endian int64
// event time, an int32 kind (RiskEngine::Kind: the tie order) and 4 zero
// bytes. The join adds one per event, the evaluation takes them from the
// front once its bound passes them, the commit stores the buffer as it is.
//
// PendingItems reads a buffer and is valid until it changes;
// MutablePendingItems changes one. Neither owns it. Not thread-safe.

#include <bit>
#include <cstdint>
#include <cstring>
#include <string>

#include "boxwatch/v1/state.pb.h"

namespace boxwatch::operators {

static_assert(std::endian::native == std::endian::little, "pending items are stored as the CPU lays them out");

struct PendingItem {
  int64_t time_ms = 0;
  int32_t kind = 0;
  auto operator<=>(const PendingItem&) const = default;
};

class PendingItems {
 public:
  static constexpr size_t kRecordBytes = 16;
  explicit PendingItems(const std::string& bytes) : data_(bytes.data()), size_(static_cast<int>(bytes.size() / kRecordBytes)) {}
  int size() const { return size_; }
  bool empty() const { return size_ == 0; }
  PendingItem Get(int i) const {
    PendingItem item;
    std::memcpy(&item.time_ms, data_ + i * kRecordBytes, 8);
    std::memcpy(&item.kind, data_ + i * kRecordBytes + 8, 4);
    return item;
  }

 private:
  const char* data_;
  int size_;
};

class MutablePendingItems {
 public:
  explicit MutablePendingItems(std::string* bytes) : bytes_(bytes) {}
  PendingItems View() const { return PendingItems(*bytes_); }
  // Adds `item` in order; false when it is there already. Most come in
  // order, so the place is searched from the end.
  bool Insert(PendingItem item) {
    const PendingItems items = View();
    int at = items.size();
    while (at > 0) {
      const PendingItem before = items.Get(at - 1);
      if (before == item) return false;
      if (before < item) break;
      --at;
    }
    char record[PendingItems::kRecordBytes] = {};
    std::memcpy(record, &item.time_ms, 8);
    std::memcpy(record + 8, &item.kind, 4);
    bytes_->insert(static_cast<size_t>(at) * PendingItems::kRecordBytes, record, sizeof(record));
    return true;
  }
  // Drops the first `n` items.
  void EraseFront(int n) { bytes_->erase(0, static_cast<size_t>(n) * PendingItems::kRecordBytes); }

 private:
  std::string* bytes_;
};

// A state stored before pending_items lists its items as PendingEvaluation
// messages (which need not be in order): moves them into pending_items.
inline void MovePendingToItems(v1::ContainerState* s) {
  if (s->pending_size() == 0) return;
  MutablePendingItems items(s->mutable_pending_items());
  for (const auto& p : s->pending()) items.Insert({p.time_ms(), p.kind()});
  s->clear_pending();
}

}  // namespace boxwatch::operators
