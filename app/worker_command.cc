// `boxwatch worker --config FILE`: the stateful stage (pipeline/worker.h).
// Prints one JSON line per notable event on stdout (restores, final
// figures) for operators and tests; logs go to stderr.
#include <CLI/CLI.hpp>
#include <prometheus/registry.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <mutex>

#include "app/commands.h"
#include "monitoring/metrics.h"
#include "pipeline/kafka_error.h"
#include "pipeline/worker.h"

namespace boxwatch::app {
namespace {

std::atomic<bool> g_stop{false};

// Appended to an access error: what the operator should check.
constexpr const char* kAccessHint =
    "\n  Kafka refused the worker's principal: check the credentials of its Kafka client configuration "
    "(kafka_config) and that the principal has the worker's ACLs (docs/security.md); exit code 4";

int RunWorker(const std::string& config_path) {
  auto config = pipeline::WorkerConfig::Load(config_path);
  if (!config.ok()) {
    std::fprintf(stderr, "boxwatch worker: %s\n", config.error().message.c_str());
    return 2;
  }
  std::signal(SIGTERM, [](int) { g_stop = true; });
  std::signal(SIGINT, [](int) { g_stop = true; });
  auto registry = std::make_shared<prometheus::Registry>();
  monitoring::AddProcessCollector(*registry);
  // The endpoint comes up first, so /healthz answers during a long restore.
  pipeline::Worker* running = nullptr;
  std::mutex running_mu;
  std::unique_ptr<monitoring::Endpoint> endpoint;
  if (!config->metrics_listen.empty()) {
    auto e = monitoring::Endpoint::Start(
        config->metrics_listen, registry,
        [&]() -> std::string {
          std::lock_guard lock(running_mu);
          return running ? running->NotReady() : "starting";
        },
        [&]() -> std::string {
          std::lock_guard lock(running_mu);
          return running ? running->ReadinessNote() : "";
        });
    if (!e.ok()) {
      std::fprintf(stderr, "boxwatch worker: %s\n", e.error().message.c_str());
      return 2;
    }
    endpoint = std::move(*e);
  }
  auto worker = pipeline::Worker::Create(
      *config,
      [](const std::string& json) {
        std::printf("%s\n", json.c_str());
        std::fflush(stdout);
      },
      registry);
  if (!worker.ok()) {
    std::fprintf(stderr, "boxwatch worker: %s%s\n", worker.error().message.c_str(),
                 pipeline::IsKafkaRefusal(worker.error().code) ? kAccessHint : "");
    return pipeline::IsKafkaRefusal(worker.error().code) ? 4 : 1;  // docs/worker.md "Exit codes"
  }
  {
    std::lock_guard lock(running_mu);
    running = worker->get();
  }
  std::printf("{\"event\":\"started\",\"instance\":\"%s\",\"metrics_port\":%d,\"processing_guarantee\":\"%s\"}\n",
              config->instance_id.c_str(), endpoint ? endpoint->port() : 0,
              config->exactly_once ? "exactly_once" : "at_least_once");
  std::fflush(stdout);
  const auto started = std::chrono::steady_clock::now();
  Status s = (*worker)->Run(g_stop);
  const auto uptime_ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started).count();
  const auto& st = (*worker)->stats();
  std::printf(
      "{\"event\":\"stopped\",\"ok\":%s,\"processed\":%llu,\"alerts\":%llu,\"dead_letters\":%llu,"
      "\"late\":%llu,\"transactions\":%llu,\"restored_records\":%llu,\"rebuilds\":%llu,\"expired\":%llu,\"feedback\":%llu,\"uptime_ms\":%lld}\n",
      s.ok() ? "true" : "false", static_cast<unsigned long long>(st.processed),
      static_cast<unsigned long long>(st.alerts), static_cast<unsigned long long>(st.dead_letters),
      static_cast<unsigned long long>(st.late), static_cast<unsigned long long>(st.transactions),
      static_cast<unsigned long long>(st.restored_records), static_cast<unsigned long long>(st.rebuilds),
      static_cast<unsigned long long>(st.expired), static_cast<unsigned long long>(st.feedback),
      static_cast<long long>(uptime_ms));
  std::fflush(stdout);
  if (endpoint) endpoint->Stop();
  {
    std::lock_guard lock(running_mu);
    running = nullptr;
  }
  if (!s.ok()) {
    std::fprintf(stderr, "boxwatch worker: %s%s\n", s.ToString().c_str(),
                 pipeline::IsKafkaRefusal(s.code()) ? kAccessHint : "");
    if ((*worker)->refused_foreign_state()) return 3;  // docs/worker.md "Exit codes"
    return pipeline::IsKafkaRefusal(s.code()) ? 4 : 1;
  }
  return 0;
}

}  // namespace

void RegisterWorkerCommand(CLI::App& app) {
  auto config = std::make_shared<std::string>();
  CLI::App* worker = app.add_subcommand(
      "worker",
      "Consume the event topics, join per container, score and emit alerts exactly once "
      "(options: docs/configuration.md; every option can be overridden by BOXWATCH_<OPTION>)");
  worker->add_option("--config", *config, "Worker configuration YAML (may be omitted when the "
                                          "environment sets every required option)");
  worker->callback([config] { SetExitCode(RunWorker(*config)); });
}

}  // namespace boxwatch::app
