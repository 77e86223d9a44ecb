#include "monitoring/metrics.h"

#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/text_serializer.h>
#include <unistd.h>

#include <chrono>
#include <dirent.h>
#include <fstream>
#include <mutex>
#include <sstream>
#include <vector>

namespace boxwatch::monitoring {
namespace {

// Reads /proc/self figures into gauges just before each scrape.
class ProcessFigures {
 public:
  explicit ProcessFigures(prometheus::Registry& r)
      : cpu_(prometheus::BuildCounter()
                 .Name("process_cpu_seconds_total")
                 .Help("User and system CPU time of the process, seconds")
                 .Register(r)
                 .Add({})),
        rss_(prometheus::BuildGauge()
                 .Name("process_resident_memory_bytes")
                 .Help("Resident memory of the process, bytes")
                 .Register(r)
                 .Add({})),
        fds_(prometheus::BuildGauge().Name("process_open_fds").Help("Open file descriptors").Register(r).Add({})),
        start_(prometheus::BuildGauge()
                   .Name("process_start_time_seconds")
                   .Help("Start time of the process, seconds since the Unix epoch")
                   .Register(r)
                   .Add({})) {
    start_.Set(std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count());
  }
  void Refresh() {
    std::ifstream stat("/proc/self/stat");
    std::string text((std::istreambuf_iterator<char>(stat)), std::istreambuf_iterator<char>());
    const size_t close = text.rfind(')');
    if (close != std::string::npos) {
      std::istringstream rest(text.substr(close + 2));
      std::vector<std::string> f;
      std::string x;
      while (rest >> x) f.push_back(x);
      // Fields after the command: state(0) ... utime(11) stime(12) ... rss(21).
      if (f.size() > 21) {
        const double tick = static_cast<double>(::sysconf(_SC_CLK_TCK));
        const double cpu = (std::stod(f[11]) + std::stod(f[12])) / tick;
        if (cpu > cpu_seen_) cpu_.Increment(cpu - cpu_seen_);
        cpu_seen_ = std::max(cpu_seen_, cpu);
        rss_.Set(std::stod(f[21]) * static_cast<double>(::sysconf(_SC_PAGESIZE)));
      }
    }
    int n = 0;
    if (DIR* d = ::opendir("/proc/self/fd")) {
      while (::readdir(d) != nullptr) ++n;
      ::closedir(d);
    }
    fds_.Set(n > 2 ? n - 3 : 0);  // ".", ".." and the directory's own fd
  }

 private:
  prometheus::Counter& cpu_;
  double cpu_seen_ = 0;
  prometheus::Gauge& rss_;
  prometheus::Gauge& fds_;
  prometheus::Gauge& start_;
};

std::mutex g_process_mu;
std::vector<std::pair<prometheus::Registry*, std::unique_ptr<ProcessFigures>>> g_process;

void RefreshProcess(prometheus::Registry& r) {
  std::lock_guard lock(g_process_mu);
  for (auto& [reg, figures] : g_process)
    if (reg == &r) figures->Refresh();
}

}  // namespace

const std::vector<double>& LatencyBuckets() {
  // Dense between 50 ms and 2.5 s, where delivery targets sit (250 ms to the
  // hub, 300 ms ingest to alert): a quantile is interpolated inside one
  // bucket, so a bucket as wide as 0.25-0.5 s cannot tell 260 ms from 490.
  static const std::vector<double> kBuckets = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.125, 0.15,
                                               0.2,   0.25,   0.3,   0.4,  0.5,   0.75, 1,     1.5, 2,     2.5,
                                               5,     10,     30,    60,   120,   300,  600};
  return kBuckets;
}

void AddProcessCollector(prometheus::Registry& registry) {
  std::lock_guard lock(g_process_mu);
  g_process.emplace_back(&registry, std::make_unique<ProcessFigures>(registry));
}

std::string Render(prometheus::Registry& registry) {
  RefreshProcess(registry);
  return prometheus::TextSerializer().Serialize(registry.Collect());
}

Result<std::unique_ptr<Endpoint>> Endpoint::Start(const std::string& listen,
                                                  std::shared_ptr<prometheus::Registry> registry,
                                                  ReadyCheck ready, ReadyCheck note) {
  http::Server::Options options;
  options.listen = listen;
  options.max_connections = 16;
  auto server = http::Server::Start(options, [registry, ready, note](const http::Request& req) {
    if (req.path == "/metrics") {
      http::Response r = http::Response::Text(200, Render(*registry));
      r.content_type = "text/plain; version=0.0.4; charset=utf-8";
      return r;
    }
    if (req.path == "/healthz") return http::Response::Text(200, "ok\n");
    if (req.path == "/readyz") {
      const std::string why = ready ? ready() : std::string();
      const std::string warning = note ? note() : std::string();
      const std::string tail = warning.empty() ? "" : warning + "\n";
      return why.empty() ? http::Response::Text(200, "ready\n" + tail)
                         : http::Response::Text(503, "not ready: " + why + "\n" + tail);
    }
    return http::Response::Error(404, "no such endpoint: " + req.path + " (try /metrics, /healthz, /readyz)");
  });
  if (!server.ok()) return Error(server.error().code, "metrics endpoint: " + server.error().message);
  auto endpoint = std::unique_ptr<Endpoint>(new Endpoint());
  endpoint->server_ = std::move(*server);
  return endpoint;
}

}  // namespace boxwatch::monitoring
