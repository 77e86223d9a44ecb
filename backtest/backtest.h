#pragma once
// Backtesting: what a profile would have raised on recorded input. The
// records of the four input topics (read from Kafka or from a traffic file
// of `boxwatch simulate --out`) go through the worker's own decision code
// (pipeline::TaskCore, with pipeline::InputMerge ordering each partition as
// a worker task does) over in-memory state: nothing is written to Kafka or
// to any worker's state. Same input and profile -> same result.
//
// What differs from a live worker, by design (docs/backtest.md):
//  - Seizure feedback is derived from the outcomes in the input, under the
//    profile being tested, and applied at once; the analysts' watch lists
//    come from the reference topic as it is when read.
//  - At the end of the input every partition is idle, so quiet containers
//    are released as a caught-up worker releases them.

#include <cstdint>
#include <functional>
#include <limits>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "boxwatch/v1/alert.pb.h"
#include "core/result.h"
#include "operators/engine.h"
#include "operators/profile.h"
#include "pipeline/kafka_config.h"
#include "pipeline/task_core.h"

namespace boxwatch::backtest {

// One input record, owned.
struct Record {
  int input = 0;  // pipeline::kInputTopicRoles index
  std::string key;
  std::string value;
  std::string content_type;
  int64_t timestamp_ms = 0;
};

struct Input {
  std::map<int32_t, std::vector<Record>> partitions;  // each in offset order per input
  operators::ReferenceData reference;                 // watch lists (no seizures: those are replayed)
  std::string source;                                 // for the report
  size_t records = 0;
  int64_t first_ms = std::numeric_limits<int64_t>::max();
  int64_t last_ms = std::numeric_limits<int64_t>::min();
  void Add(int32_t partition, Record r);
};

// A traffic file (JSON lines, as `boxwatch simulate --out` writes) with its
// records spread over `partitions` as the Java partitioner would; lines of
// other topics are skipped. Every line that does not parse is an error with
// its line number.
Result<Input> ReadTrafficFile(const std::string& path, int partitions, const std::string& topic_prefix = "");
// The input topics (every partition, read_committed, to their current end)
// and the reference topic's watch lists; `kafka`: the client configuration.
Result<Input> ReadTopics(const std::string& bootstrap, const std::string& topic_prefix, int timeout_s,
                         const pipeline::KafkaProperties& kafka = {});

// UTC time as epoch ms, "YYYY-MM-DD" or "YYYY-MM-DDTHH:MM[:SS]Z".
Result<int64_t> ParseUtc(const std::string& text);
std::string FormatUtc(int64_t ms);       // "2026-11-18T03:00:00Z"
std::string FormatUtcDay(int64_t ms);    // "2026-11-18"

struct RunOptions {
  // Records at or after `to_ms` are left out; alerts raised for event times
  // before `from_ms` (the warm-up) are not reported.
  int64_t from_ms = std::numeric_limits<int64_t>::min();
  int64_t to_ms = std::numeric_limits<int64_t>::max();
  int64_t now_ms = 0;  // the wall clock the task sees (0: NowMs())
  pipeline::TaskOptions task;
  // Called every few thousand records with (records done, records in all).
  std::function<void(size_t, size_t)> progress;
};

// What a run found about one container (over every state it had: an expired
// container that comes back is merged).
struct ContainerSummary {
  v1::Priority max_priority = v1::PRIORITY_UNSPECIFIED;  // highest alerted
  double score = 0;                  // highest score evaluated (after family caps)
  std::vector<std::string> fired;    // indicator ids that fired, sorted
  // Those that had fired by its first inspection (what an officer could
  // have known; a seizure's own feedback cannot leak in), sorted.
  std::vector<std::string> fired_by_inspection;
  bool inspected = false;
  bool seized = false;
  bool randomly_selected = false;
  std::string region;                // first region of its first alert, or of its manifest
};

struct RunResult {
  std::vector<v1::Alert> alerts;  // reported ones, by partition then emission order
  std::map<std::string, ContainerSummary> containers;
  pipeline::TaskCounters counters;
  std::map<std::string, uint64_t> dead_letters;  // reason -> records
  size_t records = 0;                            // records processed
  double cpu_seconds = 0;
  double wall_seconds = 0;
};

RunResult Run(const Input& input, const operators::Profile& profile, const RunOptions& options);

}  // namespace boxwatch::backtest
