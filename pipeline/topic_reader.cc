#include "pipeline/topic_reader.h"

#include <map>

namespace boxwatch::pipeline {

Result<std::vector<OwnedRecord>> ReadToEnd(const std::string& bootstrap, const std::string& topic, int partitions,
                                           std::chrono::milliseconds timeout, const std::string& group,
                                           const KafkaProperties& kafka) {
  auto consumer = KafkaConsumer::Create(
      {.bootstrap = bootstrap, .group_id = group, .read_committed = true, .extra = kafka});
  if (!consumer.ok()) return consumer.error();
  auto& c = **consumer;
  // The end is the high watermark, asked with read_uncommitted: a
  // read_committed query returns the last stable offset, which stops short of
  // a transaction whose commit marker is not written yet.
  auto probe = KafkaConsumer::Create(
      {.bootstrap = bootstrap, .group_id = group + "-probe", .read_committed = false, .extra = kafka});
  if (!probe.ok()) return probe.error();
  std::vector<TopicPartitionOffset> start;
  std::map<int32_t, int64_t> end;
  for (int32_t p = 0; p < partitions; ++p) {
    auto wm = (*probe)->Watermarks(topic, p, std::chrono::seconds(10));
    if (!wm.ok()) return wm.error();
    end[p] = wm->second;
    start.push_back({topic, p, RD_KAFKA_OFFSET_BEGINNING});
  }
  Status s = c.Assign(start);
  if (!s.ok()) return s.error();
  std::vector<OwnedRecord> out;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    auto positions = c.Positions();
    if (!positions.ok()) return positions.error();
    std::map<int32_t, int64_t> at;
    for (const auto& pos : *positions) at[pos.partition] = pos.offset;
    int done = 0;
    for (const auto& [p, e] : end) {
      if (e == 0 || (at.count(p) && at[p] >= e)) ++done;
    }
    if (done == partitions) break;
    if (std::chrono::steady_clock::now() > deadline) {
      return Error{Errc::kTimeout, "reading " + topic + " did not reach the end within " +
                                       std::to_string(timeout.count()) +
                                       " ms (an open transaction holding the last stable offset?)"};
    }
    auto m = c.Poll(std::chrono::milliseconds(200));
    if (!m.ok()) return m.error();
    if (m->has_value()) out.push_back((*m)->ToOwned());
  }
  return out;
}

}  // namespace boxwatch::pipeline
