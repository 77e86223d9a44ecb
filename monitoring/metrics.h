#pragma once
// The process's metrics registry and its HTTP endpoint.
//
// One prometheus::Registry per process; each component builds its probe
// (e.g. delivery/dispatcher_probe.h) on it and never touches the Prometheus
// API elsewhere. Endpoint serves, on one port:
//   GET /metrics  Prometheus text format (registry + process figures)
//   GET /healthz  200 while the process runs (liveness)
//   GET /readyz   200 when the `ready` callback says so, else 503 with the
//                 reason (readiness: restored, subscribed, Kafka reachable);
//                 a `note` (a warning that leaves readiness alone) follows
//                 on the next line
// Thread-safe: probes are updated from any thread; scrapes run on the
// endpoint's connection threads.

#include <prometheus/registry.h>

#include <functional>
#include <memory>
#include <string>

#include "core/http.h"
#include "core/result.h"

namespace boxwatch::monitoring {

// Readiness: empty string when ready, otherwise why not.
using ReadyCheck = std::function<std::string()>;

// Latency buckets in seconds, 1 ms to 10 min (the watermark holds
// evaluations back for allowed_lateness_ms, 5 min by default).
const std::vector<double>& LatencyBuckets();

class Endpoint {
 public:
  // Starts serving on `listen` (host:port; port 0 picks one). A null
  // `ready` always reports ready.
  static Result<std::unique_ptr<Endpoint>> Start(const std::string& listen,
                                                 std::shared_ptr<prometheus::Registry> registry,
                                                 ReadyCheck ready, ReadyCheck note = nullptr);
  int port() const { return server_->port(); }
  void Stop() { server_->Stop(); }

 private:
  std::unique_ptr<http::Server> server_;
};

// Registers process_cpu_seconds_total, process_resident_memory_bytes,
// process_open_fds and process_start_time_seconds (read from /proc at scrape
// time) on `registry`.
void AddProcessCollector(prometheus::Registry& registry);

// Renders the registry in the Prometheus text format.
std::string Render(prometheus::Registry& registry);

}  // namespace boxwatch::monitoring
