#pragma once
// The topic set of boxwatch (docs/topics.md, DESIGN.md "Topics"): names with
// a configurable prefix, their partitioning and cleanup policies, and the
// co-partitioning check that every worker runs at startup.

#include <array>
#include <iterator>
#include <map>
#include <string>
#include <vector>

#include "core/result.h"
#include "pipeline/kafka_client.h"

namespace boxwatch::pipeline {

enum class TopicRole {
  kManifests,
  kScans,
  kGps,
  kOutcomes,
  kAlerts,
  kDeadLetter,
  kStateChangelog,
  kProfiles,
  kReference,
  kRawCuscar,    // UN/EDIFACT CUSCAR interchanges for `boxwatch ingest`
  kRawN42,       // ANSI N42.42 documents for `boxwatch ingest`
  kIngestFiles,  // files of drop directories already ingested (written in ingest's transactions)
};

inline constexpr TopicRole kAllTopicRoles[] = {
    TopicRole::kManifests, TopicRole::kScans,          TopicRole::kGps,
    TopicRole::kOutcomes,  TopicRole::kAlerts,         TopicRole::kDeadLetter,
    TopicRole::kStateChangelog, TopicRole::kProfiles,  TopicRole::kReference,
    TopicRole::kRawCuscar, TopicRole::kRawN42, TopicRole::kIngestFiles,
};

// Whether kAllTopicRoles lists each role once (TopicNames indexes its names by role).
constexpr bool ListsEveryRoleOnce() {
  bool seen[std::size(kAllTopicRoles)] = {};
  for (TopicRole role : kAllTopicRoles) {
    const auto i = static_cast<size_t>(role);
    if (i >= std::size(kAllTopicRoles) || seen[i]) return false;
    seen[i] = true;
  }
  return true;
}
static_assert(ListsEveryRoleOnce(), "kAllTopicRoles lists every role once");

// Header of every alert record: when the worker emitted it (processing time,
// UTC ms, decimal). The stored value leaves Alert.emit_time_ms at 0, so the
// value is a function of the input alone (byte-identical across runs); the
// dispatcher copies the header into the field before an alert leaves it.
inline constexpr const char* kEmitTimeHeader = "boxwatch-emit-ms";

// Input topics in the fixed order that breaks event-time ties.
inline constexpr TopicRole kInputTopicRoles[] = {
    TopicRole::kManifests, TopicRole::kScans, TopicRole::kGps, TopicRole::kOutcomes};

// The index of `role` in kInputTopicRoles; -1 for a topic that is no input.
constexpr int InputIndex(TopicRole role) {
  for (int i = 0; i < 4; ++i) {
    if (kInputTopicRoles[i] == role) return i;
  }
  return -1;
}

// "manifests", "state-changelog", ...
const char* TopicSuffix(TopicRole role);

// True for topics that must share one partition count (co-partitioned by
// container number): the four inputs and the state changelog.
bool IsCoPartitioned(TopicRole role);

class TopicNames {
 public:
  // `prefix` is prepended verbatim: "" gives "boxwatch.gps", "lab." gives
  // "lab.boxwatch.gps".
  explicit TopicNames(std::string prefix = "");
  // Built once: the worker asks for input topic names per record.
  const std::string& Name(TopicRole role) const { return names_[static_cast<size_t>(role)]; }
  const std::string& prefix() const { return prefix_; }

 private:
  std::string prefix_;
  std::array<std::string, std::size(kAllTopicRoles)> names_;
};

struct TopicSetOptions {
  std::string prefix;
  int partitions = 8;             // P, shared by the co-partitioned topics
  int replication = 1;            // 3 in production
  int64_t event_retention_ms = 7LL * 24 * 3600 * 1000;    // input topics: 7 days
  int64_t alert_retention_ms = 365LL * 24 * 3600 * 1000;  // alerts: 1 year
  // max.message.bytes of every topic, bytes; 0 keeps the broker's default
  // (1048588). Raise it with the producers' message.max.bytes to carry
  // records over about 1 MB (docs/configuration.md, max_value_bytes).
  int64_t max_message_bytes = 0;
};

// Specifications for every topic of the set.
std::vector<TopicSpec> TopicSetSpecs(const TopicSetOptions& options);

// Checks that every topic exists and the co-partitioned topics share one
// partition count. Lists every problem in one error.
Status CheckTopicSet(const TopicNames& names, const std::map<std::string, int>& partition_counts);

}  // namespace boxwatch::pipeline
