// `boxwatch simulate` (traffic with labelled scenarios, to Kafka or a file)
// and `boxwatch evaluate` (precision and recall of the alerts against the
// labels). docs/simulation.md describes both.
#include <CLI/CLI.hpp>
#include <google/protobuf/struct.pb.h>
#include <google/protobuf/util/json_util.h>
#include <unistd.h>

#include <cstdlib>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <fstream>
#include <map>

#include "app/commands.h"
#include "app/kafka_options.h"
#include "core/http.h"
#include "core/types.h"
#include "operators/default_profile.h"
#include "pipeline/topic_reader.h"
#include "sim/evaluation.h"
#include "sim/produce.h"
#include "sim/upstream.h"

namespace boxwatch::app {
namespace {

std::atomic<bool> g_stop{false};

struct SimulateArgs {
  sim::TrafficOptions traffic;
  std::string bootstrap;
  std::string topic_prefix;
  std::string labels;
  std::string out;
  std::string profile;
  std::string start = "auto";
  double rate = 0;
  double spread_hours = 6;
  std::string format = "native";
  std::string model = "field";
  std::string part = "all";
  KafkaCliOptions kafka;
};

Result<operators::Profile> LoadProfileOrDefault(const std::string& path) {
  return path.empty() ? operators::ParseProfile(operators::DefaultProfileYaml(), operators::kDefaultProfileSource)
                      : operators::LoadProfile(path);
}

int RunSimulate(SimulateArgs& a) {
  std::vector<std::string> problems;
  if (a.bootstrap.empty() == a.out.empty()) problems.push_back("give exactly one of --bootstrap (Kafka) and --out (a file)");
  if (a.traffic.containers < 1) problems.push_back("--containers must be at least 1");
  if (a.rate < 0) problems.push_back("--rate must not be negative (0: as fast as possible)");
  if (a.spread_hours <= 0) problems.push_back("--spread-hours must be positive");
  for (auto [name, v] : {std::pair{"--scenario-rate", a.traffic.scenario_rate}, {"--lookalike-rate", a.traffic.lookalike_rate},
                         {"--outcome-rate", a.traffic.outcome_rate}})
    if (v < 0 || v > 1) problems.push_back(std::string(name) + " must be between 0 and 1");
  if (a.model != "field" && a.model != "lab") problems.push_back("--model must be field or lab, not '" + a.model + "'");
  a.traffic.field = a.model == "field";
  if (a.part != "all" && a.part != "lead-in" && a.part != "rest") {
    problems.push_back("--part must be all, lead-in or rest, not '" + a.part + "'");
  }
  if (a.format != "native" && a.format != "cuscar-n42") {
    problems.push_back("--format must be native or cuscar-n42, not '" + a.format + "'");
  }
  if (a.traffic.scenario_rate + a.traffic.lookalike_rate > 1)
    problems.push_back("--scenario-rate plus --lookalike-rate must not exceed 1");
  auto profile = LoadProfileOrDefault(a.profile);
  if (!profile.ok()) problems.push_back(profile.error().message);
  auto kafka = ResolveKafkaOptions(a.kafka);
  if (!kafka.ok()) problems.push_back(kafka.error().message);
  if (!problems.empty()) {
    for (const auto& p : problems) std::fprintf(stderr, "boxwatch simulate: %s\n", p.c_str());
    return 2;
  }
  a.traffic.spread_ms = static_cast<int64_t>(a.spread_hours * 3600 * 1000);
  const bool auto_start = a.start == "auto";
  if (!auto_start) {
    try {
      a.traffic.start_ms = std::stoll(a.start);
    } catch (...) {
      std::fprintf(stderr, "boxwatch simulate: --start must be 'auto' or UTC epoch milliseconds\n");
      return 2;
    }
  }
  sim::Traffic traffic = auto_start ? sim::GenerateTrafficEndingBefore(&a.traffic, *profile, NowMs())
                                    : sim::GenerateTraffic(a.traffic, *profile);
  if (a.part != "all") {
    const size_t lead_in = sim::LeadInEnd(traffic.records);
    if (a.part == "lead-in") {
      traffic.records.resize(lead_in);
    } else {
      traffic.records.erase(traffic.records.begin(), traffic.records.begin() + static_cast<std::ptrdiff_t>(lead_in));
    }
  }
  if (a.format == "cuscar-n42") traffic = sim::InUpstreamFormats(traffic);
  std::map<std::string, size_t> by_scenario;
  for (const auto& [c, s] : traffic.labels) ++by_scenario[sim::ScenarioName(s)];
  if (!a.labels.empty()) {
    if (Status s = sim::WriteLabels(a.labels, traffic.labels); !s.ok()) {
      std::fprintf(stderr, "boxwatch simulate: %s\n", s.message().c_str());
      return 1;
    }
  }
  const pipeline::TopicNames names(a.topic_prefix);
  const auto started = std::chrono::steady_clock::now();
  size_t sent = traffic.records.size();
  if (!a.out.empty()) {
    if (Status s = sim::WriteTrafficFile(a.out, names, traffic.records); !s.ok()) {
      std::fprintf(stderr, "boxwatch simulate: %s\n", s.message().c_str());
      return 1;
    }
  } else {
    auto producer = pipeline::KafkaProducer::Create({.bootstrap = a.bootstrap, .extra = *kafka});
    if (!producer.ok()) {
      std::fprintf(stderr, "boxwatch simulate: %s\n", producer.error().message.c_str());
      return 1;
    }
    std::signal(SIGINT, [](int) { g_stop = true; });
    std::signal(SIGTERM, [](int) { g_stop = true; });
    const bool tty = ::isatty(STDERR_FILENO);
    sim::ProduceOptions po{.rate = a.rate, .stop = &g_stop};
    if (tty) {
      po.progress = [&](size_t done, size_t total) {
        const int width = 40;
        const int filled = total ? static_cast<int>(width * done / total) : width;
        const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
        std::fprintf(stderr, "\r[%s%s] %zu/%zu records, %.0f/s ", std::string(filled, '#').c_str(),
                     std::string(width - filled, '.').c_str(), done, total, secs > 0 ? done / secs : 0.0);
        std::fflush(stderr);
      };
    }
    auto n = sim::ProduceTraffic(**producer, names, traffic.records, po);
    if (tty) std::fprintf(stderr, "\n");
    if (!n.ok()) {
      std::fprintf(stderr, "boxwatch simulate: %s\n", n.error().message.c_str());
      return 1;
    }
    sent = *n;
  }
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  std::map<std::string, size_t> by_topic;
  size_t reference = 0;  // records a worker reads as reference data, not as input events
  for (size_t i = 0; i < sent; ++i) {
    ++by_topic[names.Name(traffic.records[i].role)];
    reference += traffic.records[i].role == pipeline::TopicRole::kReference;
  }
  std::fprintf(stderr, "boxwatch simulate: %zu records for %d containers in %.1f s (%.0f records/s) to %s\n", sent,
               a.traffic.containers, secs, secs > 0 ? sent / secs : 0.0, a.out.empty() ? a.bootstrap.c_str() : a.out.c_str());
  for (const auto& [t, n] : by_topic) std::fprintf(stderr, "  %-32s %zu\n", t.c_str(), n);
  std::fprintf(stderr, "scenarios (seed %u):\n", a.traffic.seed);
  for (const auto& [s, n] : by_scenario) std::fprintf(stderr, "  %-34s %zu\n", s.c_str(), n);
  std::printf("{\"event\":\"simulated\",\"records\":%zu,\"input_records\":%zu,\"containers\":%d,\"complete\":%s}\n",
              sent, sent - reference, a.traffic.containers,
              sent == traffic.records.size() ? "true" : "false");
  std::fflush(stdout);
  return sent == traffic.records.size() ? 0 : 1;
}

struct EvaluateArgs {
  std::string labels;
  std::string bootstrap;
  std::string topic_prefix;
  std::string hub;
  std::string json;
  int timeout_s = 60;
  KafkaCliOptions kafka;
};

Result<std::vector<v1::Alert>> AlertsFromHub(const std::string& address, int timeout_s) {
  auto hp = http::SplitHostPort(address);
  if (!hp.ok()) return hp.error();
  // An API token of the hub's accounts (`boxwatch hub tokens add`), from the
  // environment: never on the command line.
  const char* token = std::getenv("BOXWATCH_HUB_TOKEN");
  if (token == nullptr || *token == '\0')
    return Error{Errc::kInvalidArgument, "set BOXWATCH_HUB_TOKEN to an API token of the hub (boxwatch hub tokens add)"};
  const char* ca = std::getenv("BOXWATCH_HUB_CA");  // the hub's HTTPS CA; unset: plain HTTP (a demo hub)
  auto r = http::Fetch("GET", hp->first, hp->second, "/api/alerts?format=full&limit=1000000",
                       {.ca_file = ca ? ca : "", .headers = {{"Authorization", std::string("Bearer ") + token}},
                        .timeout_ms = timeout_s * 1000});
  if (!r.ok()) return r.error();
  if (r->status != 200) return Error{Errc::kIo, "hub answered " + std::to_string(r->status) + ": " + r->body};
  google::protobuf::Struct doc;
  if (!google::protobuf::util::JsonStringToMessage(r->body, &doc).ok())
    return Error{Errc::kInvalidArgument, "the hub's reply is not JSON"};
  std::vector<v1::Alert> out;
  for (const auto& v : doc.fields().at("alerts").list_value().values()) {
    std::string json;
    (void)google::protobuf::util::MessageToJsonString(v, &json);
    v1::Alert a;
    if (!google::protobuf::util::JsonStringToMessage(json, &a).ok())
      return Error{Errc::kInvalidArgument, "an alert from the hub does not parse"};
    out.push_back(std::move(a));
  }
  return out;
}

Result<std::vector<v1::Alert>> AlertsFromTopic(const EvaluateArgs& a) {
  const std::string topic = pipeline::TopicNames(a.topic_prefix).Name(pipeline::TopicRole::kAlerts);
  auto kafka = ResolveKafkaOptions(a.kafka);
  if (!kafka.ok()) return kafka.error();
  auto admin = pipeline::KafkaAdmin::Create(a.bootstrap, *kafka);
  if (!admin.ok()) return admin.error();
  auto counts = (*admin)->PartitionCounts({topic}, std::chrono::seconds(a.timeout_s));
  if (!counts.ok()) return counts.error();
  if (!counts->count(topic)) return Error{Errc::kNotFound, "topic " + topic + " does not exist"};
  auto records = pipeline::ReadToEnd(a.bootstrap, topic, counts->at(topic), std::chrono::seconds(a.timeout_s),
                                     "boxwatch-evaluate", *kafka);
  if (!records.ok()) return records.error();
  std::vector<v1::Alert> out;
  for (const auto& r : *records) {
    v1::Alert alert;
    if (alert.ParseFromString(r.value)) out.push_back(std::move(alert));
  }
  return out;
}

int RunEvaluate(const EvaluateArgs& a) {
  if (a.labels.empty() || a.bootstrap.empty() == a.hub.empty()) {
    std::fprintf(stderr, "boxwatch evaluate: give --labels and exactly one of --bootstrap and --hub\n");
    return 2;
  }
  auto labels = sim::ReadLabels(a.labels);
  if (!labels.ok()) {
    std::fprintf(stderr, "boxwatch evaluate: %s\n", labels.error().message.c_str());
    return 2;
  }
  auto alerts = a.hub.empty() ? AlertsFromTopic(a) : AlertsFromHub(a.hub, a.timeout_s);
  if (!alerts.ok()) {
    std::fprintf(stderr, "boxwatch evaluate: %s\n", alerts.error().message.c_str());
    return 1;
  }
  const sim::Evaluation e = sim::Evaluate(*labels, *alerts);
  std::printf("%zu alerts, %zu labelled containers (from %s)\n\n%s", alerts->size(), labels->size(),
              a.hub.empty() ? "the alerts topic" : ("hub " + a.hub).c_str(), e.Table().c_str());
  if (!a.json.empty()) {
    std::ofstream out(a.json);
    out << e.Json() << "\n";
    if (!out) {
      std::fprintf(stderr, "boxwatch evaluate: cannot write %s\n", a.json.c_str());
      return 1;
    }
  }
  return 0;
}

}  // namespace

void RegisterSimCommands(CLI::App& app) {
  auto s = std::make_shared<SimulateArgs>();
  s->traffic.outcome_rate = 0.3;
  CLI::App* sc = app.add_subcommand(
      "simulate", "Generate realistic container traffic with labelled smuggling scenarios and benign look-alikes, "
                  "to Kafka or to a file (docs/simulation.md)");
  sc->add_option("--seed", s->traffic.seed, "Seed: the same seed gives the same traffic")->capture_default_str();
  sc->add_option("--containers", s->traffic.containers, "Containers to simulate")->capture_default_str();
  sc->add_option("--bootstrap", s->bootstrap, "Kafka bootstrap servers to produce to");
  sc->add_option("--topic-prefix", s->topic_prefix, "Prefix of every topic name (default: none)");
  sc->add_option("--out", s->out, "Write the records to this file (JSON lines) instead of Kafka");
  sc->add_option("--format", s->format,
                 "native (boxwatch.v1 records) or cuscar-n42 (manifests as UN/EDIFACT CUSCAR, portal scans as "
                 "ANSI N42.42 on the raw topics, for boxwatch ingest)")
      ->capture_default_str();
  sc->add_option("--labels", s->labels, "Write the ground truth (container, scenario) to this file (JSON lines)");
  sc->add_option("--rate", s->rate, "Records per second; 0 sends as fast as possible")->capture_default_str();
  sc->add_option("--start", s->start,
                 "Event time of the first trip window, UTC epoch ms; 'auto' ends the simulation a minute ago")
      ->capture_default_str();
  sc->add_option("--spread-hours", s->spread_hours, "Trips start within this many hours")->capture_default_str();
  sc->add_option("--gps-per-container", s->traffic.gps_per_container, "GPS fixes per trip (every 1-5 min)")
      ->capture_default_str();
  sc->add_flag("--no-scans", [s](int64_t n) { s->traffic.scans = n == 0; },
              "Send no radiation portal scans (with --gps-per-container 0: manifests only, e.g. to fill state)");
  sc->add_option("--scenario-rate", s->traffic.scenario_rate, "Share of containers with a smuggling scenario")
      ->capture_default_str();
  sc->add_option("--lookalike-rate", s->traffic.lookalike_rate, "Share of containers with a benign look-alike")
      ->capture_default_str();
  sc->add_option("--outcome-rate", s->traffic.outcome_rate,
                 "Share of scenario containers inspected (an outcome is sent)")
      ->capture_default_str();
  sc->add_option("--model", s->model,
                 "field: devices, officers and trade as in the field (clock skew, store-and-forward, power saving, "
                 "re-seals, honest look-alikes, a trader register); lab: the clean model of earlier releases")
      ->capture_default_str();
  sc->add_option("--part", s->part,
                 "all, lead-in (the records before the first scan, GPS fix or outcome: the trips' manifests and the "
                 "reference data) or rest (the others): one simulation sent in two steps, e.g. to measure latency "
                 "in steady traffic after the opening burst of manifests")
      ->capture_default_str();
  sc->add_flag("--bad-records", s->traffic.bad_records, "Add malformed records (one of each dead-letter reason per 500 containers)");
  sc->add_option("--profile", s->profile, "Profile YAML whose geography to use (default: the built-in profile)");
  AddKafkaOptions(sc, &s->kafka);
  sc->callback([s] { SetExitCode(RunSimulate(*s)); });

  auto e = std::make_shared<EvaluateArgs>();
  CLI::App* ec = app.add_subcommand(
      "evaluate", "Precision and recall of the alerts against a simulation's labels, per scenario and per priority");
  ec->add_option("--labels", e->labels, "Labels file written by boxwatch simulate --labels");
  ec->add_option("--bootstrap", e->bootstrap, "Read the alerts topic from this Kafka cluster");
  ec->add_option("--topic-prefix", e->topic_prefix, "Prefix of every topic name (default: none)");
  ec->add_option("--hub", e->hub, "Read the alerts stored at this hub instead (host:port of its HTTP API)");
  ec->add_option("--json", e->json, "Also write the figures as JSON to this file");
  AddKafkaOptions(ec, &e->kafka);
  ec->add_option("--timeout-s", e->timeout_s, "Seconds to wait for Kafka or the hub")->capture_default_str();
  ec->callback([e] { SetExitCode(RunEvaluate(*e)); });
}

}  // namespace boxwatch::app
