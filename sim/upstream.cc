#include "sim/upstream.h"

#include <google/protobuf/util/json_util.h>

#include "ingest/cuscar.h"
#include "ingest/n42.h"

namespace boxwatch::sim {

Traffic InUpstreamFormats(const Traffic& traffic) {
  Traffic out;
  out.labels = traffic.labels;
  out.records.reserve(traffic.records.size());
  size_t interchange = 0;
  for (const auto& r : traffic.records) {
    TrafficRecord converted = r;
    if (r.role == pipeline::TopicRole::kManifests && r.expect_dead_letter.empty()) {
      v1::Manifest m;
      const bool parsed = r.json ? google::protobuf::util::JsonStringToMessage(r.value, &m).ok() : m.ParseFromString(r.value);
      if (parsed) {
        converted.role = pipeline::TopicRole::kRawCuscar;
        converted.value = ingest::WriteCuscar({m}, "SIM" + std::to_string(++interchange));
        converted.json = false;
      }
    } else if (r.role == pipeline::TopicRole::kScans && r.expect_dead_letter.empty()) {
      v1::ScanResult s;
      const bool parsed = r.json ? google::protobuf::util::JsonStringToMessage(r.value, &s).ok() : s.ParseFromString(r.value);
      if (parsed && s.kind() == v1::ScanResult::SCAN_KIND_RPM) {
        converted.role = pipeline::TopicRole::kRawN42;
        converted.value = ingest::WriteN42(s);
        converted.json = false;
      }
    }
    out.records.push_back(std::move(converted));
  }
  return out;
}

}  // namespace boxwatch::sim
