// Reading a backtest's input: a traffic file or the input topics.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <fstream>

#include "backtest/backtest.h"
#include "core/types.h"
#include "pipeline/partitioner.h"
#include "pipeline/topic_reader.h"
#include "pipeline/topics.h"

namespace boxwatch::backtest {
namespace {

// The string value of "name":"..." in one JSON line written by
// sim::WriteTrafficFile (no escapes in its fields); nullopt when absent.
std::optional<std::string_view> StringField(std::string_view line, std::string_view name) {
  const std::string key = "\"" + std::string(name) + "\":\"";
  const size_t at = line.find(key);
  if (at == std::string_view::npos) return std::nullopt;
  const size_t begin = at + key.size();
  const size_t end = line.find('"', begin);
  if (end == std::string_view::npos) return std::nullopt;
  return line.substr(begin, end - begin);
}

std::optional<int64_t> IntField(std::string_view line, std::string_view name) {
  const std::string key = "\"" + std::string(name) + "\":";
  const size_t at = line.find(key);
  if (at == std::string_view::npos) return std::nullopt;
  size_t i = at + key.size();
  const bool negative = i < line.size() && line[i] == '-';
  if (negative) ++i;
  if (i >= line.size() || line[i] < '0' || line[i] > '9') return std::nullopt;
  int64_t v = 0;
  for (; i < line.size() && line[i] >= '0' && line[i] <= '9'; ++i) {
    if (v > (std::numeric_limits<int64_t>::max() - 9) / 10) return std::nullopt;
    v = v * 10 + (line[i] - '0');
  }
  return negative ? -v : v;
}

std::optional<std::string> DecodeBase64(std::string_view in) {
  auto value = [](char c) -> int {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
  };
  if (in.size() % 4 != 0) return std::nullopt;
  std::string out;
  out.reserve(in.size() / 4 * 3);
  for (size_t i = 0; i < in.size(); i += 4) {
    int v[4];
    int pad = 0;
    for (int k = 0; k < 4; ++k) {
      const char c = in[i + k];
      if (c == '=' && i + 4 == in.size() && k >= 2) {
        v[k] = 0;
        ++pad;
      } else if (pad > 0 || (v[k] = value(c)) < 0) {
        return std::nullopt;
      }
    }
    const uint32_t bits = (v[0] << 18) | (v[1] << 12) | (v[2] << 6) | v[3];
    out.push_back(static_cast<char>(bits >> 16));
    if (pad < 2) out.push_back(static_cast<char>((bits >> 8) & 0xff));
    if (pad < 1) out.push_back(static_cast<char>(bits & 0xff));
  }
  return out;
}

}  // namespace

void Input::Add(int32_t partition, Record r) {
  first_ms = std::min(first_ms, r.timestamp_ms);
  last_ms = std::max(last_ms, r.timestamp_ms);
  ++records;
  partitions[partition].push_back(std::move(r));
}

Result<Input> ReadTrafficFile(const std::string& path, int partitions, const std::string& topic_prefix) {
  if (partitions < 1) return Error{Errc::kInvalidArgument, "the partition count must be at least 1"};
  std::ifstream in(path);
  if (!in) return Error{Errc::kNotFound, "cannot read " + path};
  const pipeline::TopicNames names(topic_prefix);
  std::map<std::string, int, std::less<>> input_of;
  for (int i = 0; i < 4; ++i) input_of[names.Name(pipeline::kInputTopicRoles[i])] = i;
  Input out;
  out.source = "file " + path;
  std::string line;
  size_t number = 0;
  while (std::getline(in, line)) {
    ++number;
    if (line.empty()) continue;
    auto bad = [&](const char* what) {
      return Error{Errc::kInvalidArgument, path + ":" + std::to_string(number) + ": " + what};
    };
    const auto topic = StringField(line, "topic");
    const auto key = StringField(line, "key");
    const auto ts = IntField(line, "timestamp_ms");
    const auto value = StringField(line, "value_base64");
    if (!topic || !key || !ts || !value) return bad("not a traffic record (topic, key, timestamp_ms, value_base64)");
    auto it = input_of.find(*topic);
    const bool reference = *topic == names.Name(pipeline::TopicRole::kReference);
    if (it == input_of.end() && !reference) continue;
    auto bytes = DecodeBase64(*value);
    if (!bytes) return bad("value_base64 is not base64");
    if (reference) {
      // Reference data recorded with the traffic (a trader register);
      // seizure listings are left out: the run derives them from the outcomes.
      (void)operators::ApplyReferenceEntry(&out.reference, *key, *bytes, /*seizures=*/false);
      continue;
    }
    Record r{.input = it->second,
             .key = std::string(*key),
             .value = std::move(*bytes),
             .content_type = std::string(StringField(line, "content_type").value_or("")),
             .timestamp_ms = *ts};
    const int32_t partition = pipeline::JavaPartition(r.key, partitions);  // before r is moved
    out.Add(partition, std::move(r));
  }
  if (in.bad()) return Error{Errc::kIo, "reading " + path + " failed"};
  return out;
}

Result<Input> ReadTopics(const std::string& bootstrap, const std::string& topic_prefix, int timeout_s,
                         const pipeline::KafkaProperties& kafka) {
  const pipeline::TopicNames names(topic_prefix);
  auto admin = pipeline::KafkaAdmin::Create(bootstrap, kafka);
  if (!admin.ok()) return admin.error();
  std::vector<std::string> topics;
  for (auto role : pipeline::kInputTopicRoles) topics.push_back(names.Name(role));
  topics.push_back(names.Name(pipeline::TopicRole::kReference));
  auto counts = (*admin)->PartitionCounts(topics, std::chrono::seconds(timeout_s));
  if (!counts.ok()) return counts.error();
  for (const auto& t : topics) {
    if (!counts->count(t)) return Error{Errc::kNotFound, "topic " + t + " does not exist"};
  }
  Input out;
  out.source = "Kafka " + bootstrap + " (" + names.Name(pipeline::TopicRole::kManifests) + ", ...)";
  for (int i = 0; i < 4; ++i) {
    const std::string& topic = topics[i];
    auto records = pipeline::ReadToEnd(bootstrap, topic, counts->at(topic), std::chrono::seconds(timeout_s),
                                       "boxwatch-backtest", kafka);
    if (!records.ok()) return records.error();
    std::stable_sort(records->begin(), records->end(), [](const auto& a, const auto& b) {
      return std::tie(a.partition, a.offset) < std::tie(b.partition, b.offset);
    });
    for (auto& r : *records) {
      Record rec{.input = i,
                 .key = std::move(r.key),
                 .value = std::move(r.value),
                 .content_type = std::string(r.header("content-type").value_or("")),
                 .timestamp_ms = r.timestamp_ms};
      out.Add(r.partition, std::move(rec));
    }
  }
  const std::string& ref_topic = topics[4];
  auto ref = pipeline::ReadToEnd(bootstrap, ref_topic, counts->at(ref_topic), std::chrono::seconds(timeout_s),
                                 "boxwatch-backtest", kafka);
  if (!ref.ok()) return ref.error();
  for (const auto& r : *ref) {
    // Seizure listings are left out: the run derives them from the outcomes.
    (void)operators::ApplyReferenceEntry(&out.reference, r.key, r.value, /*seizures=*/false);
  }
  return out;
}

Result<int64_t> ParseUtc(const std::string& text) {
  auto bad = [&] {
    return Error{Errc::kInvalidArgument,
                 "'" + text + "' is not a UTC time (YYYY-MM-DD, YYYY-MM-DDTHH:MMZ, YYYY-MM-DDTHH:MM:SSZ or epoch ms)"};
  };
  if (!text.empty() && text.size() <= 15 && text.find_first_not_of("0123456789") == std::string::npos) {
    return std::stoll(text);
  }
  // Each format by its length; every other character must be a digit.
  static const char* kFormats[] = {"dddd-dd-dd", "dddd-dd-ddTdd:ddZ", "dddd-dd-ddTdd:dd:ddZ"};
  const char* format = nullptr;
  for (const char* f : kFormats) {
    if (std::string_view(f).size() == text.size()) format = f;
  }
  if (format == nullptr) return bad();
  for (size_t i = 0; i < text.size(); ++i) {
    const bool digit = text[i] >= '0' && text[i] <= '9';
    if (format[i] == 'd' ? !digit : text[i] != format[i]) return bad();
  }
  auto num = [&](size_t at, size_t len) { return std::stoi(text.substr(at, len)); };
  std::tm tm{};
  tm.tm_year = num(0, 4) - 1900;
  tm.tm_mon = num(5, 2) - 1;
  tm.tm_mday = num(8, 2);
  if (text.size() > 10) {
    tm.tm_hour = num(11, 2);
    tm.tm_min = num(14, 2);
  }
  if (text.size() == 20) tm.tm_sec = num(17, 2);
  if (tm.tm_mon > 11 || tm.tm_mday < 1 || tm.tm_mday > 31 || tm.tm_hour > 23 || tm.tm_min > 59 || tm.tm_sec > 59) {
    return bad();
  }
  return static_cast<int64_t>(timegm(&tm)) * 1000;
}

std::string FormatUtc(int64_t ms) { return FormatUtcTime(ms, "%Y-%m-%dT%H:%M:%SZ"); }

std::string FormatUtcDay(int64_t ms) { return FormatUtc(ms).substr(0, 10); }

}  // namespace boxwatch::backtest
