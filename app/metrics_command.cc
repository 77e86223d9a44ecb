// `boxwatch metrics`: lists every metric family boxwatch's processes export
// (worker, dispatcher, hub, ingest, librdkafka figures, process figures), one per
// line as "<name> <type>", for dashboards, alerting rules and the checks
// that keep them in step with the code.
#include <CLI/CLI.hpp>
#include <prometheus/registry.h>

#include <cstdio>

#include "app/commands.h"
#include "ingest/ingest_probe.h"
#include "delivery/probes.h"
#include "monitoring/metrics.h"
#include "pipeline/worker_probe.h"

namespace boxwatch::app {
namespace {

const char* TypeName(prometheus::MetricType t) {
  switch (t) {
    case prometheus::MetricType::Counter: return "counter";
    case prometheus::MetricType::Gauge: return "gauge";
    case prometheus::MetricType::Histogram: return "histogram";
    case prometheus::MetricType::Summary: return "summary";
    default: return "untyped";
  }
}

int ListMetrics() {
  prometheus::Registry registry;
  monitoring::AddProcessCollector(registry);
  pipeline::WorkerProbe worker(registry, {"manifests", "scans", "gps", "outcomes"});
  pipeline::KafkaStatsProbe kafka(registry, "any");
  delivery::DispatcherProbe dispatcher(registry);
  delivery::HubProbe hub(registry);
  ingest::IngestProbe ingest(registry);
  // Labelled families appear once they have a member: give each one.
  worker.RecordsIn(0, 0, 0);
  worker.KnownReasons({"late"});
  worker.KnownRegions({"region"});
  worker.Lag(0, 0, 0);
  worker.RestoreStarted(0, 0);
  worker.State(0, 0);
  worker.ProfileVersion("profile", "1");
  kafka.Update(R"({"brokers":{"b":{"nodeid":1,"rtt":{"avg":1000}}}})");
  dispatcher.KnownHubs({"hub"});
  for (const auto& family : registry.Collect()) std::printf("%s %s\n", family.name.c_str(), TypeName(family.type));
  return 0;
}

}  // namespace

void RegisterMetricsCommand(CLI::App& app) {
  CLI::App* cmd = app.add_subcommand("metrics", "List every metric family boxwatch exports (name and type)");
  cmd->callback([] { SetExitCode(ListMetrics()); });
}

}  // namespace boxwatch::app
