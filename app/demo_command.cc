// `boxwatch demo`: the whole pipeline in one process on an embedded broker
// (librdkafka's in-process cluster): the topic set, a worker, a dispatcher,
// two regional hubs and the simulator producing at a steady rate. Prints a
// live, colour-coded, prioritised alert feed with one-line explanations and
// a throughput line, serves the hubs' HTTP APIs and every component's
// metrics on the localhost ports it prints, stops on Ctrl-C or after
// --duration, and ends with the evaluation table (precision and recall
// against the simulation's labels). Plaintext gRPC on loopback: a demo.

#include <CLI/CLI.hpp>
#include <prometheus/registry.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <thread>

#include "app/commands.h"
#include "ingest/ingestor.h"
#include "sim/upstream.h"
#include "core/http.h"
#include "core/log.h"
#include "core/types.h"
#include "delivery/accounts.h"
#include "delivery/dispatcher.h"
#include "delivery/hub.h"
#include "delivery/probes.h"
#include "monitoring/metrics.h"
#include "operators/default_profile.h"
#include "pipeline/embedded_broker.h"
#include "pipeline/worker.h"
#include "sim/evaluation.h"
#include "sim/produce.h"

namespace boxwatch::app {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

std::atomic<bool> g_stop{false};

struct DemoArgs {
  int duration_s = 0;  // 0: until the simulation is sent and scored
  bool serve = false;  // then keep running (control rooms up) until Ctrl-C
  int partitions = 4;
  double rate = 3000;  // records per second
  int containers = 5000;
  unsigned seed = 1;
  std::string profile;  // empty: the built-in default profile
  bool show_low = false;
  std::string format = "native";  // or cuscar-n42: manifests and portal scans through boxwatch ingest
};

struct HubSpec {
  std::string id;
  std::vector<std::string> regions;
};

const char* Colour(v1::Priority p, bool tty) {
  if (!tty) return "";
  switch (p) {
    case v1::PRIORITY_CRITICAL: return "\033[1;97;41m";
    case v1::PRIORITY_HIGH: return "\033[1;31m";
    case v1::PRIORITY_MEDIUM: return "\033[33m";
    default: return "\033[2m";
  }
}

std::string Clip(std::string s, size_t n) {
  if (s.size() > n) s = s.substr(0, n - 1) + "~";
  return s;
}

int RunDemo(const DemoArgs& a) {
  const bool tty = ::isatty(STDOUT_FILENO);
  const char* reset = tty ? "\033[0m" : "";
  const char* dim = tty ? "\033[2m" : "";
  auto profile = a.profile.empty()
                     ? operators::ParseProfile(operators::DefaultProfileYaml(), operators::kDefaultProfileSource)
                     : operators::LoadProfile(a.profile);
  if (!profile.ok()) {
    std::fprintf(stderr, "boxwatch demo: %s\n", profile.error().message.c_str());
    return 2;
  }
  if (a.partitions < 1 || a.containers < 1 || a.rate <= 0) {
    std::fprintf(stderr, "boxwatch demo: --partitions, --containers and --rate must be positive\n");
    return 2;
  }
  if (!log::Enabled(log::Level::kDebug)) log::SetThreshold(log::Level::kWarn);  // the feed is the output

  // 1. Broker and topics.
  auto broker = pipeline::EmbeddedBroker::Start(1);
  if (!broker.ok()) {
    std::fprintf(stderr, "boxwatch demo: embedded broker: %s\n", broker.error().message.c_str());
    return 1;
  }
  const std::string bootstrap = (*broker)->bootstrap();
  const pipeline::TopicNames names;
  if (Status s = (*broker)->CreateTopics(pipeline::TopicSetSpecs({.partitions = a.partitions})); !s.ok()) {
    std::fprintf(stderr, "boxwatch demo: topics: %s\n", s.message().c_str());
    return 1;
  }
  char tmpl[] = "/tmp/boxwatch-demo-XXXXXX";
  if (::mkdtemp(tmpl) == nullptr) {
    std::fprintf(stderr, "boxwatch demo: cannot make a scratch directory\n");
    return 1;
  }
  const std::string dir = tmpl;
  struct Cleanup {
    std::string dir;
    ~Cleanup() {
      std::error_code ec;
      std::filesystem::remove_all(dir, ec);
    }
  } cleanup{dir};

  // 2. Simulation (ground truth kept for the closing evaluation).
  sim::TrafficOptions to{.seed = a.seed, .containers = a.containers, .outcome_rate = 0.3, .field = true};
  const sim::Traffic traffic = sim::GenerateTrafficEndingBefore(&to, *profile, NowMs());
  std::map<std::string, sim::Scenario> label_of(traffic.labels.begin(), traffic.labels.end());
  // With --format cuscar-n42 the manifests and portal scans go out as
  // UN/EDIFACT CUSCAR and ANSI N42.42, and boxwatch ingest converts them.
  const bool via_ingest = a.format == "cuscar-n42";
  const sim::Traffic sent_traffic = via_ingest ? sim::InUpstreamFormats(traffic) : traffic;

  // 3. Worker.
  pipeline::WorkerConfig wc;
  wc.bootstrap = bootstrap;
  wc.instance_id = "demo-worker-1";
  wc.state_dir = dir + "/worker";
  wc.idle_flush_ms = 2000;
  wc.idle_wait_ms = 500;
  auto worker_registry = std::make_shared<prometheus::Registry>();
  monitoring::AddProcessCollector(*worker_registry);
  auto worker = pipeline::Worker::Create(wc, {}, worker_registry);
  if (!worker.ok()) {
    std::fprintf(stderr, "boxwatch demo: worker: %s\n", worker.error().message.c_str());
    return 1;
  }
  pipeline::Worker* w = worker->get();
  auto worker_metrics = monitoring::Endpoint::Start("127.0.0.1:0", worker_registry, [w] { return w->NotReady(); });

  // 4. Dispatcher and two hubs (one per region group).
  const std::vector<HubSpec> hub_specs = {{"hub-mekong", {"mekong", "southeast-asia"}},
                                          {"hub-central-asia", {"central-asia", "caucasus"}}};
  {
    std::ofstream hubs(dir + "/hubs.yaml");
    hubs << "hubs:\n";
    for (const auto& h : hub_specs) {
      hubs << "  - id: " << h.id << "\n    regions: [";
      for (size_t i = 0; i < h.regions.size(); ++i) hubs << (i ? ", " : "") << h.regions[i];
      hubs << "]\n";
    }
  }
  delivery::DispatcherOptions dopt;
  dopt.bootstrap = bootstrap;
  dopt.listen = "127.0.0.1:0";
  dopt.hubs_file = dir + "/hubs.yaml";
  dopt.insecure = true;
  auto dispatcher_registry = std::make_shared<prometheus::Registry>();
  auto dispatcher = delivery::Dispatcher::Start(dopt, dispatcher_registry);
  if (!dispatcher.ok()) {
    std::fprintf(stderr, "boxwatch demo: dispatcher: %s\n", dispatcher.error().message.c_str());
    return 1;
  }
  delivery::Dispatcher* d = dispatcher->get();
  auto dispatcher_metrics =
      monitoring::Endpoint::Start("127.0.0.1:0", dispatcher_registry, [d] { return d->NotReady(); });
  // The control rooms' demo logins: one officer and one supervisor with a
  // password made for this run, and an API token for the status read at the
  // end. Plain HTTP on loopback, as only a demo may.
  const std::string demo_password = "demo-" + delivery::RandomHex(6);
  std::string demo_token;
  {
    delivery::Accounts accounts;
    Status s = accounts.SetUser("officer", delivery::Role::kOfficer, {"*"}, demo_password);
    if (s.ok()) s = accounts.SetUser("supervisor", delivery::Role::kSupervisor, {"*"}, demo_password);
    auto token = accounts.AddToken("demo", delivery::Role::kOfficer, {"*"});
    if (s.ok() && token.ok()) s = accounts.Save(dir + "/hub-accounts");
    if (!s.ok() || !token.ok()) {
      std::fprintf(stderr, "boxwatch demo: accounts: %s\n", (!s.ok() ? s.message() : token.error().message).c_str());
      return 1;
    }
    demo_token = *token;
  }
  std::vector<std::unique_ptr<delivery::Hub>> hubs;
  std::vector<std::unique_ptr<monitoring::Endpoint>> hub_metrics;
  for (const auto& h : hub_specs) {
    delivery::HubOptions ho;
    ho.hub_id = h.id;
    ho.dispatcher = "127.0.0.1:" + std::to_string(d->port());
    ho.regions = h.regions;
    ho.state_dir = dir + "/" + h.id;
    ho.http_listen = "127.0.0.1:0";
    ho.http_plaintext = true;
    ho.accounts_file = dir + "/hub-accounts";
    ho.insecure = true;
    auto registry = std::make_shared<prometheus::Registry>();
    auto hub = delivery::Hub::Start(ho, registry);
    if (!hub.ok()) {
      std::fprintf(stderr, "boxwatch demo: %s: %s\n", h.id.c_str(), hub.error().message.c_str());
      return 1;
    }
    delivery::Hub* hp = hub->get();
    auto endpoint = monitoring::Endpoint::Start("127.0.0.1:0", registry, [hp] { return hp->NotReady(); });
    if (endpoint.ok()) hub_metrics.push_back(std::move(*endpoint));
    hubs.push_back(std::move(*hub));
  }

  std::printf("boxwatch demo: embedded Kafka at %s, %d partitions; %d containers, %zu records at %.0f/s (seed %u)\n",
              bootstrap.c_str(), a.partitions, a.containers, traffic.records.size(), a.rate, a.seed);
  std::printf("  worker metrics      http://127.0.0.1:%d/metrics\n", worker_metrics.ok() ? (*worker_metrics)->port() : 0);
  std::printf("  dispatcher gRPC     127.0.0.1:%d (plaintext, demo only)   metrics http://127.0.0.1:%d/metrics\n",
              d->port(), dispatcher_metrics.ok() ? (*dispatcher_metrics)->port() : 0);
  for (size_t i = 0; i < hubs.size(); ++i) {
    std::string regions;
    for (const auto& r : hub_specs[i].regions) regions += (regions.empty() ? "" : ",") + r;
    std::printf("  %-18s  control room http://127.0.0.1:%d/  (%s)  metrics http://127.0.0.1:%d/metrics\n",
                hub_specs[i].id.c_str(), hubs[i]->http_port(), regions.c_str(),
                i < hub_metrics.size() ? hub_metrics[i]->port() : 0);
  }
  std::printf("  control-room login  officer or supervisor, password %s (this run only)\n", demo_password.c_str());
  std::printf("Ctrl-C stops; the evaluation follows.\n\n");
  std::fflush(stdout);

  std::signal(SIGINT, [](int) { g_stop = true; });
  std::signal(SIGTERM, [](int) { g_stop = true; });
  std::atomic<bool> stop_all{false};
  std::thread worker_thread([&] {
    Status s = w->Run(stop_all);
    if (!s.ok()) std::fprintf(stderr, "boxwatch demo: worker stopped: %s\n", s.message().c_str());
  });
  std::vector<std::thread> hub_threads;
  for (auto& h : hubs) hub_threads.emplace_back([&stop_all, hp = h.get()] { (void)hp->Run(stop_all); });
  std::unique_ptr<ingest::Ingestor> ingestor;
  std::thread ingest_thread;
  if (via_ingest) {
    auto ingest_registry = std::make_shared<prometheus::Registry>();
    auto in = ingest::Ingestor::Create({.bootstrap = bootstrap, .instance_id = "demo-ingest"}, *ingest_registry);
    if (!in.ok()) {
      std::fprintf(stderr, "boxwatch demo: ingest: %s\n", in.error().message.c_str());
      stop_all = true;
    } else {
      ingestor = std::move(in).value();
      ingest_thread = std::thread([&stop_all, ip = ingestor.get(), ingest_registry] {
        Status s = ip->Run(stop_all);
        if (!s.ok()) std::fprintf(stderr, "boxwatch demo: ingest stopped: %s\n", s.message().c_str());
      });
    }
  }

  // 5. The simulator, at a steady rate.
  std::atomic<size_t> sent{0};
  std::atomic<bool> sending_done{false};
  std::atomic<bool> stop_sending{false};
  std::thread producer_thread([&] {
    auto producer = pipeline::KafkaProducer::Create({.bootstrap = bootstrap});
    if (!producer.ok()) {
      std::fprintf(stderr, "boxwatch demo: producer: %s\n", producer.error().message.c_str());
      sending_done = true;
      return;
    }
    sim::ProduceOptions po{.rate = a.rate, .stop = &stop_sending};
    po.progress = [&](size_t done, size_t) { sent = done; };
    auto n = sim::ProduceTraffic(**producer, names, sent_traffic.records, po);
    if (n.ok()) sent = *n;
    sending_done = true;
  });

  // 6. The live feed: new alerts, most urgent first, once a second.
  auto reader = pipeline::KafkaConsumer::Create(
      {.bootstrap = bootstrap, .group_id = "boxwatch-demo-feed", .read_committed = true});
  if (!reader.ok()) {
    std::fprintf(stderr, "boxwatch demo: feed reader: %s\n", reader.error().message.c_str());
    stop_all = true;
  } else {
    std::vector<pipeline::TopicPartitionOffset> all;
    for (int p = 0; p < a.partitions; ++p) all.push_back({names.Name(pipeline::TopicRole::kAlerts), p, RD_KAFKA_OFFSET_BEGINNING});
    (void)(*reader)->Assign(all);
  }
  std::vector<v1::Alert> seen;
  std::map<v1::Priority, size_t> by_priority;
  const auto started = Clock::now();
  auto last_status = started;
  auto drained_since = Clock::time_point{};
  while (!g_stop && !stop_all && reader.ok()) {
    std::vector<v1::Alert> batch;
    const auto tick = Clock::now() + 1s;
    while (Clock::now() < tick) {
      auto m = (*reader)->Poll(100ms);
      if (!m.ok() || !*m) continue;
      v1::Alert al;
      if (al.ParseFromArray((*m)->value().data(), static_cast<int>((*m)->value().size()))) batch.push_back(std::move(al));
    }
    std::stable_sort(batch.begin(), batch.end(), [](const auto& x, const auto& y) { return x.priority() > y.priority(); });
    for (const auto& al : batch) {
      ++by_priority[al.priority()];
      seen.push_back(al);
      if (al.priority() < v1::PRIORITY_MEDIUM && !a.show_low) continue;
      const auto it = label_of.find(al.container_number());
      const std::string truth = it == label_of.end() ? "?" : sim::ScenarioName(it->second);
      std::string regions;
      for (const auto& r : al.regions()) regions += (regions.empty() ? "" : ",") + r;
      const std::string why = al.indicators_size() ? al.indicators(0).summary() : "";
      std::printf("%s%-8s%s %s %5.0f  %-28s %s%s  [%s]%s\n", Colour(al.priority(), tty),
                  delivery::PriorityName(al.priority()), reset, al.container_number().c_str(), al.score(),
                  Clip(regions, 28).c_str(), Clip(why, 70).c_str(), dim, truth.c_str(), reset);
    }
    const double secs = std::chrono::duration<double>(Clock::now() - started).count();
    if (Clock::now() - last_status >= 5s) {
      last_status = Clock::now();
      const auto& st = w->stats();
      std::printf("%s-- %4.0f s | sent %zu records (%.0f/s) | worker: %llu processed, %llu dead letters | alerts: "
                  "%zu CRITICAL, %zu HIGH, %zu MEDIUM, %zu LOW%s\n",
                  dim, secs, sent.load(), secs > 0 ? sent.load() / secs : 0.0,
                  static_cast<unsigned long long>(st.processed), static_cast<unsigned long long>(st.dead_letters),
                  by_priority[v1::PRIORITY_CRITICAL], by_priority[v1::PRIORITY_HIGH], by_priority[v1::PRIORITY_MEDIUM],
                  by_priority[v1::PRIORITY_LOW], reset);
    }
    std::fflush(stdout);
    if (a.duration_s > 0 && secs >= a.duration_s) break;
    // Everything sent: give the worker a few quiet seconds to score the rest.
    if (sending_done && batch.empty()) {
      if (drained_since == Clock::time_point{}) drained_since = Clock::now();
      if (Clock::now() - drained_since > 6s) break;
    } else {
      drained_since = {};
    }
  }

  if (a.serve && !g_stop) {
    std::printf("\nThe simulation is sent and scored; the control rooms stay up until Ctrl-C, then the evaluation "
                "follows.\n");
    std::fflush(stdout);
    while (!g_stop) std::this_thread::sleep_for(200ms);
  }

  // 7. Stop and evaluate what was sent.
  stop_sending = true;
  producer_thread.join();
  stop_all = true;
  worker_thread.join();
  if (ingest_thread.joinable()) ingest_thread.join();
  for (auto& t : hub_threads) t.join();
  const size_t n_sent = sent.load();
  std::set<std::string> complete;  // containers whose every record went out
  {
    std::map<std::string, size_t> last_index;
    for (size_t i = 0; i < traffic.records.size(); ++i) last_index[traffic.records[i].key] = i;
    for (const auto& [c, i] : last_index)
      if (i < n_sent) complete.insert(c);
  }
  sim::Labels labels;
  for (const auto& l : traffic.labels)
    if (complete.count(l.first)) labels.push_back(l);
  std::vector<v1::Alert> scored;  // alerts of containers not fully sent are left out with them
  for (const auto& al : seen)
    if (complete.count(al.container_number())) scored.push_back(al);
  const auto eval = sim::Evaluate(labels, scored);
  std::printf("\n%zu of %zu records sent; %zu containers complete, with %zu alerts. Evaluation of those against "
              "the simulation's labels:\n\n%s",
              n_sent, traffic.records.size(), labels.size(), scored.size(), eval.Table().c_str());
  for (size_t i = 0; i < hubs.size(); ++i) {
    auto r = http::Fetch("GET", "127.0.0.1", hubs[i]->http_port(), "/api/status",
                         {.headers = {{"Authorization", "Bearer " + demo_token}}});
    if (r.ok()) std::printf("%s: %s\n", hub_specs[i].id.c_str(), r->body.c_str());
  }
  d->Shutdown();
  return 0;
}

}  // namespace

void RegisterDemoCommand(CLI::App& app) {
  auto args = std::make_shared<DemoArgs>();
  CLI::App* demo = app.add_subcommand(
      "demo", "Run the whole pipeline on an embedded Kafka cluster: simulator, worker, dispatcher, two hubs; live "
              "alert feed, then precision and recall");
  demo->add_flag("--serve", args->serve,
                 "After the simulation is sent and scored, keep everything running (the control rooms included) "
                 "until Ctrl-C");
  demo->add_option("--duration", args->duration_s, "Seconds to run; 0 runs until the simulation is sent and scored")
      ->capture_default_str();
  demo->add_option("--partitions", args->partitions, "Partitions per co-partitioned topic")->capture_default_str();
  demo->add_option("--rate", args->rate, "Simulated records per second")->capture_default_str();
  demo->add_option("--containers", args->containers, "Containers to simulate")->capture_default_str();
  demo->add_option("--seed", args->seed, "Seed of the simulation")->capture_default_str();
  demo->add_option("--profile", args->profile, "Risk profile YAML (default: the built-in default profile)");
  demo->add_option("--format", args->format,
                   "native, or cuscar-n42: manifests as UN/EDIFACT CUSCAR and portal scans as ANSI N42.42, "
                   "converted by boxwatch ingest")
      ->check(CLI::IsMember({"native", "cuscar-n42"}))
      ->capture_default_str();
  demo->add_flag("--show-low", args->show_low, "Print LOW alerts in the feed too");
  demo->callback([args] { SetExitCode(RunDemo(*args)); });
}

}  // namespace boxwatch::app
