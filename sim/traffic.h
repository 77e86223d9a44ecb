#pragma once
// Deterministic container traffic for tests, benchmarks and (later) the
// simulator: manifests, RPM scans and GPS fixes for a fleet of containers
// on the profile's first corridor, with labelled scenarios, out-of-order GPS
// delivery within a bound, duplicate deliveries and, optionally, malformed
// records. The same options and seed always give the same records.

#include <cstdint>
#include <string>
#include <vector>

#include "operators/profile.h"
#include "pipeline/kafka_client.h"
#include "pipeline/topics.h"

namespace boxwatch::sim {

struct TrafficOptions {
  uint32_t seed = 1;
  int containers = 1000;
  int64_t start_ms = 1794970800000;  // 2026-11-18T03:00Z, UTC ms
  int gps_per_container = 40;        // fixes, every 3 minutes of event time
  int64_t max_disorder_ms = 60000;   // GPS delivered up to this late (ms), within the lateness
  double duplicate_rate = 0.02;      // share of GPS fixes delivered twice
  double json_rate = 0.1;            // share of manifests sent as canonical JSON
  bool bad_records = false;          // add one record of every dead-letter reason per 500 containers
};

enum class Scenario { kNone, kDeviation, kNightStop, kSealSwap, kGamma, kNeutron, kWatchlisted, kRiskyRoute };
const char* ScenarioName(Scenario s);

struct TrafficRecord {
  pipeline::TopicRole role;
  std::string key;
  std::string value;
  int64_t timestamp_ms = 0;  // the event time, as CreateTime
  bool json = false;
  std::string expect_dead_letter;  // reason a correct pipeline gives, "" when processed
};

struct Traffic {
  std::vector<TrafficRecord> records;  // in delivery order
  std::vector<std::pair<std::string, Scenario>> labels;  // container -> scenario
};

Traffic GenerateTraffic(const TrafficOptions& options, const operators::Profile& profile);

}  // namespace boxwatch::sim
