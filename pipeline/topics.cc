#include "pipeline/topics.h"

namespace boxwatch::pipeline {

const char* TopicSuffix(TopicRole role) {
  switch (role) {
    case TopicRole::kManifests: return "manifests";
    case TopicRole::kScans: return "scans";
    case TopicRole::kGps: return "gps";
    case TopicRole::kOutcomes: return "outcomes";
    case TopicRole::kAlerts: return "alerts";
    case TopicRole::kDeadLetter: return "deadletter";
    case TopicRole::kStateChangelog: return "state-changelog";
    case TopicRole::kProfiles: return "profiles";
    case TopicRole::kReference: return "reference";
    case TopicRole::kRawCuscar: return "raw.cuscar";
    case TopicRole::kRawN42: return "raw.n42";
    case TopicRole::kIngestFiles: return "ingest-files";
  }
  return "unknown";
}

bool IsCoPartitioned(TopicRole role) {
  switch (role) {
    case TopicRole::kManifests:
    case TopicRole::kScans:
    case TopicRole::kGps:
    case TopicRole::kOutcomes:
    case TopicRole::kStateChangelog:
      return true;
    default:
      return false;
  }
}

TopicNames::TopicNames(std::string prefix) : prefix_(std::move(prefix)) {
  for (TopicRole role : kAllTopicRoles) names_[static_cast<size_t>(role)] = prefix_ + "boxwatch." + TopicSuffix(role);
}

std::vector<TopicSpec> TopicSetSpecs(const TopicSetOptions& o) {
  const TopicNames names(o.prefix);
  std::vector<TopicSpec> specs;
  for (TopicRole role : kAllTopicRoles) {
    TopicSpec spec{names.Name(role), o.partitions, o.replication, {}};
    switch (role) {
      case TopicRole::kManifests:
      case TopicRole::kScans:
      case TopicRole::kGps:
      case TopicRole::kOutcomes:
      case TopicRole::kDeadLetter:
      case TopicRole::kRawCuscar:
      case TopicRole::kRawN42:
        spec.configs = {{"cleanup.policy", "delete"},
                        {"retention.ms", std::to_string(o.event_retention_ms)}};
        break;
      case TopicRole::kAlerts:
        spec.configs = {{"cleanup.policy", "delete"},
                        {"retention.ms", std::to_string(o.alert_retention_ms)}};
        break;
      case TopicRole::kStateChangelog:
        spec.configs = {{"cleanup.policy", "compact"}, {"min.compaction.lag.ms", "60000"}};
        break;
      case TopicRole::kProfiles:
      case TopicRole::kReference:
      case TopicRole::kIngestFiles:
        // Small, read whole by every task: one partition keeps one order.
        spec.partitions = 1;
        spec.configs = {{"cleanup.policy", "compact"}};
        break;
    }
    if (o.replication >= 3) spec.configs["min.insync.replicas"] = "2";
    if (o.max_message_bytes > 0) spec.configs["max.message.bytes"] = std::to_string(o.max_message_bytes);
    specs.push_back(std::move(spec));
  }
  return specs;
}

Status CheckTopicSet(const TopicNames& names, const std::map<std::string, int>& counts) {
  std::string problems;
  std::string reference_topic;
  int reference_count = -1;
  for (TopicRole role : kAllTopicRoles) {
    const std::string name = names.Name(role);
    auto it = counts.find(name);
    if (it == counts.end()) {
      problems += "\n  topic " + name + " does not exist: create it (boxwatch topics create)";
      continue;
    }
    if (!IsCoPartitioned(role)) continue;
    if (reference_count < 0) {
      reference_topic = name;
      reference_count = it->second;
    } else if (it->second != reference_count) {
      problems += "\n  topic " + name + " has " + std::to_string(it->second) +
                  " partitions but " + reference_topic + " has " +
                  std::to_string(reference_count) +
                  ": co-partitioned topics need the same count (recreate them with "
                  "boxwatch topics create --partitions N)";
    }
  }
  if (!problems.empty()) return InvalidArgument("topic set is not usable:" + problems);
  return Status::Ok();
}

}  // namespace boxwatch::pipeline
