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
//
// A backlog sweep (docs/delivery.md, "A hub that was away") serves a hub
// that comes back far behind: the backlog [next_offset, end) of each
// partition is read once per priority, most urgent first, while alerts past
// `end` are sent as they arrive. The cursor then also holds the priority of
// the current pass, how far that pass has got (pass_next: its alerts below
// are handled) and, past `end`, live_next (everything in [end, live_next)
// handled); so whether an offset is handled depends on its alert's priority.

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
  // `priority`: the alert's (boxwatch.v1.Priority number); it matters only
  // during a sweep.
  bool IsDone(int32_t partition, int64_t offset, int priority = 0) const;
  void MarkDone(int32_t partition, int64_t offset);
  // Marks [start, end) handled: offsets a read_committed reader never sees
  // (transaction markers, aborted records) are marked as the gaps between
  // consecutive records, so the ranges fold.
  void MarkDoneRange(int32_t partition, int64_t start, int64_t end);
  // Raises next_offset to `low_watermark`: records below it were deleted by
  // retention (they can never be delivered). A partition without progress
  // starts there; during a sweep, a partition the sweep does not cover joins
  // it with an empty backlog.
  void SkipBelow(int32_t partition, int64_t low_watermark);
  // Handled ranges above next_offset, summed over partitions.
  size_t OpenRanges() const;

  // The pass that carries an alert of `priority`: its own, with an
  // unspecified priority in the LOW pass and one above CRITICAL in the
  // CRITICAL pass, so that no alert falls between the passes.
  static int PassOf(int priority);
  // Starts a sweep over [StartOffset(p), end[p]) of every partition, first
  // pass at `priority`. Partitions without progress start at their end.
  void StartSweep(const std::map<int32_t, int64_t>& end, int priority);
  bool sweeping() const { return sweep_priority_ > 0; }
  int sweep_priority() const { return sweep_priority_; }
  int64_t SweepEnd(int32_t partition) const;
  // Where the current pass reads from in `partition`, and where live reading
  // starts.
  int64_t PassStart(int32_t partition) const;
  int64_t LiveStart(int32_t partition) const;
  // The current pass has handled every alert of its priority below `offset`
  // in `partition` (the lowest one still queued, or the reader's position).
  void PassReached(int32_t partition, int64_t offset);
  // The pass is complete in every partition: the next one, at `priority`,
  // starts from the backlog's start; priority 0 ends the sweep (the whole
  // backlog is handled).
  void NextPass(int priority);
  std::string Token() const;

 private:
  struct PartitionProgress {
    int64_t next_offset = -1;            // -1: none yet
    std::map<int64_t, int64_t> done;     // start -> end (exclusive), above next_offset
    int64_t sweep_end = -1;              // during a sweep: the backlog's end
    int64_t pass_next = -1;              // the current pass's handled prefix
    int64_t live_next = -1;              // [sweep_end, live_next) handled
  };
  void Fold(PartitionProgress& p);

  std::string topic_;
  std::map<int32_t, PartitionProgress> partitions_;
  int sweep_priority_ = 0;  // 0: no sweep
};

}  // namespace boxwatch::delivery
