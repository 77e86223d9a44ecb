#include "delivery/resume_cursor.h"

#include <algorithm>
#include <iterator>

#include "boxwatch/v1/alert_service.pb.h"

namespace boxwatch::delivery {

Result<DeliveryCursor> DeliveryCursor::FromToken(const std::string& token, const std::string& topic) {
  DeliveryCursor cursor(topic);
  if (token.empty()) return cursor;
  v1::ResumeCursor msg;
  if (!msg.ParseFromString(token))
    return Error(Errc::kInvalidArgument, "resume token does not decode (send an empty token to start over)");
  if (msg.topic() != topic)
    return Error(Errc::kInvalidArgument, "resume token is for topic " + msg.topic() + ", this dispatcher serves " +
                                             topic + " (send an empty token to start over)");
  for (const auto& p : msg.partitions()) {
    if (p.partition() < 0 || p.next_offset() < 0 || p.done_ranges_size() % 2 != 0)
      return Error(Errc::kInvalidArgument, "resume token has a malformed entry for partition " +
                                               std::to_string(p.partition()));
    auto& progress = cursor.partitions_[p.partition()];
    progress.next_offset = p.next_offset();
    for (int i = 0; i < p.done_ranges_size(); i += 2) {
      const int64_t start = p.done_ranges(i);
      const int64_t end = p.done_ranges(i + 1);
      if (start < p.next_offset() || end <= start)
        return Error(Errc::kInvalidArgument, "resume token has a malformed range for partition " +
                                                 std::to_string(p.partition()));
      progress.done[start] = end;
    }
    cursor.Fold(progress);
  }
  return cursor;
}

int64_t DeliveryCursor::StartOffset(int32_t partition) const {
  auto it = partitions_.find(partition);
  return it == partitions_.end() ? -1 : it->second.next_offset;
}

bool DeliveryCursor::IsDone(int32_t partition, int64_t offset) const {
  auto it = partitions_.find(partition);
  if (it == partitions_.end()) return false;
  const auto& p = it->second;
  if (offset < p.next_offset) return true;
  auto r = p.done.upper_bound(offset);
  if (r == p.done.begin()) return false;
  --r;
  return offset < r->second;
}

void DeliveryCursor::MarkDone(int32_t partition, int64_t offset) { MarkDoneRange(partition, offset, offset + 1); }

void DeliveryCursor::MarkDoneRange(int32_t partition, int64_t start, int64_t end) {
  auto& p = partitions_[partition];
  if (p.next_offset < 0) p.next_offset = start;
  start = std::max(start, p.next_offset);
  if (end <= start) return;
  // Absorb every range that overlaps or touches [start, end).
  auto it = p.done.upper_bound(start);
  if (it != p.done.begin() && std::prev(it)->second >= start) --it;
  while (it != p.done.end() && it->first <= end) {
    start = std::min(start, it->first);
    end = std::max(end, it->second);
    it = p.done.erase(it);
  }
  p.done[start] = end;
  Fold(p);
}

void DeliveryCursor::SkipBelow(int32_t partition, int64_t low_watermark) {
  auto& p = partitions_[partition];
  if (p.next_offset >= low_watermark) return;  // also covers a fresh partition (-1) below
  p.next_offset = low_watermark;
  while (!p.done.empty() && p.done.begin()->first < low_watermark) {
    const int64_t end = p.done.begin()->second;
    p.done.erase(p.done.begin());
    if (end > low_watermark) p.done[low_watermark] = end;
  }
  Fold(p);
}

void DeliveryCursor::Fold(PartitionProgress& p) {
  while (!p.done.empty() && p.done.begin()->first <= p.next_offset) {
    p.next_offset = std::max(p.next_offset, p.done.begin()->second);
    p.done.erase(p.done.begin());
  }
}

size_t DeliveryCursor::OpenRanges() const {
  size_t n = 0;
  for (const auto& [_, p] : partitions_) n += p.done.size();
  return n;
}

std::string DeliveryCursor::Token() const {
  v1::ResumeCursor msg;
  msg.set_topic(topic_);
  for (const auto& [partition, p] : partitions_) {
    if (p.next_offset < 0) continue;
    auto* out = msg.add_partitions();
    out->set_partition(partition);
    out->set_next_offset(p.next_offset);
    for (const auto& [start, end] : p.done) {
      out->add_done_ranges(start);
      out->add_done_ranges(end);
    }
  }
  return msg.SerializeAsString();
}

}  // namespace boxwatch::delivery
