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
    if (msg.sweep_priority() > 0) {
      // Sweep fields out of order are put back in order, not refused: a hub
      // that cannot resume would never get its backlog.
      if (p.sweep_end() < 0 || p.pass_next() < 0 || p.live_next() < 0)
        return Error(Errc::kInvalidArgument, "resume token has a malformed sweep for partition " +
                                                 std::to_string(p.partition()));
      progress.sweep_end = p.sweep_end();
      progress.pass_next = p.pass_next();
      progress.live_next = p.live_next();
    }
  }
  if (msg.sweep_priority() < 0 || msg.sweep_priority() > 4)
    return Error(Errc::kInvalidArgument, "resume token has a malformed sweep priority");
  cursor.sweep_priority_ = msg.sweep_priority();
  for (auto& [_, progress] : cursor.partitions_) cursor.Fold(progress);
  return cursor;
}

int DeliveryCursor::PassOf(int priority) {
  return std::clamp(priority, static_cast<int>(v1::PRIORITY_LOW), static_cast<int>(v1::PRIORITY_CRITICAL));
}

int64_t DeliveryCursor::StartOffset(int32_t partition) const {
  auto it = partitions_.find(partition);
  return it == partitions_.end() ? -1 : it->second.next_offset;
}

bool DeliveryCursor::IsDone(int32_t partition, int64_t offset, int priority) const {
  auto it = partitions_.find(partition);
  if (it == partitions_.end()) return false;
  const auto& p = it->second;
  if (offset < p.next_offset) return true;
  auto r = p.done.upper_bound(offset);
  if (r != p.done.begin() && offset < std::prev(r)->second) return true;
  if (sweeping() && p.sweep_end >= 0) {
    if (offset < p.sweep_end) {
      const int rank = PassOf(priority);
      return rank > sweep_priority_ || (rank == sweep_priority_ && offset < p.pass_next);
    }
    return offset < p.live_next;
  }
  return false;
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
  if (sweeping() && p.sweep_end >= 0) {
    p.pass_next = std::max(p.pass_next, low_watermark);
    p.sweep_end = std::max(p.sweep_end, low_watermark);
    p.live_next = std::max(p.live_next, p.sweep_end);
  }
  if (p.next_offset < low_watermark) {  // also a fresh partition (-1)
    p.next_offset = low_watermark;
    while (!p.done.empty() && p.done.begin()->first < low_watermark) {
      const int64_t end = p.done.begin()->second;
      p.done.erase(p.done.begin());
      if (end > low_watermark) p.done[low_watermark] = end;
    }
  }
  // A partition the sweep does not know (new since it started) joins it
  // with an empty backlog: the live reader takes it from its start.
  if (sweeping() && p.sweep_end < 0) p.sweep_end = p.pass_next = p.live_next = p.next_offset;
  Fold(p);
}

void DeliveryCursor::Fold(PartitionProgress& p) {
  while (!p.done.empty() && p.done.begin()->first <= p.next_offset) {
    p.next_offset = std::max(p.next_offset, p.done.begin()->second);
    p.done.erase(p.done.begin());
  }
  if (!sweeping() || p.sweep_end < 0) return;
  // next_offset may pass pass_next (a pass's alert at next_offset sent) or
  // the backlog's end (a partition with an empty backlog, where live sends
  // fold into it): everything below it is handled, so the pass's prefix and
  // the live range are at least as far.
  p.pass_next = std::clamp(p.pass_next, std::min(p.next_offset, p.sweep_end), p.sweep_end);
  p.live_next = std::max({p.live_next, p.sweep_end, p.next_offset});
  // Past the backlog, handled ranges that touch live_next fold into it.
  for (auto it = p.done.begin(); it != p.done.end();) {
    if (it->second <= p.sweep_end) {
      ++it;
      continue;
    }
    if (std::max(it->first, p.sweep_end) > p.live_next) break;
    p.live_next = std::max(p.live_next, it->second);
    if (it->first < p.sweep_end) {
      it->second = p.sweep_end;
      ++it;
    } else {
      it = p.done.erase(it);
    }
  }
}

void DeliveryCursor::StartSweep(const std::map<int32_t, int64_t>& end, int priority) {
  sweep_priority_ = priority;
  for (const auto& [partition, e] : end) {
    auto& p = partitions_[partition];
    if (p.next_offset < 0) p.next_offset = e;
    p.sweep_end = std::max(e, p.next_offset);
    p.pass_next = p.next_offset;
    p.live_next = p.sweep_end;
    Fold(p);
  }
}

int64_t DeliveryCursor::SweepEnd(int32_t partition) const {
  auto it = partitions_.find(partition);
  return it == partitions_.end() ? -1 : it->second.sweep_end;
}

int64_t DeliveryCursor::PassStart(int32_t partition) const {
  auto it = partitions_.find(partition);
  return it == partitions_.end() ? -1 : it->second.pass_next;
}

int64_t DeliveryCursor::LiveStart(int32_t partition) const {
  auto it = partitions_.find(partition);
  return it == partitions_.end() ? -1 : it->second.live_next;
}

void DeliveryCursor::PassReached(int32_t partition, int64_t offset) {
  auto& p = partitions_[partition];
  if (!sweeping() || p.sweep_end < 0) return;
  p.pass_next = std::max(p.pass_next, std::min(offset, p.sweep_end));
  // Handled offsets below pass_next are covered by the pass (their alerts
  // have its priority or a higher one) or are read again by the next pass
  // (not for this hub, or not alerts): the ranges are not needed.
  for (auto it = p.done.begin(); it != p.done.end() && it->first < p.pass_next;) {
    if (it->second <= p.pass_next) {
      it = p.done.erase(it);
    } else {
      const int64_t end = it->second;
      p.done.erase(it);
      p.done[p.pass_next] = end;
      break;
    }
  }
}

void DeliveryCursor::NextPass(int priority) {
  if (priority > 0) {
    sweep_priority_ = priority;
    for (auto& [_, p] : partitions_) {
      if (p.sweep_end < 0) continue;
      p.pass_next = p.next_offset;
      Fold(p);
    }
    return;
  }
  // The whole backlog is handled.
  for (auto& [_, p] : partitions_) {
    if (p.sweep_end < 0) continue;
    p.next_offset = std::max(p.next_offset, p.live_next);
    while (!p.done.empty() && p.done.begin()->second <= p.next_offset) p.done.erase(p.done.begin());
    p.sweep_end = p.pass_next = p.live_next = -1;
  }
  sweep_priority_ = 0;
  for (auto& [_, p] : partitions_) Fold(p);
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
    if (sweeping() && p.sweep_end >= 0) {
      out->set_sweep_end(p.sweep_end);
      out->set_pass_next(p.pass_next);
      out->set_live_next(p.live_next);
    }
  }
  if (sweeping()) msg.set_sweep_priority(sweep_priority_);
  return msg.SerializeAsString();
}

}  // namespace boxwatch::delivery
