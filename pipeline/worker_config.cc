#include "pipeline/worker_config.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <fstream>
#include <functional>
#include <sstream>
#include <vector>

extern char** environ;

namespace boxwatch::pipeline {
namespace {

struct Option {
  const char* key;
  std::function<bool(WorkerConfig&, const std::string&)> set;  // false: not a valid value
  const char* expects;
};

bool ParseInt(const std::string& s, int64_t* out) {
  try {
    size_t used = 0;
    *out = std::stoll(s, &used);
    return used == s.size();
  } catch (...) {
    return false;
  }
}

template <int64_t WorkerConfig::*Field>
Option IntOption(const char* key, int64_t min, int64_t max) {
  return {key,
          [min, max](WorkerConfig& c, const std::string& v) {
            int64_t n = 0;
            if (!ParseInt(v, &n) || n < min || n > max) return false;
            c.*Field = n;
            return true;
          },
          "an integer in range"};
}

template <std::string WorkerConfig::*Field>
Option StringOption(const char* key) {
  return {key, [](WorkerConfig& c, const std::string& v) { c.*Field = v; return true; }, "a string"};
}

// A string option that takes one of `choices` (`expected` lists them).
template <std::string WorkerConfig::*Field>
Option OneOfOption(const char* key, std::vector<std::string> choices, const char* expected) {
  return {key,
          [choices = std::move(choices)](WorkerConfig& c, const std::string& v) {
            if (std::find(choices.begin(), choices.end(), v) == choices.end()) return false;
            c.*Field = v;
            return true;
          },
          expected};
}

// An option of two words: `yes` sets the flag, `no` clears it.
template <bool WorkerConfig::*Field>
Option ChoiceOption(const char* key, const char* yes, const char* no, const char* expected) {
  return {key,
          [yes, no](WorkerConfig& c, const std::string& v) {
            if (v != yes && v != no) return false;
            c.*Field = v == yes;
            return true;
          },
          expected};
}

const std::vector<Option>& Options() {
  static const std::vector<Option> kOptions = {
      StringOption<&WorkerConfig::bootstrap>("bootstrap"),
      StringOption<&WorkerConfig::group_id>("group_id"),
      StringOption<&WorkerConfig::instance_id>("instance_id"),
      StringOption<&WorkerConfig::topic_prefix>("topic_prefix"),
      StringOption<&WorkerConfig::state_dir>("state_dir"),
      StringOption<&WorkerConfig::profile_file>("profile_file"),
      StringOption<&WorkerConfig::metrics_listen>("metrics_listen"),
      StringOption<&WorkerConfig::kafka_config>("kafka_config"),
      IntOption<&WorkerConfig::commit_interval_ms>("commit_interval_ms", 1, 60000),
      IntOption<&WorkerConfig::max_records_per_commit>("max_records_per_commit", 1, 10000000),
      IntOption<&WorkerConfig::backlog_threshold_records>("backlog_threshold_records", 1, 100000000),
      IntOption<&WorkerConfig::backlog_threshold_ms>("backlog_threshold_ms", 0, 600000),
      IntOption<&WorkerConfig::backlog_commit_interval_ms>("backlog_commit_interval_ms", 0, 60000),
      IntOption<&WorkerConfig::backlog_records_per_commit>("backlog_records_per_commit", 0, 10000000),
      IntOption<&WorkerConfig::allowed_lateness_ms>("allowed_lateness_ms", 0, 7LL * 24 * 3600 * 1000),
      IntOption<&WorkerConfig::idle_wait_ms>("idle_wait_ms", 0, 600000),
      IntOption<&WorkerConfig::reference_wait_ms>("reference_wait_ms", 0, 3600000),
      IntOption<&WorkerConfig::max_future_ms>("max_future_ms", 0, 7LL * 24 * 3600 * 1000),
      IntOption<&WorkerConfig::idle_flush_ms>("idle_flush_ms", 0, 7LL * 24 * 3600 * 1000),
      IntOption<&WorkerConfig::max_value_bytes>("max_value_bytes", 1024, 64LL << 20),
      IntOption<&WorkerConfig::max_state_bytes>("max_state_bytes", 0, 64LL << 20),
      IntOption<&WorkerConfig::state_ttl_ms>("state_ttl_ms", 60000, 3650LL * 24 * 3600 * 1000),
      IntOption<&WorkerConfig::expiry_sweep_interval_ms>("expiry_sweep_interval_ms", 100, 3650LL * 24 * 3600 * 1000),
      IntOption<&WorkerConfig::cache_max_entries>("cache_max_entries", 1, 100000000),
      IntOption<&WorkerConfig::max_buffered_records>("max_buffered_records", 2, 10000000),
      IntOption<&WorkerConfig::block_cache_bytes>("block_cache_bytes", 1 << 20, 1LL << 40),
      IntOption<&WorkerConfig::write_buffer_bytes>("write_buffer_bytes", 1 << 20, 1LL << 34),
      IntOption<&WorkerConfig::commit_overlay_bytes>("commit_overlay_bytes", 0, 1LL << 32),
      IntOption<&WorkerConfig::commit_overlay_commits>("commit_overlay_commits", 0, 100000),
      IntOption<&WorkerConfig::transaction_timeout_ms>("transaction_timeout_ms", 1000, 900000),
      IntOption<&WorkerConfig::restore_threads>("restore_threads", 1, 64),
      ChoiceOption<&WorkerConfig::exactly_once>("processing_guarantee", "exactly_once", "at_least_once",
                                                "exactly_once or at_least_once"),
      ChoiceOption<&WorkerConfig::low_priority_compactions>("compaction_cpu_priority", "low", "normal",
                                                            "low or normal"),
      ChoiceOption<&WorkerConfig::adopt_foreign_state>("state_owner", "adopt", "refuse", "refuse or adopt"),
      OneOfOption<&WorkerConfig::changelog_compression>("changelog_compression",
                                                        {"none", "lz4", "zstd", "snappy", "gzip"},
                                                        "none, lz4, zstd, snappy or gzip"),
  };
  return kOptions;
}

std::string EnvName(const std::string& key) {
  std::string out = "BOXWATCH_";
  for (char c : key) out.push_back(static_cast<char>(std::toupper(static_cast<unsigned char>(c))));
  return out;
}

}  // namespace

Result<WorkerConfig> WorkerConfig::Parse(const std::string& text, const std::string& source,
                                         const std::map<std::string, std::string>& env) {
  std::vector<std::string> problems;
  WorkerConfig c;
  KafkaProperties yaml_kafka;
  YAML::Node root;
  try {
    root = YAML::Load(text);
  } catch (const YAML::ParserException& e) {
    return InvalidArgument("config " + source + ":" + std::to_string(e.mark.line + 1) +
                           ": not valid YAML: " + e.msg);
  }
  if (root.IsDefined() && !root.IsNull() && !root.IsMap()) {
    return InvalidArgument("config " + source + ": the document must be a mapping of option: value");
  }
  if (root.IsMap()) {
    for (const auto& kv : root) {
      const std::string key = kv.first.Scalar();
      const std::string where = source + ":" + std::to_string(kv.first.Mark().line + 1);
      if (key == "kafka") {
        if (!kv.second.IsMap()) {
          problems.push_back(where + ": kafka must be a mapping of librdkafka property: value");
          continue;
        }
        for (const auto& p : kv.second) yaml_kafka.emplace_back(p.first.Scalar(), p.second.Scalar());
        continue;
      }
      auto opt = std::find_if(Options().begin(), Options().end(), [&](const Option& o) { return key == o.key; });
      if (opt == Options().end()) {
        problems.push_back(where + ": unknown option '" + key + "' (docs/configuration.md lists them)");
        continue;
      }
      if (!kv.second.IsScalar() || !opt->set(c, kv.second.Scalar())) {
        problems.push_back(where + ": " + key + " must be " + opt->expects + ", got '" +
                           (kv.second.IsScalar() ? kv.second.Scalar() : std::string("a structure")) + "'");
      }
    }
  }
  for (const auto& opt : Options()) {
    auto it = env.find(EnvName(opt.key));
    if (it != env.end() && !opt.set(c, it->second)) {
      problems.push_back("environment " + it->first + ": must be " + opt.expects + ", got '" +
                         it->second + "'");
    }
  }
  if (c.instance_id.empty()) {
    problems.push_back(source + ": instance_id is required (the pod name; static membership keeps "
                                "partitions across restarts); set it or BOXWATCH_INSTANCE_ID");
  }
  if (c.bootstrap.empty()) problems.push_back(source + ": bootstrap must name at least one broker");
  // 0 (the default): 5 s and 250,000 records, or the usual cadence when that is larger.
  if (c.backlog_commit_interval_ms == 0) {
    c.backlog_commit_interval_ms = std::min(std::max<int64_t>(5000, c.commit_interval_ms), c.transaction_timeout_ms / 2);
  }
  if (c.backlog_records_per_commit == 0) c.backlog_records_per_commit = std::max<int64_t>(250000, c.max_records_per_commit);
  if (c.backlog_commit_interval_ms < c.commit_interval_ms) {
    problems.push_back(source + ": backlog_commit_interval_ms (" + std::to_string(c.backlog_commit_interval_ms) +
                       ") must be at least commit_interval_ms (" + std::to_string(c.commit_interval_ms) + ")");
  }
  if (c.backlog_records_per_commit < c.max_records_per_commit) {
    problems.push_back(source + ": backlog_records_per_commit (" + std::to_string(c.backlog_records_per_commit) +
                       ") must be at least max_records_per_commit (" + std::to_string(c.max_records_per_commit) + ")");
  }
  if (c.backlog_commit_interval_ms * 2 > c.transaction_timeout_ms) {
    problems.push_back(source + ": backlog_commit_interval_ms (" + std::to_string(c.backlog_commit_interval_ms) +
                       ") must be at most half of transaction_timeout_ms (" + std::to_string(c.transaction_timeout_ms) +
                       ")");
  }
  if (c.state_dir.empty()) problems.push_back(source + ": state_dir must be a directory path");
  if (c.allowed_lateness_ms > c.state_ttl_ms) {
    problems.push_back(source + ": allowed_lateness_ms must not exceed state_ttl_ms");
  }
  {
    // The properties file, then the mapping, then BOXWATCH_RDKAFKA_*.
    if (!c.kafka_config.empty()) {
      auto from_file = ReadKafkaPropertiesFile(c.kafka_config);
      if (!from_file.ok()) {
        problems.push_back(from_file.error().message);
      } else {
        c.kafka = std::move(*from_file);
      }
    }
    c.kafka.insert(c.kafka.end(), yaml_kafka.begin(), yaml_kafka.end());
    const KafkaProperties from_env = KafkaPropertiesFromEnvironment(env);
    c.kafka.insert(c.kafka.end(), from_env.begin(), from_env.end());
    ResolveKafkaReferences(c.kafka, env, &problems);
  }
  if (auto v = FindKafkaProperty(c.kafka, "message.max.bytes")) {
    int64_t n = 0;
    if (!ParseInt(*v, &n) || n < 1000 || n > 1000000000) {
      problems.push_back(source + ": kafka message.max.bytes must be an integer from 1000 to 1000000000, got '" +
                         *v + "'");
    }
  }
  const int64_t limit = c.OutputRecordLimit();
  if (c.max_value_bytes + kRecordOverheadBytes > limit) {
    problems.push_back(source + ": max_value_bytes " + std::to_string(c.max_value_bytes) +
                       " leaves no room for a dead letter under the producer's message.max.bytes " +
                       std::to_string(limit) + " (need " + std::to_string(kRecordOverheadBytes) +
                       " bytes spare): lower max_value_bytes, or raise kafka: message.max.bytes and the "
                       "topics' max.message.bytes (boxwatch topics create --max-message-bytes)");
  }
  if (c.max_state_bytes != 0 &&
      (c.max_state_bytes < kMinStateBytes || c.max_state_bytes + kRecordOverheadBytes > limit)) {
    problems.push_back(source + ": max_state_bytes " + std::to_string(c.max_state_bytes) + " must be 0 (default) or from " +
                       std::to_string(kMinStateBytes) + " to " + std::to_string(limit - kRecordOverheadBytes) +
                       " (message.max.bytes " + std::to_string(limit) + " minus " +
                       std::to_string(kRecordOverheadBytes) + ")");
  } else if (c.max_state_bytes == 0 && limit - kRecordOverheadBytes < kMinStateBytes) {
    problems.push_back(source + ": kafka message.max.bytes " + std::to_string(limit) + " leaves less than " +
                       std::to_string(kMinStateBytes) + " bytes for a container's state; raise it to at least " +
                       std::to_string(kMinStateBytes + kRecordOverheadBytes));
  }
  if (!problems.empty()) {
    std::string msg = "configuration has " + std::to_string(problems.size()) + " problem(s):";
    for (const auto& p : problems) msg += "\n  " + p;
    return InvalidArgument(msg);
  }
  return c;
}

int64_t WorkerConfig::OutputRecordLimit() const {
  constexpr int64_t kLibrdkafkaDefault = 1000000;  // message.max.bytes
  auto v = FindKafkaProperty(kafka, "message.max.bytes");
  int64_t n = 0;
  if (!v || !ParseInt(*v, &n) || n <= 0) return kLibrdkafkaDefault;
  return n;
}

int64_t WorkerConfig::StateLimit() const {
  return max_state_bytes != 0 ? max_state_bytes : OutputRecordLimit() - kRecordOverheadBytes;
}

Result<WorkerConfig> WorkerConfig::Load(const std::string& path) {
  std::string text;
  if (!path.empty()) {
    std::ifstream in(path);
    if (!in) return Error{Errc::kNotFound, "cannot read config file " + path};
    std::stringstream ss;
    ss << in.rdbuf();
    text = ss.str();
  }
  return Parse(text, path.empty() ? "(no file)" : path, ProcessEnvironment());
}

}  // namespace boxwatch::pipeline
