// `boxwatch ingest`: UN/EDIFACT CUSCAR and ANSI N42.42 into the pipeline's
// canonical records (ingest/ingestor.h; docs/formats.md). Prints one JSON
// line when started (with its metrics port) and one when stopped; logs go
// to stderr. Exit codes: 0 after SIGTERM/SIGINT, 2 for a bad command line
// (every problem listed), 1 when Kafka or the drop directory fails.
#include <CLI/CLI.hpp>
#include <prometheus/registry.h>

#include <csignal>
#include <cstdio>
#include <filesystem>

#include "app/commands.h"
#include "app/kafka_options.h"
#include "core/types.h"
#include "ingest/ingestor.h"
#include "monitoring/metrics.h"

namespace boxwatch::app {
namespace {

std::atomic<bool> g_stop{false};

struct IngestArgs {
  ingest::IngestOptions options;
  std::string metrics_listen = "0.0.0.0:9467";
  KafkaCliOptions kafka;
  bool no_kafka_input = false;
};

int RunIngest(IngestArgs& a) {
  std::vector<std::string> problems;
  if (a.options.bootstrap.empty()) problems.push_back("--bootstrap is required");
  if (auto kafka = ResolveKafkaOptions(a.kafka); kafka.ok()) {
    a.options.kafka = std::move(*kafka);
  } else {
    problems.push_back(kafka.error().message);
  }
  a.options.kafka_input = !a.no_kafka_input;
  if (!a.options.kafka_input && a.options.watch_dir.empty()) {
    problems.push_back("--no-kafka-input needs --watch DIR: there would be nothing to read");
  }
  if (!a.options.watch_dir.empty() && !std::filesystem::is_directory(a.options.watch_dir)) {
    problems.push_back("--watch " + a.options.watch_dir + " is not a directory");
  }
  if (!a.options.n42.default_site.empty() && !UnLocode::Parse(a.options.n42.default_site).ok()) {
    problems.push_back("--n42-site " + a.options.n42.default_site + " is not a UN/LOCODE");
  }
  if (a.options.batch_records < 1) problems.push_back("--batch-records must be at least 1");
  if (!problems.empty()) {
    for (const auto& p : problems) std::fprintf(stderr, "boxwatch ingest: %s\n", p.c_str());
    return 2;
  }
  auto registry = std::make_shared<prometheus::Registry>();
  monitoring::AddProcessCollector(*registry);
  auto ingestor = ingest::Ingestor::Create(a.options, *registry);
  if (!ingestor.ok()) {
    std::fprintf(stderr, "boxwatch ingest: %s\n", ingestor.error().message.c_str());
    return 1;
  }
  ingest::Ingestor* in = ingestor->get();
  auto endpoint = monitoring::Endpoint::Start(a.metrics_listen, registry, [in] { return in->NotReady(); });
  if (!endpoint.ok()) {
    std::fprintf(stderr, "boxwatch ingest: %s\n", endpoint.error().message.c_str());
    return 1;
  }
  std::signal(SIGTERM, [](int) { g_stop = true; });
  std::signal(SIGINT, [](int) { g_stop = true; });
  std::printf("{\"event\":\"started\",\"role\":\"ingest\",\"instance_id\":\"%s\",\"metrics_port\":%d}\n",
              a.options.instance_id.c_str(), (*endpoint)->port());
  std::fflush(stdout);
  Status s = in->Run(g_stop);
  const auto st = in->stats();
  std::printf("{\"event\":\"stopped\",\"raw_records\":%llu,\"files\":%llu,\"records\":%llu,\"dead_letters\":%llu,"
              "\"transactions\":%llu,\"ok\":%s}\n",
              static_cast<unsigned long long>(st.raw_records), static_cast<unsigned long long>(st.files),
              static_cast<unsigned long long>(st.canonical), static_cast<unsigned long long>(st.dead_letters),
              static_cast<unsigned long long>(st.transactions), s.ok() ? "true" : "false");
  std::fflush(stdout);
  if (!s.ok()) {
    std::fprintf(stderr, "boxwatch ingest: %s\n", s.message().c_str());
    return 1;
  }
  return 0;
}

}  // namespace

void RegisterIngestCommand(CLI::App& app) {
  auto a = std::make_shared<IngestArgs>();
  CLI::App* cmd = app.add_subcommand(
      "ingest", "Convert UN/EDIFACT CUSCAR and ANSI N42.42 (raw topics, a drop directory) into canonical records");
  cmd->add_option("--bootstrap", a->options.bootstrap, "Kafka bootstrap servers")->required();
  cmd->add_option("--topic-prefix", a->options.topic_prefix, "Topic name prefix");
  cmd->add_option("--instance-id", a->options.instance_id, "This instance's id (transactional id, static member)")
      ->capture_default_str();
  cmd->add_option("--group-id", a->options.group_id, "Consumer group of the raw topics")->capture_default_str();
  cmd->add_option("--watch", a->options.watch_dir,
                  "A drop directory: files are ingested once, then moved to done/ or failed/");
  cmd->add_flag("--no-kafka-input", a->no_kafka_input, "Do not read the raw topics (drop directory only)");
  cmd->add_option("--n42-site", a->options.n42.default_site,
                  "UN/LOCODE of the portal when an N42 document names no Site characteristic");
  cmd->add_option("--batch-records", a->options.batch_records, "Raw records per transaction at most")
      ->capture_default_str();
  cmd->add_option("--metrics-listen", a->metrics_listen, "host:port of /metrics, /healthz, /readyz")
      ->capture_default_str();
  AddKafkaOptions(cmd, &a->kafka);
  cmd->callback([a] { SetExitCode(RunIngest(*a)); });
}

}  // namespace boxwatch::app
