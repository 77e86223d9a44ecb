// `boxwatch backtest` (what a profile would have raised on recorded input,
// beside a baseline) and `boxwatch profile tune` (weights learned from
// inspection outcomes). docs/backtest.md walks through both.
#include <CLI/CLI.hpp>
#include <google/protobuf/util/json_util.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <memory>
#include <sstream>

#include "app/commands.h"
#include "app/kafka_options.h"
#include "backtest/report.h"
#include "backtest/tune.h"
#include "boxwatch/v1/outcome.pb.h"
#include "core/types.h"
#include "operators/default_profile.h"
#include "pipeline/partitioner.h"
#include "pipeline/topic_reader.h"
#include "pipeline/topics.h"
#include "pipeline/worker_config.h"

namespace boxwatch::app {
namespace {

// Where the records come from and which window is read; shared by both commands.
struct SourceArgs {
  std::string bootstrap;
  std::string topic_prefix;
  std::string input;
  std::string outcomes;
  std::string worker_config;
  std::string from;
  std::string to;
  double warmup_days = 7;
  int partitions = 8;
  int timeout_s = 120;
  KafkaCliOptions kafka;

  void Add(CLI::App* cmd) {
    cmd->add_option("--bootstrap", bootstrap, "Kafka bootstrap servers: read the retained input topics");
    cmd->add_option("--topic-prefix", topic_prefix, "Topic name prefix");
    cmd->add_option("--input", input, "A traffic file (boxwatch simulate --out) instead of Kafka");
    cmd->add_option("--outcomes", outcomes,
                    "Extra inspection outcomes: JSON lines, one boxwatch.v1.InspectionOutcome each");
    cmd->add_option("--worker-config", worker_config,
                    "The worker's YAML config, for its lateness, clock and expiry settings (default: the defaults)");
    cmd->add_option("--from", from, "Start of the reported window (UTC: YYYY-MM-DD[THH:MM[:SS]Z] or epoch ms)");
    cmd->add_option("--to", to, "End of the window, exclusive (records at or after it are left out)");
    cmd->add_option("--warmup-days", warmup_days,
                    "Days of input before --from that build state without being reported")
        ->capture_default_str();
    cmd->add_option("--partitions", partitions, "Partitions to spread a file's records over, as the topics have")
        ->capture_default_str();
    cmd->add_option("--timeout", timeout_s, "Seconds to wait for Kafka")->capture_default_str();
    AddKafkaOptions(cmd, &kafka);
  }
};

Result<backtest::Input> ReadTopicsWithKafka(const SourceArgs& a) {
  auto kafka = ResolveKafkaOptions(a.kafka);
  if (!kafka.ok()) return kafka.error();
  return backtest::ReadTopics(a.bootstrap, a.topic_prefix, a.timeout_s, *kafka);
}

struct Loaded {
  backtest::Input input;
  backtest::RunOptions run;
};

// Reads the input and the window; every problem is listed.
Result<Loaded> Load(const SourceArgs& a, const char* command) {
  std::vector<std::string> problems;
  if (a.bootstrap.empty() == a.input.empty()) problems.push_back("give exactly one of --bootstrap and --input");
  if (a.partitions < 1) problems.push_back("--partitions must be at least 1");
  if (a.warmup_days < 0) problems.push_back("--warmup-days must not be negative");
  Loaded out;
  out.run.now_ms = NowMs();
  if (!a.from.empty()) {
    auto t = backtest::ParseUtc(a.from);
    t.ok() ? (void)(out.run.from_ms = *t) : problems.push_back("--from: " + t.error().message);
  }
  if (!a.to.empty()) {
    auto t = backtest::ParseUtc(a.to);
    t.ok() ? (void)(out.run.to_ms = *t) : problems.push_back("--to: " + t.error().message);
  }
  if (out.run.from_ms != std::numeric_limits<int64_t>::min() && out.run.to_ms <= out.run.from_ms) {
    problems.push_back("--to must be after --from");
  }
  pipeline::WorkerConfig config;
  if (!a.worker_config.empty()) {
    auto c = pipeline::WorkerConfig::Load(a.worker_config);
    c.ok() ? (void)(config = *c) : problems.push_back(c.error().message);
  }
  out.run.task = pipeline::TaskOptions::From(config);
  out.run.task.owner.clear();
  if (!problems.empty()) {
    std::string all;
    for (const auto& p : problems) all += std::string(all.empty() ? "" : "\n") + command + ": " + p;
    return Error{Errc::kInvalidArgument, all};
  }
  auto input = a.input.empty() ? ReadTopicsWithKafka(a)
                               : backtest::ReadTrafficFile(a.input, a.partitions, a.topic_prefix);
  if (!input.ok()) return input.error();
  out.input = std::move(input).value();
  if (!a.outcomes.empty()) {
    std::ifstream in(a.outcomes);
    if (!in) return Error{Errc::kNotFound, "cannot read " + a.outcomes};
    const int partitions = a.input.empty() && !out.input.partitions.empty() ? out.input.partitions.rbegin()->first + 1
                                                                            : a.partitions;
    std::string line;
    int n = 0;
    while (std::getline(in, line)) {
      ++n;
      if (line.empty()) continue;
      v1::InspectionOutcome o;
      if (!google::protobuf::util::JsonStringToMessage(line, &o).ok() || o.container_number().empty()) {
        return Error{Errc::kInvalidArgument,
                     a.outcomes + ":" + std::to_string(n) + ": not an InspectionOutcome in JSON with a container_number"};
      }
      out.input.Add(pipeline::JavaPartition(o.container_number(), partitions),
                    {.input = pipeline::InputIndex(pipeline::TopicRole::kOutcomes),
                     .key = o.container_number(),
                     .value = line,
                     .content_type = "application/json",
                     .timestamp_ms = o.inspected_at_ms()});
    }
    // Outcomes join each partition's outcome input in time order.
    for (auto& [p, records] : out.input.partitions) {
      // Only the order within each input matters to the merge: outcomes by
      // time, the other inputs as read.
      auto order = [](const backtest::Record& r) {
        return std::pair{r.input, r.input == pipeline::InputIndex(pipeline::TopicRole::kOutcomes) ? r.timestamp_ms : 0};
      };
      std::stable_sort(records.begin(), records.end(),
                       [&](const auto& x, const auto& y) { return order(x) < order(y); });
    }
  }
  // The warm-up: input older than it is left out.
  if (out.run.from_ms != std::numeric_limits<int64_t>::min()) {
    const int64_t start = out.run.from_ms - static_cast<int64_t>(a.warmup_days * 86400000.0);
    for (auto& [p, records] : out.input.partitions) {
      std::erase_if(records, [start](const backtest::Record& r) { return r.timestamp_ms < start; });
    }
  }
  out.input.records = 0;
  for (const auto& [p, records] : out.input.partitions) {
    for (const auto& r : records) out.input.records += r.timestamp_ms < out.run.to_ms ? 1 : 0;
  }
  return out;
}

// Prints the argument problems (exit code 2) or loads the input (a bad
// input: 2, a failure to read it: 1); nullopt with *code set on failure.
std::optional<Loaded> ReportOrLoad(const std::vector<std::string>& problems, const SourceArgs& a, const char* command,
                                   int* code) {
  if (!problems.empty()) {
    for (const auto& p : problems) std::fprintf(stderr, "%s: %s\n", command, p.c_str());
    *code = 2;
    return std::nullopt;
  }
  auto loaded = Load(a, command);
  if (!loaded.ok()) {
    std::fprintf(stderr, "%s\n", loaded.error().message.c_str());
    *code = loaded.error().code == Errc::kInvalidArgument ? 2 : 1;
    return std::nullopt;
  }
  return std::move(loaded).value();
}

// A progress bar with an ETA on a terminal; nothing otherwise.
std::function<void(size_t, size_t)> ProgressBar(const std::string& what) {
  if (!::isatty(STDERR_FILENO)) return nullptr;
  auto started = std::make_shared<std::chrono::steady_clock::time_point>(std::chrono::steady_clock::now());
  return [started, what](size_t done, size_t total) {
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - *started).count();
    const int width = 30;
    const int filled = total ? static_cast<int>(width * std::min(done, total) / total) : width;
    const double rate = secs > 0 ? done / secs : 0;
    const double eta = rate > 0 && total > done ? (total - done) / rate : 0;
    std::fprintf(stderr, "\r%s [%s%s] %zu/%zu records, %.0f/s, ETA %.0f s   ", what.c_str(),
                 std::string(filled, '#').c_str(), std::string(width - filled, '.').c_str(), done, total, rate, eta);
    if (done >= total) std::fprintf(stderr, "\n");
    std::fflush(stderr);
  };
}

Result<operators::Profile> ProfileFrom(const std::string& path) {
  if (path == "default") {
    return operators::ParseProfile(operators::DefaultProfileYaml(), operators::kDefaultProfileSource);
  }
  return operators::LoadProfile(path);
}

// The profile in force on the profiles topic (its latest valid record), if any.
Result<std::optional<std::string>> PublishedProfile(const SourceArgs& a) {
  const std::string topic = pipeline::TopicNames(a.topic_prefix).Name(pipeline::TopicRole::kProfiles);
  auto kafka = ResolveKafkaOptions(a.kafka);
  if (!kafka.ok()) return kafka.error();
  auto records =
      pipeline::ReadToEnd(a.bootstrap, topic, 1, std::chrono::seconds(a.timeout_s), "boxwatch-backtest", *kafka);
  if (!records.ok()) return records.error();
  std::optional<std::string> latest;
  for (const auto& r : *records) {
    if (!r.value.empty() && operators::ParseProfile(r.value, topic).ok()) latest = r.value;
  }
  return latest;
}

Status WriteFile(const std::string& path, const std::string& text) {
  std::ofstream out(path);
  out << text;
  out.close();
  return out ? Status::Ok() : Status(Error{Errc::kIo, "cannot write " + path});
}

struct BacktestArgs {
  SourceArgs source;
  std::string profile;
  std::string baseline;
  bool no_baseline = false;
  std::string labels;
  std::string json;
  std::string html;
  std::string alerts;
  size_t sample = 20;
};

int RunBacktest(const BacktestArgs& a) {
  const char* kCmd = "boxwatch backtest";
  std::vector<std::string> problems;
  auto candidate = ProfileFrom(a.profile);
  if (!candidate.ok()) problems.push_back(candidate.error().message);
  if (a.no_baseline && !a.baseline.empty()) problems.push_back("give at most one of --baseline and --no-baseline");
  std::optional<operators::Profile> baseline;
  std::string baseline_from;
  if (!a.no_baseline) {
    if (!a.baseline.empty()) {
      auto b = ProfileFrom(a.baseline);
      b.ok() ? (void)(baseline = *b) : problems.push_back(b.error().message);
      baseline_from = a.baseline;
    } else if (!a.source.bootstrap.empty()) {
      auto published = PublishedProfile(a.source);
      if (!published.ok()) {
        std::fprintf(stderr, "%s: reading the published profile: %s\n", kCmd, published.error().message.c_str());
        return 1;
      } else if (published->has_value()) {
        baseline = *operators::ParseProfile(**published, "the profiles topic");
        baseline_from = "the profiles topic";
      }
    }
    if (!baseline && problems.empty()) {
      baseline = *ProfileFrom("default");
      baseline_from = "the built-in default";
    }
  }
  std::optional<sim::Labels> labels;
  if (!a.labels.empty()) {
    auto l = sim::ReadLabels(a.labels);
    l.ok() ? (void)(labels = *l) : problems.push_back(l.error().message);
  }
  int code = 0;
  auto loaded = ReportOrLoad(problems, a.source, kCmd, &code);
  if (!loaded) return code;
  auto& [input, run] = *loaded;
  backtest::Side cand{.label = "candidate", .profile = &*candidate, .run = {}};
  run.progress = ProgressBar("candidate");
  cand.run = backtest::Run(input, *candidate, run);
  backtest::Side base{.label = "baseline", .profile = baseline ? &*baseline : nullptr, .run = {}};
  if (baseline) {
    run.progress = ProgressBar("baseline ");
    base.run = backtest::Run(input, *baseline, run);
  }
  backtest::ReportOptions ro{.input_source = input.source,
                             .input_records = input.records,
                             .from_ms = run.from_ms == std::numeric_limits<int64_t>::min() ? input.first_ms : run.from_ms,
                             .to_ms = run.to_ms == std::numeric_limits<int64_t>::max() ? input.last_ms + 1 : run.to_ms,
                             .labels = labels ? &*labels : nullptr,
                             .sample = a.sample};
  const backtest::Report report = backtest::BuildReport(cand, baseline ? &base : nullptr, ro);
  if (baseline) std::printf("baseline: %s\n", baseline_from.c_str());
  std::printf("%s", report.Text().c_str());
  for (const auto& [path, text] : {std::pair{a.json, &backtest::Report::Json}, {a.html, &backtest::Report::Html}}) {
    if (path.empty()) continue;
    if (Status s = WriteFile(path, (report.*text)()); !s.ok()) {
      std::fprintf(stderr, "%s: %s\n", kCmd, s.message().c_str());
      return 1;
    }
  }
  if (!a.alerts.empty()) {
    std::string lines;
    for (const auto& alert : cand.run.alerts) {
      std::string json;
      google::protobuf::util::JsonPrintOptions po;
      po.preserve_proto_field_names = true;
      (void)google::protobuf::util::MessageToJsonString(alert, &json, po);
      lines += json + "\n";
    }
    if (Status s = WriteFile(a.alerts, lines); !s.ok()) {
      std::fprintf(stderr, "%s: %s\n", kCmd, s.message().c_str());
      return 1;
    }
  }
  return 0;
}

struct TuneArgs {
  SourceArgs source;
  std::string profile;
  std::string out;
  std::string version;
  std::string json;
  std::vector<std::string> bounds;
  backtest::TuneOptions options;
};

int RunTune(TuneArgs& a) {
  const char* kCmd = "boxwatch profile tune";
  std::vector<std::string> problems;
  std::string yaml;
  std::string source = a.profile;
  if (a.profile == "default") {
    yaml = std::string(operators::DefaultProfileYaml());
    source = operators::kDefaultProfileSource;
  } else {
    std::ifstream in(a.profile);
    std::stringstream ss;
    ss << in.rdbuf();
    if (!in) problems.push_back("cannot read profile " + a.profile);
    yaml = ss.str();
  }
  auto profile = operators::ParseProfile(yaml, source);
  if (!profile.ok()) problems.push_back(profile.error().message);
  for (const auto& b : a.bounds) {
    // id=lo:hi
    const size_t eq = b.find('='), colon = b.find(':', eq == std::string::npos ? 0 : eq);
    double lo = 0, hi = 0;
    bool ok = eq != std::string::npos && colon != std::string::npos;
    if (ok) {
      try {
        lo = std::stod(b.substr(eq + 1, colon - eq - 1));
        hi = std::stod(b.substr(colon + 1));
      } catch (...) {
        ok = false;
      }
    }
    if (!ok || lo < 0 || hi < lo) {
      problems.push_back("--bound '" + b + "' is not <indicator>=<min>:<max> with 0 <= min <= max");
      continue;
    }
    a.options.bounds[b.substr(0, eq)] = {lo, hi};
  }
  if (a.options.min_weight < 0 || a.options.max_weight < a.options.min_weight) {
    problems.push_back("--min-weight and --max-weight must satisfy 0 <= min <= max");
  }
  int code = 0;
  auto loaded = ReportOrLoad(problems, a.source, kCmd, &code);
  if (!loaded) return code;
  loaded->run.progress = ProgressBar("replay");
  const backtest::RunResult run = backtest::Run(loaded->input, *profile, loaded->run);
  auto result = backtest::Tune(run, *profile, a.options);
  if (!result.ok()) {
    std::fprintf(stderr, "%s: %s\n", kCmd, result.error().message.c_str());
    return 1;
  }
  const std::string version = a.version.empty() ? profile->version + "-tuned" : a.version;
  auto tuned = backtest::TunedProfileYaml(yaml, source, *result, version);
  if (!tuned.ok()) {
    std::fprintf(stderr, "%s: %s\n", kCmd, tuned.error().message.c_str());
    return 1;
  }
  std::printf("%s", result->Text().c_str());
  if (Status s = WriteFile(a.out, *tuned); !s.ok()) {
    std::fprintf(stderr, "%s: %s\n", kCmd, s.message().c_str());
    return 1;
  }
  if (!a.json.empty()) {
    if (Status s = WriteFile(a.json, result->Json() + "\n"); !s.ok()) {
      std::fprintf(stderr, "%s: %s\n", kCmd, s.message().c_str());
      return 1;
    }
  }
  std::printf("\nwrote candidate profile %s version %s to %s: backtest it, then publish it\n", profile->name.c_str(),
              version.c_str(), a.out.c_str());
  return 0;
}

}  // namespace

void RegisterBacktestCommands(CLI::App& app) {
  auto b = std::make_shared<BacktestArgs>();
  CLI::App* cmd = app.add_subcommand(
      "backtest", "What a profile would have raised on recorded input, beside a baseline; writes nothing to Kafka");
  cmd->add_option("--profile", b->profile, "Candidate profile YAML ('default': the built-in one)")->required();
  cmd->add_option("--baseline", b->baseline,
                  "Baseline profile YAML ('default': the built-in one; without it: the published profile with "
                  "--bootstrap, else the built-in one)");
  cmd->add_flag("--no-baseline", b->no_baseline, "Run the candidate alone");
  b->source.Add(cmd);
  cmd->add_option("--labels", b->labels, "Ground truth of a simulation (boxwatch simulate --labels)");
  cmd->add_option("--json", b->json, "Write the full report as JSON");
  cmd->add_option("--html", b->html, "Write a self-contained HTML report with plots");
  cmd->add_option("--alerts", b->alerts, "Write the candidate's alerts as JSON lines");
  cmd->add_option("--sample", b->sample, "Containers listed per change in the text and HTML")->capture_default_str();
  cmd->callback([b] { SetExitCode(RunBacktest(*b)); });

  auto t = std::make_shared<TuneArgs>();
  CLI::App* profile = app.get_subcommand("profile");
  CLI::App* tune = profile->add_subcommand(
      "tune", "Learn indicator weights from inspection outcomes and write a candidate profile (nothing is published)");
  tune->add_option("--profile", t->profile, "The profile to start from ('default': the built-in one)")->required();
  tune->add_option("--out", t->out, "Where to write the candidate profile YAML")->required();
  tune->add_option("--version", t->version, "Version of the candidate (default: <version>-tuned)");
  tune->add_option("--json", t->json, "Write the fit report as JSON");
  t->source.Add(tune);
  tune->add_option("--min-weight", t->options.min_weight, "Lowest learned weight")->capture_default_str();
  tune->add_option("--max-weight", t->options.max_weight, "Highest learned weight")->capture_default_str();
  tune->add_option("--bound", t->bounds, "Bounds of one indicator: <id>=<min>:<max> (repeatable)");
  tune->add_option("--min-outcomes", t->options.min_outcomes,
                   "Inspected containers where an indicator fired, to learn its weight")
      ->capture_default_str();
  tune->add_option("--folds", t->options.folds, "Cross-validation folds")->capture_default_str();
  tune->add_option("--high-probability", t->options.high_probability,
                   "Modelled seizure probability that reaches the HIGH threshold")
      ->capture_default_str();
  tune->callback([t] { SetExitCode(RunTune(*t)); });
}

}  // namespace boxwatch::app
