// Observability against real servers: a Prometheus server (Debian's
// prometheus package) scrapes a worker, a dispatcher and a hub during a short
// run on the real broker; the test asks Prometheus's HTTP API for the key
// series and checks that they exist and move. It also checks that every
// metric the Grafana dashboard and the recording/alerting rules use exists
// on the processes' live /metrics, and that /healthz and /readyz answer.
#include <google/protobuf/struct.pb.h>
#include <google/protobuf/util/json_util.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>
#include <thread>

#include "core/http.h"
#include "operators/default_profile.h"
#include "operators/profile.h"
#include "tests/support/delivery_harness.h"

namespace boxwatch::testing {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
namespace fs = std::filesystem;

std::string ReadText(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Metric names on a /metrics page (sample lines, suffixes included).
std::set<std::string> ScrapeNames(int port) {
  std::set<std::string> names;
  auto r = http::Fetch("GET", "127.0.0.1", port, "/metrics");
  if (!r.ok() || r->status != 200) return names;
  std::istringstream lines(r->body);
  for (std::string line; std::getline(lines, line);) {
    if (line.empty() || line[0] == '#') continue;
    names.insert(line.substr(0, line.find_first_of("{ ")));
  }
  return names;
}

// Identifiers in a PromQL expression that name boxwatch or process metrics
// or recording rules.
std::set<std::string> MetricsIn(const std::string& expr) {
  static const std::regex kName("(boxwatch[_:][a-zA-Z0-9_:]*|process_[a-z_]+)");
  std::set<std::string> out;
  for (auto it = std::sregex_iterator(expr.begin(), expr.end(), kName); it != std::sregex_iterator(); ++it)
    out.insert((*it)[1]);
  return out;
}

void CollectExprs(const google::protobuf::Value& v, std::vector<std::string>* out) {
  if (v.has_struct_value()) {
    for (const auto& [k, child] : v.struct_value().fields()) {
      if (k == "expr" && child.has_string_value()) out->push_back(child.string_value());
      CollectExprs(child, out);
    }
  } else if (v.has_list_value()) {
    for (const auto& child : v.list_value().values()) CollectExprs(child, out);
  }
}

class Prometheus {
 public:
  // Starts Prometheus on a free loopback port scraping `targets` (job ->
  // host:port) every second, with the repository's rule files loaded.
  static std::unique_ptr<Prometheus> Start(const std::string& dir, const std::map<std::string, std::string>& targets,
                                           std::string* error) {
    auto p = std::make_unique<Prometheus>();
    p->port_ = DeliveryHarness::FreePort();
    fs::create_directories(dir + "/data");
    std::ofstream cfg(dir + "/prometheus.yml");
    cfg << "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n";
    cfg << "rule_files:\n  - " << BOXWATCH_SOURCE_DIR << "/monitoring/prometheus/rules/*.yml\n";
    cfg << "scrape_configs:\n";
    for (const auto& [job, target] : targets)
      cfg << "  - job_name: " << job << "\n    static_configs:\n      - targets: ['" << target << "']\n";
    cfg.close();
    if (!fs::exists("/usr/bin/prometheus")) {
      *error = "/usr/bin/prometheus is missing: scripts/setup installs Debian's prometheus package";
      return nullptr;
    }
    p->child_ = std::make_unique<Child>(std::vector<std::string>{
        "/usr/bin/prometheus", "--config.file=" + dir + "/prometheus.yml", "--storage.tsdb.path=" + dir + "/data",
        "--web.listen-address=127.0.0.1:" + std::to_string(p->port_), "--log.level=warn"});
    const auto deadline = std::chrono::steady_clock::now() + seconds(60);
    while (std::chrono::steady_clock::now() < deadline) {
      auto r = http::Fetch("GET", "127.0.0.1", p->port_, "/-/ready");
      if (r.ok() && r->status == 200) return p;
      std::this_thread::sleep_for(milliseconds(200));  // waiting for a server to listen
    }
    *error = "Prometheus did not become ready within 60 s";
    return nullptr;
  }

  // Instant query; the result vector's (labels, value) pairs.
  std::vector<std::pair<std::map<std::string, std::string>, double>> Query(const std::string& promql) {
    std::string encoded;
    for (unsigned char c : promql) {
      if (std::isalnum(c) || c == '_' || c == '.' || c == '-') {
        encoded.push_back(static_cast<char>(c));
      } else {
        char b[4];
        std::snprintf(b, sizeof b, "%%%02X", c);
        encoded += b;
      }
    }
    std::vector<std::pair<std::map<std::string, std::string>, double>> out;
    auto r = http::Fetch("GET", "127.0.0.1", port_, "/api/v1/query?query=" + encoded);
    if (!r.ok() || r->status != 200) {
      ADD_FAILURE() << "query " << promql << " failed: " << (r.ok() ? r->body : r.error().message);
      return out;
    }
    google::protobuf::Struct doc;
    if (!google::protobuf::util::JsonStringToMessage(r->body, &doc).ok()) return out;
    const auto& result = doc.fields().at("data").struct_value().fields().at("result").list_value();
    for (const auto& item : result.values()) {
      std::map<std::string, std::string> labels;
      for (const auto& [k, v] : item.struct_value().fields().at("metric").struct_value().fields())
        labels[k] = v.string_value();
      const auto& value = item.struct_value().fields().at("value").list_value();
      out.push_back({labels, std::stod(value.values(1).string_value())});
    }
    return out;
  }

  double Sum(const std::string& promql) {
    double total = 0;
    for (const auto& [labels, v] : Query(promql)) total += v;
    return total;
  }

  // Waits until `promql` returns at least one series, whatever its value.
  bool WaitForSeries(const std::string& promql, seconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
      if (!Query(promql).empty()) return true;
      std::this_thread::sleep_for(milliseconds(500));  // waiting for scrapes
    }
    return false;
  }

  // Waits until `promql` has at least one series with a value > `above`.
  bool WaitFor(const std::string& promql, double above, seconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
      for (const auto& [labels, v] : Query(promql))
        if (v > above) return true;
      std::this_thread::sleep_for(milliseconds(500));  // waiting for scrapes
    }
    return false;
  }

 private:
  int port_ = 0;
  std::unique_ptr<Child> child_;
};

TEST(Observability, PrometheusScrapesWorkerDispatcherAndHubAndTheKeySeriesMove) {
  auto h = DeliveryHarness::Create(2, {{"hub-o", {"mekong", "gulf", "europe", "south-asia", "central-asia",
                                                  "caucasus", "east-asia", "southeast-asia", "latin-america"}}});
  ASSERT_TRUE(h.ok()) << h.error().message;
  auto& w = (*h)->workers();
  auto profile = operators::ParseProfile(operators::DefaultProfileYaml(), operators::kDefaultProfileSource);
  ASSERT_TRUE(profile.ok());
  // The traffic, with undecodable and invalid records among it, is on the
  // broker before the worker starts: the merge then sees every input's
  // backlog and processes the days of simulated history in event-time order
  // (a burst of history produced to a live, idle worker would be late by
  // design).
  sim::TrafficOptions traffic{.seed = 11, .containers = 150, .gps_per_container = 12, .bad_records = true};
  ASSERT_TRUE(w.Produce(sim::GenerateTraffic(traffic, *profile).records).ok());

  int port = 0;
  auto dispatcher = (*h)->StartDispatcher(0, &port);
  ASSERT_TRUE(dispatcher.ok()) << dispatcher.error().message;
  const int dispatcher_metrics = static_cast<int>(JsonField((*dispatcher)->last_line(), "metrics_port"));
  int http_port = 0;
  auto hub = (*h)->StartHub("hub-o", "mekong,gulf,europe,south-asia,central-asia,caucasus,east-asia,southeast-asia,latin-america",
                            port, &http_port);
  ASSERT_TRUE(hub.ok()) << hub.error().message;
  const int hub_metrics = static_cast<int>(JsonField((*hub)->last_line(), "metrics_port"));
  const int worker_metrics = DeliveryHarness::FreePort();  // scraped from the start, up once the worker runs
  Child ingest({BOXWATCH_BINARY, "ingest", "--bootstrap", w.bootstrap(), "--topic-prefix", w.prefix(),
                "--metrics-listen", "127.0.0.1:0", "--instance-id", "obs-ingest"});
  ASSERT_TRUE(ingest.WaitForLine("{\"event\":\"started\"", seconds(60))) << "boxwatch ingest did not start";
  const int ingest_metrics = static_cast<int>(JsonField(ingest.last_line(), "metrics_port"));

  std::string error;
  auto prometheus = Prometheus::Start(w.dir() + "/prometheus",
                                      {{"boxwatch-worker", "127.0.0.1:" + std::to_string(worker_metrics)},
                                       {"boxwatch-dispatcher", "127.0.0.1:" + std::to_string(dispatcher_metrics)},
                                       {"boxwatch-hub", "127.0.0.1:" + std::to_string(hub_metrics)}},
                                      &error);
  ASSERT_NE(prometheus, nullptr) << error;

  // Prometheus holds the zero baseline of the delivery counters
  // (pre-initialised) before the worker runs, so the test sees each counter
  // move from what it scraped at rest.
  ASSERT_TRUE(prometheus->WaitFor("sum(up{job=~\"boxwatch-(dispatcher|hub)\"})", 1.5, seconds(60)));
  for (const std::string series : {"boxwatch_hub_alerts_stored_total", "boxwatch_dispatcher_alerts_sent_total"})
    ASSERT_TRUE(prometheus->WaitForSeries(series, seconds(60))) << "Prometheus never scraped " << series;
  EXPECT_EQ(prometheus->Sum("sum(boxwatch_hub_alerts_stored_total)"), 0);
  EXPECT_EQ(prometheus->Sum("sum(boxwatch_dispatcher_alerts_sent_total)"), 0);
  EXPECT_EQ(prometheus->Sum("up{job=\"boxwatch-worker\"}"), 0) << "something else answers on the worker's port";

  auto worker = w.StartWorker("ow-1", {{"idle_flush_ms", "1000"},
                                       {"metrics_listen", "127.0.0.1:" + std::to_string(worker_metrics)}});
  ASSERT_TRUE(worker.ok()) << worker.error().message;
  ASSERT_EQ(static_cast<int>(JsonField((*worker)->last_line(), "metrics_port")), worker_metrics);

  auto why = [&] {  // what the worker did, for a failure message
    std::ostringstream o;
    for (const std::string q : {"sum(boxwatch_worker_records_in_total)", "sum(boxwatch_worker_alerts_total)",
                                "sum(boxwatch_worker_dead_letters_total)", "sum(boxwatch_worker_transactions_total)"})
      o << " " << q << "=" << prometheus->Sum(q);
    for (const std::string q : {"boxwatch_worker_dead_letters_total > 0", "boxwatch_worker_consumer_lag_records > 0"})
      for (const auto& [labels, v] : prometheus->Query(q)) {
        o << "\n  " << q.substr(0, q.find(' '));
        for (const auto& [k, l] : labels)
          if (k != "__name__" && k != "job" && k != "instance") o << " " << k << "=" << l;
        o << ": " << v;
      }
    return o.str();
  };
  EXPECT_TRUE(prometheus->WaitFor("sum(up{job=~\"boxwatch-.*\"})", 2.5, seconds(60)));
  EXPECT_TRUE(prometheus->WaitFor("sum(boxwatch_worker_records_in_total)", 0, seconds(60))) << why();
  EXPECT_TRUE(prometheus->WaitFor("sum(boxwatch_hub_alerts_stored_total)", 0, seconds(120))) << why();
  EXPECT_TRUE(prometheus->WaitFor("sum(boxwatch_dispatcher_alerts_sent_total)", 0, seconds(60))) << why();
  // The bad records hold exactly one deliberately late GPS fix. Its
  // container's events may come after the first alert reached the hub:
  // counted and scraped first, then exactly one.
  EXPECT_TRUE(prometheus->WaitFor("sum(boxwatch_worker_dead_letters_total{reason=\"late\"})", 0, seconds(60))) << why();
  EXPECT_EQ(prometheus->Sum("sum(boxwatch_worker_dead_letters_total{reason=\"late\"})"), 1) << why();
  // librdkafka's statistics arrive every statistics interval.
  EXPECT_TRUE(prometheus->WaitForSeries("boxwatch_kafka_broker_rtt_seconds{job=\"boxwatch-worker\"}", seconds(60)));

  // The key series exist with the labels dashboards and alerts use.
  for (const std::string q :
       {"boxwatch_worker_records_in_total{topic=\"gps\",partition=\"0\"}", "boxwatch_worker_consumer_lag_records",
        "boxwatch_worker_alerts_total{priority=\"HIGH\"}", "boxwatch_worker_dead_letters_total{reason=\"undecodable\"}",
        "boxwatch_worker_transaction_commit_seconds_count", "boxwatch_worker_ingest_to_alert_seconds_count",
        "boxwatch_worker_containers_tracked", "boxwatch_worker_state_size_bytes", "boxwatch_kafka_tx_bytes_total",
        "boxwatch_worker_state_writes_total{part=\"movement\"}", "boxwatch_worker_state_write_bytes_total{part=\"declaration\"}",
        "boxwatch_dispatcher_subscribers{hub=\"hub-o\"}", "boxwatch_dispatcher_alerts_acked_total{hub=\"hub-o\"}",
        "boxwatch_hub_connected", "boxwatch_hub_receive_latency_seconds_count", "process_resident_memory_bytes"}) {
    // Alerts of quiet containers come with the idle flush, a scrape or two later.
    EXPECT_TRUE(prometheus->WaitForSeries(q, seconds(30))) << "no series " << q << why();
  }
  EXPECT_TRUE(prometheus->WaitFor("sum(boxwatch_worker_dead_letters_total{reason!=\"late\"})", 0, seconds(60)))
      << "the bad records should be counted by reason" << why();
  EXPECT_EQ(prometheus->Sum("boxwatch_hub_connected"), 1);
  EXPECT_EQ(prometheus->Sum("boxwatch_dispatcher_subscribers{hub=\"hub-o\"}"), 1);
  EXPECT_GT(prometheus->Sum("sum(boxwatch_worker_transactions_total)"), 0);
  // Containers are counted by the tasks (the gauges follow once a second).
  EXPECT_TRUE(prometheus->WaitFor("sum(boxwatch_worker_containers_tracked)", 0, seconds(30))) << why();
  EXPECT_GT(prometheus->Sum("sum(boxwatch_worker_ingest_to_alert_seconds_count)"), 0);

  // Health endpoints: alive and ready once running.
  for (int p : {worker_metrics, dispatcher_metrics, hub_metrics, ingest_metrics}) {
    auto health = http::Fetch("GET", "127.0.0.1", p, "/healthz");
    ASSERT_TRUE(health.ok());
    EXPECT_EQ(health->status, 200);
    auto ready = http::Fetch("GET", "127.0.0.1", p, "/readyz");
    ASSERT_TRUE(ready.ok());
    EXPECT_EQ(ready->status, 200) << "port " << p << ": " << ready->body;
  }

  // Every metric the dashboard and the rule files use is on a live page.
  std::set<std::string> live;
  for (int p : {worker_metrics, dispatcher_metrics, hub_metrics, ingest_metrics}) {
    auto names = ScrapeNames(p);
    live.insert(names.begin(), names.end());
  }
  std::set<std::string> recorded;  // recording rules defined in the repository
  std::vector<std::string> rule_exprs;
  const std::string rules_dir = std::string(BOXWATCH_SOURCE_DIR) + "/monitoring/prometheus/rules";
  ASSERT_TRUE(fs::exists(rules_dir)) << rules_dir;
  for (const auto& f : fs::directory_iterator(rules_dir)) {
    const std::string text = ReadText(f.path());
    static const std::regex kRecord("record:\\s*([a-zA-Z0-9_:]+)");
    for (auto it = std::sregex_iterator(text.begin(), text.end(), kRecord); it != std::sregex_iterator(); ++it)
      recorded.insert((*it)[1]);
    rule_exprs.push_back(text);
  }
  google::protobuf::Value dashboard;
  const std::string dashboard_path = std::string(BOXWATCH_SOURCE_DIR) + "/monitoring/grafana/boxwatch.json";
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(ReadText(dashboard_path), &dashboard).ok())
      << dashboard_path << " is not JSON";
  std::vector<std::string> exprs;
  CollectExprs(dashboard, &exprs);
  ASSERT_GT(exprs.size(), 10u) << "the dashboard has too few queries";
  size_t checked = 0;
  auto check = [&](const std::string& where, const std::string& text) {
    for (const auto& name : MetricsIn(text)) {
      ++checked;
      if (name.find(':') != std::string::npos) {
        EXPECT_TRUE(recorded.count(name)) << where << " uses " << name << ", which no recording rule defines";
      } else {
        EXPECT_TRUE(live.count(name)) << where << " uses " << name << ", which no live /metrics page shows";
      }
    }
  };
  for (const auto& e : exprs) check("the dashboard", e);
  for (const auto& text : rule_exprs) check("a rule file", text);
  EXPECT_GT(checked, 20u);
  // Recording rules evaluate on the live data.
  for (const auto& r : recorded) {
    if (r.find("records_in") != std::string::npos) {
      EXPECT_TRUE(prometheus->WaitForSeries(r, seconds(30))) << r << " never evaluated";
    }
  }

  (*worker)->Kill(SIGTERM);
}

}  // namespace
}  // namespace boxwatch::testing
