// `boxwatch demo`: the whole path of the foundation on an embedded broker.
// Starts librdkafka's in-process cluster, creates and checks the topic set,
// produces typed events (protobuf and canonical JSON, plus a few malformed
// records) at a steady rate, consumes and decodes them, sends what cannot be
// processed to the dead-letter topic with its reason, and reports what it did.
// The simulator and the full pipeline replace the event source and the
// consumer as they arrive (see docs/).

#include <CLI/CLI.hpp>

#include <csignal>
#include <cstdio>
#include <map>
#include <random>

#include "app/commands.h"
#include "core/log.h"
#include "operators/decode.h"
#include "pipeline/embedded_broker.h"
#include "pipeline/kafka_client.h"
#include "pipeline/topics.h"

namespace boxwatch::app {
namespace {

using namespace std::chrono_literals;
using pipeline::TopicRole;

volatile std::sig_atomic_t g_interrupted = 0;

struct DemoArgs {
  int duration_s = 20;
  int partitions = 4;
  int rate = 300;        // events per second
  int containers = 60;
  unsigned seed = 42;
};

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// A container number with a correct ISO 6346 check digit.
std::string MakeContainerNumber(const char* owner, int serial) {
  char first[32];
  std::snprintf(first, sizeof first, "%.3sU%06d", owner, serial % 1000000);
  return std::string(first) + std::to_string(ContainerNumber::CheckDigit(first));
}

// One produced record and what the demo expects the decoder to say about it.
struct DemoRecord {
  TopicRole role;
  std::string key;
  std::string value;
  operators::Encoding encoding = operators::Encoding::kProtobuf;
  int64_t timestamp_ms = 0;
};

// Events for containers moving Laem Chabang (THLCH) -> Thanaleng (LATHL) ->
// Vientiane (LAVTE): the corridor of the default profile.
class DemoSource {
 public:
  DemoSource(int containers, unsigned seed) : rng_(seed) {
    static const char* kOwners[] = {"MSK", "CSQ", "MSC", "CMA", "HLX", "ONE", "EGH", "OOL"};
    for (int i = 0; i < containers; ++i) {
      boxes_.push_back({MakeContainerNumber(kOwners[i % 8], 100000 + i * 37), 0});
    }
  }

  DemoRecord Next() {
    ++count_;
    Box& box = boxes_[rng_() % boxes_.size()];
    const int64_t now = NowMs();
    if (count_ % 97 == 0) return {TopicRole::kGps, box.number, "\x08\xff\xff garbage", {}, now};
    if (count_ % 89 == 0) {
      v1::GpsEvent e = Gps(box, now);
      std::string bad = box.number;
      bad.back() = bad.back() == '9' ? '0' : static_cast<char>(bad.back() + 1);
      e.set_container_number(bad);
      return {TopicRole::kGps, bad, e.SerializeAsString(), {}, now};
    }
    if (box.steps == 0) {
      ++box.steps;
      const auto enc = count_ % 3 == 0 ? operators::Encoding::kJson : operators::Encoding::kProtobuf;
      return {TopicRole::kManifests, box.number, operators::Encode(Manifest(box, now), enc), enc, now};
    }
    ++box.steps;
    if (box.steps % 25 == 2) return {TopicRole::kScans, box.number, Scan(box, now).SerializeAsString(), {}, now};
    return {TopicRole::kGps, box.number, Gps(box, now).SerializeAsString(), {}, now};
  }

 private:
  struct Box {
    std::string number;
    int steps;
  };

  v1::Manifest Manifest(const Box& box, int64_t now) {
    v1::Manifest m;
    m.set_container_number(box.number);
    m.set_version(1);
    m.set_bill_of_lading("BL" + box.number.substr(4));
    m.mutable_shipper()->set_name("Shanghai Ceramics Export Ltd");
    m.mutable_consignee()->set_name("Vientiane Building Supplies");
    m.set_port_of_loading("CNSHA");
    m.add_transhipment_ports("SGSIN");
    m.set_port_of_discharge("THLCH");
    m.set_final_destination("LAVTE");
    m.set_declared_at_ms(now);
    m.set_eta_ms(now + 3 * 86400000LL);
    auto* g = m.add_goods();
    g->set_hs_code("690721");
    g->set_description("glazed ceramic floor tiles");
    g->set_packages(20);
    g->set_gross_weight_kg(18000 + static_cast<double>(rng_() % 4000));
    return m;
  }

  v1::ScanResult Scan(const Box& box, int64_t now) {
    v1::ScanResult s;
    s.set_container_number(box.number);
    s.set_scanned_at_ms(now);
    s.set_site("THLCH");
    s.set_device_id("RPM-LCH-01");
    s.mutable_rpm()->set_gamma_background_cps(85);
    s.mutable_rpm()->set_gamma_cps(80 + static_cast<double>(rng_() % 40));
    return s;
  }

  v1::GpsEvent Gps(const Box& box, int64_t now) {
    // Linear interpolation along Laem Chabang (13.08, 100.88) -> Nong Khai
    // (17.88, 102.72); good enough for a moving dot.
    const double f = std::min(1.0, box.steps / 400.0);
    v1::GpsEvent e;
    e.set_container_number(box.number);
    e.set_tracker_id("TRK-" + box.number.substr(4, 6));
    e.set_event_id(e.tracker_id() + "-" + std::to_string(box.steps));
    e.set_fix_time_ms(now);
    e.mutable_position()->set_lat(13.08 + f * (17.88 - 13.08));
    e.mutable_position()->set_lon(100.88 + f * (102.72 - 100.88));
    e.set_speed_kmh(40 + static_cast<double>(rng_() % 50));
    e.set_battery_pct(90);
    return e;
  }

  std::mt19937 rng_;
  std::vector<Box> boxes_;
  uint64_t count_ = 0;
};

int RunDemo(const DemoArgs& a) {
  std::signal(SIGINT, [](int) { g_interrupted = 1; });
  std::signal(SIGTERM, [](int) { g_interrupted = 1; });
  std::printf("boxwatch demo: starting the embedded Kafka cluster...\n");
  auto broker = pipeline::EmbeddedBroker::Start(1);
  if (!broker.ok()) {
    std::fprintf(stderr, "demo: %s\n", broker.error().message.c_str());
    return 1;
  }
  const std::string bootstrap = (*broker)->bootstrap();
  const pipeline::TopicNames names;
  const auto specs = pipeline::TopicSetSpecs({.partitions = a.partitions});
  if (Status s = (*broker)->CreateTopics(specs); !s.ok()) {
    std::fprintf(stderr, "demo: %s\n", s.message().c_str());
    return 1;
  }
  auto admin = pipeline::KafkaAdmin::Create(bootstrap);
  if (!admin.ok()) return 1;
  std::vector<std::string> all_names;
  for (const auto& s : specs) all_names.push_back(s.name);
  auto counts = (*admin)->PartitionCounts(all_names, 10s);
  if (!counts.ok() || !pipeline::CheckTopicSet(names, *counts).ok()) {
    std::fprintf(stderr, "demo: topic set check failed\n");
    return 1;
  }
  std::printf("broker %s: %zu topics, %d partitions each (co-partitioned)\n", bootstrap.c_str(),
              specs.size(), a.partitions);

  auto producer = pipeline::KafkaProducer::Create({.bootstrap = bootstrap});
  auto consumer = pipeline::KafkaConsumer::Create(
      {.bootstrap = bootstrap, .group_id = "boxwatch-demo", .group_instance_id = "demo-0"});
  if (!producer.ok() || !consumer.ok()) {
    std::fprintf(stderr, "demo: cannot create Kafka clients\n");
    return 1;
  }
  std::vector<std::string> inputs;
  std::map<std::string, TopicRole> role_of;
  for (TopicRole r : pipeline::kInputTopicRoles) {
    inputs.push_back(names.Name(r));
    role_of[names.Name(r)] = r;
  }
  if (Status s = (*consumer)->Subscribe(inputs); !s.ok()) {
    std::fprintf(stderr, "demo: %s\n", s.message().c_str());
    return 1;
  }

  DemoSource source(a.containers, a.seed);
  std::map<std::string, uint64_t> produced, decoded;
  std::map<std::string, uint64_t> dead;  // by reason
  uint64_t produced_total = 0, consumed_total = 0;
  const auto start = std::chrono::steady_clock::now();
  const auto end = start + std::chrono::seconds(a.duration_s);
  auto next_report = start + 1s;
  const double interval_ms = 1000.0 / a.rate;
  const operators::DecodeLimits limits;

  auto handle = [&](const pipeline::Message& m) {
    ++consumed_total;
    const TopicRole role = role_of[std::string(m.topic())];
    auto enc = operators::EncodingFromHeader(m.header("content-type").value_or(""));
    std::optional<operators::Rejection> rejection;
    if (auto* r = std::get_if<operators::Rejection>(&enc)) {
      rejection = *r;
    } else {
      const operators::RecordView view{m.key(), m.value(), std::get<operators::Encoding>(enc)};
      const ProcessingTimeMs now(NowMs());
      auto reject_of = [](const auto& d) -> std::optional<operators::Rejection> {
        if (auto* r = std::get_if<operators::Rejection>(&d)) return *r;
        return std::nullopt;
      };
      switch (role) {
        case TopicRole::kManifests: rejection = reject_of(operators::DecodeManifest(view, now, limits)); break;
        case TopicRole::kScans: rejection = reject_of(operators::DecodeScan(view, now, limits)); break;
        case TopicRole::kGps: rejection = reject_of(operators::DecodeGps(view, now, limits)); break;
        default: rejection = reject_of(operators::DecodeOutcome(view, now, limits)); break;
      }
    }
    if (!rejection) {
      ++decoded[std::string(m.topic())];
      return;
    }
    const char* reason = operators::RejectReasonName(rejection->reason);
    ++dead[reason];
    Status s = (*producer)->Produce({.topic = names.Name(TopicRole::kDeadLetter),
                                     .key = m.key(),
                                     .value = m.value(),
                                     .headers = {{"boxwatch-reason", reason},
                                                 {"boxwatch-detail", rejection->detail},
                                                 {"boxwatch-source-topic", std::string(m.topic())},
                                                 {"boxwatch-source-partition", std::to_string(m.partition())},
                                                 {"boxwatch-source-offset", std::to_string(m.offset())}}});
    if (!s.ok()) BW_LOG(kError, "demo") << s.ToString();
    std::printf("  dead letter  %-12s %-26s %s\n", std::string(m.key()).c_str(), reason,
                rejection->detail.c_str());
  };

  while (!g_interrupted) {
    const auto now = std::chrono::steady_clock::now();
    if (now < end) {
      const auto due = static_cast<uint64_t>(
          std::chrono::duration<double, std::milli>(now - start).count() / interval_ms);
      while (produced_total < due) {
        DemoRecord r = source.Next();
        std::vector<pipeline::Header> headers;
        if (r.encoding == operators::Encoding::kJson) headers.push_back({"content-type", "application/json"});
        const std::string topic = names.Name(r.role);
        Status s = (*producer)->Produce({.topic = topic, .key = r.key, .value = r.value,
                                         .timestamp_ms = r.timestamp_ms, .headers = headers});
        if (!s.ok()) {
          std::fprintf(stderr, "demo: %s\n", s.ToString().c_str());
          return 1;
        }
        ++produced[topic];
        ++produced_total;
      }
    } else if (consumed_total >= produced_total || now > end + 15s) {
      break;
    }
    rd_kafka_poll((*producer)->handle(), 0);
    auto m = (*consumer)->Poll(20ms);
    if (!m.ok()) {
      BW_LOG(kWarn, "demo") << m.error().message;
    } else if (m->has_value()) {
      handle(**m);
    }
    if (now >= next_report) {
      next_report += 1s;
      const double secs = std::chrono::duration<double>(now - start).count();
      std::printf("[%5.1fs] produced %llu  consumed %llu  (%.0f events/s)  dead letters %llu\n", secs,
                  static_cast<unsigned long long>(produced_total),
                  static_cast<unsigned long long>(consumed_total), consumed_total / secs,
                  static_cast<unsigned long long>([&] {
                    uint64_t n = 0;
                    for (auto& [k, v] : dead) n += v;
                    return n;
                  }()));
    }
  }
  if (Status s = (*producer)->Flush(10s); !s.ok()) std::fprintf(stderr, "demo: %s\n", s.ToString().c_str());
  (*consumer)->Close().PermitUnchecked();

  std::printf("\nsummary\n%-28s %10s %10s\n", "topic", "produced", "decoded");
  for (const auto& t : inputs) {
    std::printf("%-28s %10llu %10llu\n", t.c_str(), static_cast<unsigned long long>(produced[t]),
                static_cast<unsigned long long>(decoded[t]));
  }
  std::printf("dead letters by reason:\n");
  uint64_t dead_total = 0;
  for (const auto& [reason, n] : dead) {
    std::printf("  %-26s %llu\n", reason.c_str(), static_cast<unsigned long long>(n));
    dead_total += n;
  }
  uint64_t decoded_total = 0;
  for (auto& [k, v] : decoded) decoded_total += v;
  const bool complete = decoded_total + dead_total == produced_total;
  std::printf("%llu produced, %llu decoded, %llu dead-lettered: %s\n",
              static_cast<unsigned long long>(produced_total),
              static_cast<unsigned long long>(decoded_total),
              static_cast<unsigned long long>(dead_total),
              complete ? "every record accounted for" : "RECORDS MISSING");
  return complete ? 0 : 1;
}

}  // namespace

void RegisterDemoCommand(CLI::App& app) {
  auto args = std::make_shared<DemoArgs>();
  CLI::App* demo = app.add_subcommand(
      "demo", "Run boxwatch end to end on an embedded Kafka cluster (no installation needed)");
  demo->add_option("--duration", args->duration_s, "Seconds to produce events before stopping")
      ->capture_default_str()
      ->check(CLI::Range(1, 86400));
  demo->add_option("--partitions", args->partitions, "Partitions per co-partitioned topic")
      ->capture_default_str()
      ->check(CLI::Range(1, 64));
  demo->add_option("--rate", args->rate, "Events produced per second")
      ->capture_default_str()
      ->check(CLI::Range(1, 100000));
  demo->add_option("--containers", args->containers, "Containers in transit")
      ->capture_default_str()
      ->check(CLI::Range(1, 1000000));
  demo->add_option("--seed", args->seed, "Seed of the event generator")->capture_default_str();
  demo->callback([args] { SetExitCode(RunDemo(*args)); });
}

}  // namespace boxwatch::app
