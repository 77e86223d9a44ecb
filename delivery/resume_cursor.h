#pragma once
// Where a hub's subscription stands in the alerts topic, and the opaque
// resume token that carries it (boxwatch.v1.ResumeCursor).
//
// The dispatcher sends alerts in priority order, not offset order, so a
// position is not one offset per partition: it is "everything below
// next_offset is handled" plus the handled offsets above it. Handling an
// offset (sending it, or reading it and finding it is not for this hub)
// marks it done; runs of done offsets at next_offset fold into it, so the
// set above stays as small as the alerts still queued behind a
// higher-priority one. Not thread-safe.

#include <cstdint>
#include <map>
#include <string>

#include "core/result.h"

namespace boxwatch::delivery {

class DeliveryCursor {
 public:
  // An empty token starts every partition at the oldest retained alert.
  // Errors: a token that does not decode, or that names another topic.
  static Result<DeliveryCursor> FromToken(const std::string& token, const std::string& topic);

  explicit DeliveryCursor(std::string topic) : topic_(std::move(topic)) {}

  // First offset of `partition` that may still need handling; -1 when the
  // partition has no progress (start at the oldest retained alert).
  int64_t StartOffset(int32_t partition) const;
  bool IsDone(int32_t partition, int64_t offset) const;
  void MarkDone(int32_t partition, int64_t offset);
  // Marks [start, end) handled: offsets a read_committed reader never sees
  // (transaction markers, aborted records) are marked as the gaps between
  // consecutive records, so the ranges fold.
  void MarkDoneRange(int32_t partition, int64_t start, int64_t end);
  // Raises next_offset to `low_watermark`: records below it were deleted by
  // retention (they can never be delivered). A partition without progress
  // starts there.
  void SkipBelow(int32_t partition, int64_t low_watermark);
  // Handled ranges above next_offset, summed over partitions.
  size_t OpenRanges() const;
  std::string Token() const;

 private:
  struct PartitionProgress {
    int64_t next_offset = -1;            // -1: none yet
    std::map<int64_t, int64_t> done;     // start -> end (exclusive), above next_offset
  };
  void Fold(PartitionProgress& p);

  std::string topic_;
  std::map<int32_t, PartitionProgress> partitions_;
};

}  // namespace boxwatch::delivery
